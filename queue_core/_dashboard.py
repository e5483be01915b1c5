"""What a dashboard polls: tasks by state and queue, throughput and pickup latency per minute, workers with
their in-flight tasks.

A dashboard asks every few seconds, so each read costs what the live work and the recent past cost, never
what the history costs, however many finished tasks the table keeps (the inverted pattern keeps many):

- pending and running tasks are counted in full, through their partial indexes (``ix_queue_tasks_claimable``,
  ``ix_queue_tasks_running``): their number is the backlog and the work in flight;
- finished tasks are counted and charted only over a recent window, through the partial index on
  ``finished_at`` (``ix_queue_tasks_finished``): their number is the recent throughput. The result types
  say so, and a page should too ("finished in the last hour");
- workers come from their own small table (live ones, or every one still listed, lost ones too), and
  their running tasks through ``ix_queue_tasks_running``.

The newest dead tasks are ``list_tasks(state="dead")``, through ``ix_queue_tasks_dead``.
tests/integration/queue_core/test_inspection_at_scale.py checks every plan against 200,000 finished tasks.
``queue_stats`` still counts every task: a command line asks it once, a dashboard should not poll it.
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, func, literal, select, true, union_all
from sqlalchemy.orm import Session

from queue_core._clock import db_now
from queue_core._inspection import percentiles
from queue_core._models import in_state
from queue_core._models import task_table as tasks
from queue_core._models import worker_table as workers
from queue_core._states import FINISHED_STATES, UNSUCCESSFUL_STATES, TaskState

FINISHED_WINDOW_SECONDS = 3600.0
CHART_MINUTES = 10
CHART_ROW_LIMIT = 20_000  # finished tasks ``throughput`` reads at most; past that it says ``truncated``


@dataclass(frozen=True)
class TaskCounts:
    """Tasks by queue and state: every pending and running task, but only the finished tasks that finished
    in the last ``finished_window_seconds`` (older ones are history, and counting them would read it all).
    """

    by_queue_and_state: dict[str, dict[str, int]]  # states with no task are left out
    finished_window_seconds: float

    @property
    def by_state(self) -> dict[str, int]:
        """Totals over all queues, every state present (zero when none)."""
        totals = {state.value: 0 for state in TaskState}
        for counts in self.by_queue_and_state.values():
            for state, count in counts.items():
                totals[state] += count
        return totals


def task_counts(
    session: Session | Connection, finished_window_seconds: float = FINISHED_WINDOW_SECONDS
) -> TaskCounts:
    """Count live tasks in full and finished ones over the window, in one statement of three index reads."""
    count = func.count().label("count")
    pending = select(tasks.c.queue, literal(TaskState.PENDING.value).label("state"), count).where(
        in_state(TaskState.PENDING)
    )
    running = select(tasks.c.queue, literal(TaskState.RUNNING.value).label("state"), count).where(
        in_state(TaskState.RUNNING)
    )
    finished = select(tasks.c.queue, tasks.c.state, count).where(
        in_state(*FINISHED_STATES), tasks.c.finished_at >= db_now(-finished_window_seconds)
    )
    by_queue: dict[str, dict[str, int]] = {}
    statement = union_all(
        pending.group_by(tasks.c.queue),
        running.group_by(tasks.c.queue),
        finished.group_by(tasks.c.queue, tasks.c.state),
    )
    for queue, state, number in session.execute(statement):
        by_queue.setdefault(queue, {})[state] = int(number)
    return TaskCounts(by_queue_and_state=by_queue, finished_window_seconds=finished_window_seconds)


@dataclass(frozen=True)
class MinuteBucket:
    """One minute of a throughput chart: the tasks that finished in it and their pickup latency."""

    start: dt.datetime
    succeeded: int
    unsuccessful: int  # dead, cancelled, expired or discarded
    p50_pickup_ms: float | None  # None when no task finished in the minute


@dataclass(frozen=True)
class Throughput:
    """Tasks finished per minute over the last minutes, oldest minute first.

    ``pickup_latency_ms`` (p50, p95, p99) is over every task read. ``truncated`` says more tasks finished
    than were read (at most ``CHART_ROW_LIMIT``, newest first): the oldest minutes are then undercounted,
    and the minutes a person watches are exact.
    """

    minutes: tuple[MinuteBucket, ...]
    pickup_latency_ms: dict[str, float]
    truncated: bool

    @property
    def succeeded(self) -> int:
        """Tasks that succeeded over the whole window."""
        return sum(minute.succeeded for minute in self.minutes)


def throughput(
    session: Session | Connection, minutes: int = CHART_MINUTES, row_limit: int = CHART_ROW_LIMIT
) -> Throughput:
    """Tasks finished per minute over the last ``minutes`` (the current one included), with pickup latency.

    Pickup latency is ``started_at - run_at`` of a task's last attempt: how long a due task waited for a
    worker. Reads the tasks finished in the window newest first, through ``ix_queue_tasks_finished``.
    """
    now = session.execute(select(db_now())).scalar_one()
    end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=minutes)
    rows = session.execute(
        select(tasks.c.state, tasks.c.finished_at, tasks.c.started_at, tasks.c.run_at)
        .where(in_state(*FINISHED_STATES), tasks.c.finished_at >= start)
        .order_by(tasks.c.finished_at.desc())
        .limit(row_limit)
    ).all()
    succeeded = [0] * minutes
    unsuccessful = [0] * minutes
    latencies: list[list[float]] = [[] for _ in range(minutes)]
    for state, finished_at, started_at, run_at in rows:
        slot = int((finished_at - start).total_seconds() // 60)
        if not 0 <= slot < minutes:
            continue
        if state == TaskState.SUCCEEDED.value:
            succeeded[slot] += 1
        elif TaskState(state) in UNSUCCESSFUL_STATES:
            unsuccessful[slot] += 1
        if started_at is not None:
            latencies[slot].append(max(0.0, (started_at - run_at).total_seconds() * 1000.0))
    buckets = tuple(
        MinuteBucket(
            start=start + dt.timedelta(minutes=n),
            succeeded=succeeded[n],
            unsuccessful=unsuccessful[n],
            p50_pickup_ms=statistics.median(latencies[n]) if latencies[n] else None,
        )
        for n in range(minutes)
    )
    every_latency = [latency for minute in latencies for latency in minute]
    return Throughput(buckets, percentiles(every_latency), truncated=len(rows) >= row_limit)


@dataclass(frozen=True)
class InFlightTask:
    """A running task, as its worker's row lists it, with the claim that makes it that worker's."""

    id: uuid.UUID
    name: str
    queue: str
    attempt: int  # counted when the task was claimed: 1 on its first run
    started_at: dt.datetime | None
    progress: float | None
    lease_token: uuid.UUID | None  # the fence its completion must present; a rescue hands out another


@dataclass(frozen=True)
class WorkerInfo:
    """A worker process as the queue knows it, with the tasks it holds now.

    ``alive`` while its lease has not run out, that is while its last heartbeat is younger than its
    ``lease_seconds``; a lost worker's tasks go back to the queue at a live worker's next maintenance
    pass. A worker that stopped cleanly has deleted its row; one that died is forgotten ten minutes after
    its lease ran out (``forget_dead_workers``), or as soon as its session lock is found free (ADR 0012).
    """

    id: uuid.UUID
    hostname: str
    pid: int
    queues: tuple[str, ...]  # empty: every queue
    concurrency: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    heartbeat_age_seconds: float
    lease_expires_at: dt.datetime
    lease_left_seconds: float  # negative once the lease has run out
    alive: bool
    in_flight: tuple[InFlightTask, ...]


def live_workers(session: Session | Connection) -> list[WorkerInfo]:
    """Workers whose lease has not run out, oldest first, each with its running tasks: two statements."""
    return _workers(session, workers.c.lease_expires_at > db_now())


def known_workers(session: Session | Connection) -> list[WorkerInfo]:
    """Every worker that still has a row, live and lost, oldest first, each with its running tasks.

    What an operator needs to find a frozen worker: its host and PID, and the tasks that wait on its
    lease. Two statements, like ``live_workers``: the workers table is small (a lost row is forgotten
    after a while), and their tasks are read through ``ix_queue_tasks_running``.
    """
    return _workers(session, true())


def find_worker(session: Session | Connection, worker_id: uuid.UUID) -> WorkerInfo | None:
    """The worker with this ID, alive or not; None once its row is gone (stopped, or forgotten)."""
    found = _workers(session, workers.c.id == worker_id)
    return found[0] if found else None


def _workers(session: Session | Connection, condition: ColumnElement[bool]) -> list[WorkerInfo]:
    rows = session.execute(
        select(workers, (workers.c.lease_expires_at > db_now()).label("alive"), db_now().label("now"))
        .where(condition)
        .order_by(workers.c.started_at, workers.c.id)
    ).all()
    held = _in_flight(session, [row.id for row in rows])
    return [_worker_info(row, held.get(row.id, ())) for row in rows]


def _worker_info(row: Row[Any], in_flight: Sequence[InFlightTask]) -> WorkerInfo:
    values = row._mapping
    heartbeat_at: dt.datetime = values["heartbeat_at"]
    lease_expires_at: dt.datetime = values["lease_expires_at"]
    return WorkerInfo(
        id=values["id"],
        hostname=values["hostname"],
        pid=values["pid"],
        queues=tuple(values["queues"] or ()),
        concurrency=values["concurrency"],
        started_at=values["started_at"],
        heartbeat_at=heartbeat_at,
        heartbeat_age_seconds=max(0.0, (values["now"] - heartbeat_at).total_seconds()),
        lease_expires_at=lease_expires_at,
        lease_left_seconds=(lease_expires_at - values["now"]).total_seconds(),
        alive=bool(values["alive"]),
        in_flight=tuple(in_flight),
    )


def _in_flight(
    session: Session | Connection, worker_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[InFlightTask]]:
    """The running tasks these workers hold, oldest start first (``ix_queue_tasks_running``)."""
    if not worker_ids:
        return {}
    held: dict[uuid.UUID, list[InFlightTask]] = {}
    for row in session.execute(
        select(
            tasks.c.id,
            tasks.c.name,
            tasks.c.queue,
            tasks.c.attempts,
            tasks.c.started_at,
            tasks.c.progress,
            tasks.c.lease_token,
            tasks.c.worker_id,
        )
        .where(in_state(TaskState.RUNNING), tasks.c.worker_id.in_(worker_ids))
        .order_by(tasks.c.started_at, tasks.c.id)
    ):
        task = InFlightTask(
            id=row.id,
            name=row.name,
            queue=row.queue,
            attempt=row.attempts,
            started_at=row.started_at,
            progress=row.progress,
            lease_token=row.lease_token,
        )
        held.setdefault(row.worker_id, []).append(task)
    return held
