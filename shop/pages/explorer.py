"""The task explorer (``/tasks`` and ``/tasks/<id>``): one task's life and the business rows pointing at it.

Today's queue dashboards show a task; this one also shows which rows point at it, found through the
registry's task-ID columns (``queue_core.referencing_rows``: an indexed equality lookup per column). A
batch (manifest) task lists every shipment in it, and so every order that left together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection

from flask import Blueprint, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

import queue_core
from queue_core import FINISHED_STATES, RETRYABLE_STATES, TaskNotFoundError, TaskState
from shop.config import app_settings
from shop.pages import readings, security
from shop.pages.common import db, references, render

blueprint = Blueprint("task_explorer", __name__, template_folder="templates")

LIST_LIMIT = 50
CANCELLABLE = frozenset({TaskState.PENDING, TaskState.RUNNING})
NOTICES = {
    "retried": "Re-queued with one more attempt: a worker picks it up in a moment.",
    "cancelled": "Cancelled.",
    "cancel_requested": "Cancellation requested: the handler sees it soon, and may stop or finish.",
    "not_retryable": "Only a dead, cancelled, expired or discarded task can be re-queued; this one is not.",
    "not_cancellable": "Only a pending or running task can be cancelled; this one has finished.",
}


@blueprint.get("/tasks")
def tasks() -> WerkzeugResponse | tuple[str, int]:
    """The newest tasks, filtered by state, queue and name; ``?id=`` opens one task."""
    wanted = request.args.get("id", "").strip()
    if wanted:
        try:
            return redirect(url_for("task_explorer.task", task_id=uuid.UUID(wanted)))
        except ValueError:
            pass
    state = request.args.get("state") or None
    problems = []
    if state is not None and state not in {s.value for s in TaskState}:
        problems.append(f"no task state is called {state[:40]!r}")
        state = None
    queue = (request.args.get("queue") or "")[:100] or None
    name = (request.args.get("name") or "")[:200] or None
    if wanted:
        problems.append(f"{wanted[:60]!r} is not a task ID")
    found = queue_core.list_tasks(db(), state=state, queue=queue, name=name, limit=LIST_LIMIT)
    return render(
        "tasks.html",
        title="Tasks",
        tasks=found,
        states=[s.value for s in TaskState],
        chosen={"state": state or "", "queue": queue or "", "name": name or ""},
        busy=any(t.state in ("pending", "running") for t in found),
        refresh_seconds=2,
        notice="; ".join(problems).capitalize() or None,
        notice_kind="error",
    )


@blueprint.get("/tasks/<uuid:task_id>")
def task(task_id: uuid.UUID) -> tuple[str, int]:
    """One task: its row, timeline, attempts with errors, lease holder, family and referencing rows."""
    session = db()
    try:
        details = queue_core.task_details(session, task_id, references=references())
    except TaskNotFoundError:
        return render("task_missing.html", 404, title="No such task", task_id=task_id)
    state = TaskState(details.task["state"])
    worker_id = details.task["worker_id"]  # the lease holder, or the last worker to run it
    return render(
        "task.html",
        title=f"Task {str(task_id)[:8]}",
        details=details,
        task=details.task,
        state=state.value,
        timeline=readings.timeline(details),
        referrers=readings.describe_referrers(session, details.referenced_by),
        worker=queue_core.find_worker(session, worker_id) if worker_id is not None else None,
        can_retry=state in RETRYABLE_STATES,
        can_cancel=state in CANCELLABLE,
        busy=state not in FINISHED_STATES,
        refresh_seconds=2,
        notice=NOTICES.get(request.args.get("did", "")),
        notice_kind="error" if request.args.get("did", "").startswith("not_") else "ok",
    )


@blueprint.post("/tasks/<uuid:task_id>/retry")
def retry(task_id: uuid.UUID) -> WerkzeugResponse | tuple[str, int]:
    """Re-queue an unsuccessful task with one more attempt (its error history stays)."""

    def requeue(session: Session) -> str:
        queue_core.requeue(session, task_id)
        return "retried"

    return _act_on(task_id, RETRYABLE_STATES, "not_retryable", requeue)


@blueprint.post("/tasks/<uuid:task_id>/cancel")
def cancel(task_id: uuid.UUID) -> WerkzeugResponse | tuple[str, int]:
    """Cancel a pending task at once, or ask a running one to stop."""

    def cancel_it(session: Session) -> str:
        after = queue_core.cancel(session, task_id)
        return "cancelled" if after is TaskState.CANCELLED else "cancel_requested"

    return _act_on(task_id, CANCELLABLE, "not_cancellable", cancel_it)


def _act_on(
    task_id: uuid.UUID, allowed: Collection[TaskState], refusal: str, act: Callable[[Session], str]
) -> WerkzeugResponse | tuple[str, int]:
    """Check the POST, then ``act`` if the task's state allows it; redirects with what happened."""
    security.check_post(app_settings())
    session = db()
    try:
        before = queue_core.state_of(session, task_id)
    except TaskNotFoundError:
        return render("task_missing.html", 404, title="No such task", task_id=task_id)
    if before not in allowed:
        return redirect(url_for("task_explorer.task", task_id=task_id, did=refusal), code=303)
    did = act(session)
    session.commit()
    return redirect(_back_to(task_id, did), code=303)


def _back_to(task_id: uuid.UUID, did: str) -> str:
    """Back where the button was pressed: the dashboard's dead-task list, or the task's own page."""
    if request.form.get("back") == "dashboard":
        return url_for("queue_dashboard.dashboard", did=did, task=task_id)
    return url_for("task_explorer.task", task_id=task_id, did=did)
