"""The queue dashboard (``/queue``): depth by state and queue, throughput and pickup latency over the last
minutes, dead tasks with a re-queue button, live workers with their in-flight tasks, and the
reference check's findings (rows pointing at a task that will never succeed).

What one refresh costs (every ``REFRESH_SECONDS`` while the page is open): ``queue_stats`` counts every
task by queue and state, a scan of the task table (see docs/queue-core.md's known limits); the chart
reads tasks finished in the last ten minutes through the partial index on ``finished_at``, at most
20,000; the dead list is ``list_tasks(state="dead", limit=20)``; workers and their running tasks go
through the small workers table and the partial index of running rows; the reference check is one
outer join per task-ID column, at most 20 rows each. The page refreshes every 5 s, not every second,
and only while it is open and visible.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, request

import queue_core
from shop.pages import charts, readings
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
    stats = queue_core.queue_stats(session)
    series = readings.throughput(session)
    dead = queue_core.list_tasks(session, state=queue_core.TaskState.DEAD.value, limit=DEAD_SHOWN)
    workers = readings.live_workers(session)
    dangling = queue_core.find_dangling(session, references(), limit=DANGLING_SHOWN)
    queues = sorted(stats.by_queue_and_state)
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
        stats=stats,
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
