"""The queue dashboard (``/queue``): tasks by state and queue, throughput and pickup latency over the last
minutes, dead tasks with a re-queue button, live workers with their in-flight tasks, and the
reference check's findings (rows pointing at a task that will never succeed).

What one refresh costs (every ``REFRESH_SECONDS`` while the page is open), whatever the length of the
history: ``task_counts`` counts pending and running tasks through their partial indexes and finished
ones over the last hour only (the page says "finished in the last hour"); ``throughput`` reads tasks
finished in the last ten minutes through the partial index on ``finished_at``, at most 20,000; the dead
list is ``list_tasks(state="dead", limit=20)`` through the partial index of dead tasks; ``backlog`` reads
the claim index; ``live_workers`` reads the small workers table and the partial index of running rows;
the reference check is one outer join per task-ID column, at most 20 rows each. Every one of these reads
is the queue's public API (tests/integration/queue_core/test_inspection_at_scale.py checks their plans).
The page refreshes every 5 s, not every second, and only while it is open and visible.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, request

import queue_core
from shop.pages import charts
from shop.pages.common import db, references, render

blueprint = Blueprint("queue_dashboard", __name__, template_folder="templates")

REFRESH_SECONDS = 5
DEAD_SHOWN = 20
DANGLING_SHOWN = 20
NOTICES = {
    "retried": "Re-queued task {task}: a worker picks it up in a moment.",
    "not_retryable": "Task {task} is no longer dead (someone re-queued it already?).",
}


@blueprint.get("/queue")
def dashboard() -> tuple[str, int]:
    """The whole queue at a glance; see the module docstring for what each refresh reads."""
    session = db()
    counts = queue_core.task_counts(session)
    series = queue_core.throughput(session)
    dead = queue_core.list_tasks(session, state=queue_core.TaskState.DEAD.value, limit=DEAD_SHOWN)
    workers = queue_core.live_workers(session)
    dangling = queue_core.find_dangling(session, references(), limit=DANGLING_SHOWN)
    queues = sorted(counts.by_queue_and_state)
    states = [state.value for state in queue_core.TaskState]
    notice = None
    did, task = request.args.get("did", ""), request.args.get("task", "")
    if did in NOTICES:
        try:
            notice = NOTICES[did].format(task=uuid.UUID(task))
        except ValueError:
            notice = None
    return render(
        "dashboard.html",
        title="Queue",
        counts=counts,
        finished_window_minutes=round(counts.finished_window_seconds / 60),
        backlog=queue_core.backlog(session),
        queues=queues,
        states=states,
        chart=charts.throughput_chart(series.minutes),
        series=series,
        dead=dead,
        workers=workers,
        dangling=dangling,
        busy=True,  # the dashboard watches the queue: it always refreshes while open
        refresh_seconds=REFRESH_SECONDS,
        notice=notice,
        notice_kind="error" if did.startswith("not_") else "ok",
    )
