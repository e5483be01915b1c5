"""The queue's tables.

``queue_tasks`` is the hot table: claims read it through a partial index that holds only claimable rows,
so its size is the backlog, not the history. Finished rows stay until ``prune`` removes them in batches.
The other tables are small: per-attempt errors, live workers, periodic ticks and per-name limits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Uuid,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from queue_core._clock import UtcDateTime
from queue_core._states import FINISHED_STATES, TaskState

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
_STATE_LIST = ", ".join(f"'{state.value}'" for state in TaskState)
_FINISHED_LIST = ", ".join(f"'{state.value}'" for state in TaskState if state in FINISHED_STATES)


class QueueBase(DeclarativeBase):
    """Declarative base for the queue's own tables; business packages have bases of their own."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Task(QueueBase):
    """One unit of background work. Business rows point at it by ``id``; it never points back."""

    __tablename__ = "queue_tasks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    queue: Mapped[str] = mapped_column(String(100), default="default")
    state: Mapped[str] = mapped_column(String(20), default=TaskState.PENDING.value)
    # Higher runs first. Claims order by (priority DESC, run_at, id).
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    # Optional and small. The inverted pattern needs none: a handler finds its object by task id.
    args: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The claim: which worker holds the task, and the token its completion must present (the fence).
    worker_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress_message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    root_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)

    __table_args__ = (
        CheckConstraint(f"state IN ({_STATE_LIST})", name="state"),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="attempts"),
        # The claim index: only claimable rows, in claim order. Its size is the backlog.
        Index(
            "ix_queue_tasks_claimable",
            "queue",
            text("priority DESC"),
            "run_at",
            "id",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        # Running rows: rescue, per-name concurrency counts and a worker's in-flight list.
        Index(
            "ix_queue_tasks_running",
            "worker_id",
            "name",
            postgresql_where=text("state = 'running'"),
            sqlite_where=text("state = 'running'"),
        ),
        # Pruning walks finished rows oldest first; inspection reads the recently finished ones.
        Index(
            "ix_queue_tasks_finished",
            "finished_at",
            postgresql_where=text(f"state IN ({_FINISHED_LIST})"),
            sqlite_where=text(f"state IN ({_FINISHED_LIST})"),
        ),
        # Dead tasks, newest first: a dashboard's "dead tasks" list (``list_tasks(state="dead")``) reads
        # its first rows however long the history of other finished tasks grows.
        Index(
            "ix_queue_tasks_dead",
            "created_at",
            "id",
            postgresql_where=text("state = 'dead'"),
            sqlite_where=text("state = 'dead'"),
        ),
        Index(
            "ix_queue_tasks_expiring",
            "expires_at",
            postgresql_where=text("state = 'pending' AND expires_at IS NOT NULL"),
            sqlite_where=text("state = 'pending' AND expires_at IS NOT NULL"),
        ),
        Index("ix_queue_tasks_root_id", "root_id", postgresql_where=text("root_id IS NOT NULL")),
    )


class TaskError(QueueBase):
    """What went wrong in one attempt. Kept with the task until the task is pruned."""

    __tablename__ = "queue_task_errors"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    failed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    error_type: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)


class WorkerRecord(QueueBase):
    """A worker process. While ``lease_expires_at`` is in the future and, if it names one, its session lock
    is held, its claimed tasks are its own.

    Each heartbeat moves ``lease_expires_at`` to now + that worker's own ``lease_seconds``, so workers with
    different leases can share a queue: a rescuer judges every worker by the lease it declared.
    """

    __tablename__ = "queue_workers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JsonDocument)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The key of the session advisory lock the worker holds (``_session_lock.py``), written only while it
    # holds it; NULL for a worker without one (SQLite, ``fast_rescue=False``): only its lease vouches for it.
    session_lock_key: Mapped[int | None] = mapped_column(Integer, nullable=True)


class PeriodicTick(QueueBase):
    """The latest tick of one schedule that was enqueued, with the task it enqueued.

    One row per schedule, moved forward by an upsert that only wins for a later tick: that is what makes
    each tick enqueue exactly once, however many workers evaluate the schedule.
    """

    __tablename__ = "queue_periodic_ticks"

    schedule: Mapped[str] = mapped_column(String(200), primary_key=True)
    tick_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class NameLimit(QueueBase):
    """One row per task name that has a concurrency or rate limit.

    Claims of a limited name lock this row first, so the count of running tasks they read cannot change
    under them: that is what makes a limit hold across all workers. ``tokens`` is the rate limit's bucket.
    """

    __tablename__ = "queue_name_limits"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


# Core handles on the tables, typed as Table, for the hand-written statements of claims and maintenance.
task_table = cast(Table, Task.__table__)
error_table = cast(Table, TaskError.__table__)
worker_table = cast(Table, WorkerRecord.__table__)
tick_table = cast(Table, PeriodicTick.__table__)
limit_table = cast(Table, NameLimit.__table__)


def in_state(*states: TaskState) -> ColumnElement[bool]:
    """SQL: the task is in one of ``states``, the values written into the statement's text.

    Never a bind parameter, because the partial indexes (``WHERE state = 'pending'``) serve only a plan
    that knows the value. psycopg prepares a statement run often, and PostgreSQL then settles on a generic
    plan, which sees ``state = $1``: a worker whose statements were planned while the table was small kept
    scanning the whole table once a long history arrived (13 tasks/s against 3,379 for a fresh process).
    """
    values = [literal_column(f"'{state.value}'", String()) for state in states]
    if len(values) == 1:
        return task_table.c.state == values[0]
    return task_table.c.state.in_(values)
