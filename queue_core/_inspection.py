"""Reading the queue: counts, ages, throughput, latency, and one task in full.

Everything here is a plain query a reader can run in psql as well; nothing is cached or kept in memory.
``queue_stats`` counts every task, so its cost grows with the history: a command line asks it once. What a
dashboard polls every few seconds is in ``_dashboard`` (``task_counts``, ``throughput``, ``live_workers``),
whose cost does not.
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from queue_core._clock import db_now
from queue_core._control import TaskNotFoundError
from queue_core._models import error_table as errors
from queue_core._models import in_state
from queue_core._models import task_table as tasks
from queue_core._models import worker_table as workers
from queue_core._references import ReferencingRow, TaskReference, referencing_rows
from queue_core._states import TaskState


@dataclass(frozen=True)
class QueueStats:
    """A snapshot of the queue."""

    by_state: dict[str, int]
    by_queue_and_state: dict[str, dict[str, int]]
    oldest_pending_age_seconds: float | None  # of tasks due now; None when nothing is waiting
    succeeded_last_minute: int
    pickup_latency_ms: dict[str, float]  # p50/p95/p99 of (started_at - run_at), tasks started in the window
    live_workers: int

    @property
    def throughput_per_second(self) -> float:
        return self.succeeded_last_minute / 60.0


@dataclass(frozen=True)
class Backlog:
    """How much due work waits, and for how long: what a readiness probe needs, and nothing more."""

    due: int  # pending tasks whose run_at has come
    oldest_due_age_seconds: float | None  # None when nothing is due


def backlog(session: Session | Connection) -> Backlog:
    """Count due pending tasks and the age of the oldest, reading only the partial index of pending rows.

    Cheap enough to answer a probe every few seconds: its cost grows with the backlog, not the history
    (unlike ``queue_stats``, which counts every state).
    """
    due, oldest, now = session.execute(
        select(func.count(), func.min(tasks.c.run_at), db_now()).where(
            in_state(TaskState.PENDING), tasks.c.run_at <= db_now()
        )
    ).one()
    age = None if oldest is None else max(0.0, (now - oldest).total_seconds())
    return Backlog(due=due, oldest_due_age_seconds=age)


def queue_stats(session: Session | Connection, window_seconds: float = 60.0) -> QueueStats:
    """Counts by state and queue, the age of the oldest due task, throughput and pickup latency.

    Exact over the whole table, so it reads every task (a sequential scan): right for ``shop queue stats``,
    wrong for a page that polls. Poll ``task_counts`` and ``throughput`` instead.
    """
    by_queue: dict[str, dict[str, int]] = {}
    by_state: dict[str, int] = {state.value: 0 for state in TaskState}
    for queue, state, count in session.execute(
        select(tasks.c.queue, tasks.c.state, func.count()).group_by(tasks.c.queue, tasks.c.state)
    ):
        by_queue.setdefault(queue, {})[state] = count
        by_state[state] += count
    waiting = backlog(session)
    recent = tasks.c.started_at >= db_now(-window_seconds)
    succeeded = session.execute(
        select(func.count()).where(
            in_state(TaskState.SUCCEEDED), tasks.c.finished_at >= db_now(-window_seconds)
        )
    ).scalar_one()
    latencies = [
        (started - run_at).total_seconds() * 1000.0
        for started, run_at in session.execute(
            select(tasks.c.started_at, tasks.c.run_at).where(recent).limit(10_000)
        )
        if started is not None
    ]
    alive = session.execute(
        select(func.count()).select_from(workers).where(workers.c.lease_expires_at > db_now())
    ).scalar_one()
    return QueueStats(
        by_state=by_state,
        by_queue_and_state=by_queue,
        oldest_pending_age_seconds=waiting.oldest_due_age_seconds,
        succeeded_last_minute=int(succeeded),
        pickup_latency_ms=percentiles(latencies),
        live_workers=int(alive),
    )


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 of ``values`` (empty dict for no values)."""
    if not values:
        return {}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


@dataclass(frozen=True)
class TaskSummary:
    """One row of a task listing."""

    id: uuid.UUID
    name: str
    queue: str
    state: str
    attempts: int
    max_attempts: int
    run_at: dt.datetime
    finished_at: dt.datetime | None


def list_tasks(
    session: Session | Connection,
    *,
    state: str | None = None,
    queue: str | None = None,
    name: str | None = None,
    limit: int = 50,
) -> list[TaskSummary]:
    """Newest first, filtered by state, queue and name.

    ``state="dead"`` walks the partial index of dead tasks, so a dashboard's dead list reads ``limit`` rows;
    other filters sort every matching task by creation time.
    """
    query = select(
        tasks.c.id,
        tasks.c.name,
        tasks.c.queue,
        tasks.c.state,
        tasks.c.attempts,
        tasks.c.max_attempts,
        tasks.c.run_at,
        tasks.c.finished_at,
    )
    if state is not None:
        query = query.where(tasks.c.state == state)
    if queue is not None:
        query = query.where(tasks.c.queue == queue)
    if name is not None:
        query = query.where(tasks.c.name == name)
    rows = session.execute(query.order_by(tasks.c.created_at.desc(), tasks.c.id.desc()).limit(limit))
    return [TaskSummary(**row._mapping) for row in rows]


@dataclass(frozen=True)
class AttemptError:
    """The error of one failed attempt."""

    attempt: int
    failed_at: dt.datetime
    error_type: str
    message: str
    traceback: str | None
    worker_id: uuid.UUID | None


@dataclass(frozen=True)
class TaskDetails:
    """Everything known about one task, including the business rows that point at it."""

    task: dict[str, Any]
    errors: list[AttemptError] = field(default_factory=list)
    referenced_by: list[ReferencingRow] = field(default_factory=list)


def task_details(
    session: Session | Connection, task_id: uuid.UUID, references: Sequence[TaskReference] = ()
) -> TaskDetails:
    """The task row, its errors by attempt and its referencing rows; raises ``TaskNotFoundError``."""
    row = session.execute(select(tasks).where(tasks.c.id == task_id)).first()
    if row is None:
        raise TaskNotFoundError(f"no task {task_id}")
    attempt_errors = [
        AttemptError(**error._mapping)
        for error in session.execute(
            select(
                errors.c.attempt,
                errors.c.failed_at,
                errors.c.error_type,
                errors.c.message,
                errors.c.traceback,
                errors.c.worker_id,
            )
            .where(errors.c.task_id == task_id)
            .order_by(errors.c.failed_at, errors.c.id)
        )
    ]
    referencing = referencing_rows(session, references, task_id) if references else []
    return TaskDetails(task=dict(row._mapping), errors=attempt_errors, referenced_by=referencing)
