"""Putting tasks on the queue inside the caller's transaction.

``enqueue`` adds a row through the caller's ``Session`` and returns its ID at once. Nothing is committed
here: the task becomes visible to workers when the caller commits, together with the business rows that
point at it, and it disappears if the caller rolls back. That is the promise the inverted pattern needs.

On PostgreSQL the same statement also sends ``NOTIFY queue_core_tasks, '<queue>'``; PostgreSQL delivers
notifications only at commit, so a waiting worker wakes exactly when the task becomes claimable.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, insert, literal, select
from sqlalchemy.orm import Session

from queue_core.clock import db_now
from queue_core.ids import new_task_id
from queue_core.models import task_table
from queue_core.states import TaskState

NOTIFY_CHANNEL = "queue_core_tasks"
DEFAULT_QUEUE = "default"
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Lineage:
    """The task a new task was enqueued from (its parent) and the first task of that chain (its root)."""

    parent_id: uuid.UUID
    root_id: uuid.UUID


# Set by the worker while a handler runs, so tasks enqueued from inside a handler record where they came from.
current_lineage: contextvars.ContextVar[Lineage | None] = contextvars.ContextVar(
    "current_lineage", default=None
)


@dataclass(frozen=True)
class TaskSpec:
    """Everything about a task to enqueue except its ID. Used by ``enqueue_many``."""

    name: str
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    args: Mapping[str, Any] | None = None
    delay: float | dt.timedelta | None = None
    run_at: dt.datetime | None = None
    expires_in: float | dt.timedelta | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    id: uuid.UUID = field(default_factory=new_task_id)


def enqueue(
    session: Session | Connection,
    name: str,
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    args: Mapping[str, Any] | None = None,
    delay: float | dt.timedelta | None = None,
    run_at: dt.datetime | None = None,
    expires_in: float | dt.timedelta | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> uuid.UUID:
    """Add one task in the caller's transaction and return its ID; the caller commits."""
    spec = TaskSpec(
        name=name,
        queue=queue,
        priority=priority,
        args=args,
        delay=delay,
        run_at=run_at,
        expires_in=expires_in,
        max_attempts=max_attempts,
    )
    return enqueue_many(session, [spec])[0]


def enqueue_many(session: Session | Connection, specs: Iterable[TaskSpec]) -> list[uuid.UUID]:
    """Add many tasks with one INSERT per distinct shape, in the caller's transaction; returns their IDs."""
    specs = list(specs)
    if not specs:
        return []
    lineage = current_lineage.get()
    rows = [_row(spec, lineage) for spec in specs]
    dialect = session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    wake_queues = sorted({spec.queue for spec in specs if _is_due_now(spec)})
    # A Core INSERT on the table (not the ORM entity): a plain multi-row INSERT, no identity-map work.
    statement = insert(task_table)
    for shape in _group_by_timing(rows):
        session.execute(statement.values(_timing_values(shape[0])), [r["values"] for r in shape])
    if dialect == "postgresql":
        for queue_name in wake_queues:
            session.execute(select(func.pg_notify(literal(NOTIFY_CHANNEL), literal(queue_name))))
    return [spec.id for spec in specs]


def _row(spec: TaskSpec, lineage: Lineage | None) -> dict[str, Any]:
    _check(spec)
    return {
        "values": {
            "id": spec.id,
            "name": spec.name,
            "queue": spec.queue,
            "state": TaskState.PENDING.value,
            "priority": spec.priority,
            "args": dict(spec.args) if spec.args is not None else None,
            "attempts": 0,
            "max_attempts": spec.max_attempts,
            "cancel_requested": False,
            "parent_id": lineage.parent_id if lineage else None,
            "root_id": lineage.root_id if lineage else None,
        },
        "timing": (_seconds(spec.delay), spec.run_at, _seconds(spec.expires_in)),
    }


def _check(spec: TaskSpec) -> None:
    if not spec.name:
        raise ValueError("a task needs a name")
    if spec.max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if spec.delay is not None and spec.run_at is not None:
        raise ValueError("give either delay or run_at, not both")
    if spec.run_at is not None and spec.run_at.tzinfo is None:
        raise ValueError("run_at must be timezone-aware")


def _seconds(value: float | dt.timedelta | None) -> float | None:
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _is_due_now(spec: TaskSpec) -> bool:
    delay = _seconds(spec.delay)
    return spec.run_at is None and (delay is None or delay <= 0)


def _group_by_timing(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows with the same (delay, run_at, expiry) share one statement; a bulk enqueue is usually one group."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["timing"], []).append(row)
    return list(groups.values())


def _timing_values(row: dict[str, Any]) -> dict[str, Any]:
    """Timestamps come from the database clock, so every worker compares them against the same time."""
    delay, run_at, expires_in = row["timing"]
    values: dict[str, Any] = {"created_at": db_now()}
    values["run_at"] = run_at if run_at is not None else db_now(delay or 0)
    values["expires_at"] = None if expires_in is None else db_now(expires_in)
    return values
