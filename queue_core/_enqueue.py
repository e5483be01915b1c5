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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Float, String, bindparam, func, insert, literal, select, text
from sqlalchemy.orm import Session

from queue_core._clock import UtcDateTime, db_now
from queue_core._ids import new_task_id
from queue_core._models import task_table as tasks
from queue_core._states import TaskState

NOTIFY_CHANNEL = "queue_core_tasks"
DEFAULT_QUEUE = "default"
DEFAULT_MAX_ATTEMPTS = 5
_ROW_COLUMNS = (
    "id", "name", "queue", "state", "priority", "args", "attempts", "max_attempts", "cancel_requested",
    "parent_id", "root_id",
)  # fmt: skip


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
    """Add one task in the caller's transaction and return its ID; the caller commits.

    This is the low-level form: it knows nothing of a task's declaration. For a declared task, call
    ``definition.enqueue(session)`` instead, which applies its queue, priority, retry budget and expiry.
    """
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
    """Add many tasks in the caller's transaction; returns their IDs.

    On PostgreSQL one statement for all rows, their columns sent as arrays, which also notifies the queues
    they are due in (``INSERT_TASK_ARRAYS_AND_NOTIFY``); on SQLite one prepared INSERT run for each row.
    """
    specs = list(specs)
    if not specs:
        return []
    lineage = current_lineage.get()
    rows = [_row(spec, lineage) for spec in specs]
    bound = session.get_bind().dialect if isinstance(session, Session) else session.dialect
    dialect = bound.name
    due_queues = sorted({spec.queue for spec in specs if _is_due_now(spec)})
    if dialect != "postgresql":
        session.execute(INSERT_TASKS, rows)
    elif len(rows) == 1 and due_queues:
        session.execute(INSERT_AND_NOTIFY, rows[0])  # one round trip instead of two: the common case
    elif bound.driver == "psycopg":
        # The rows and the notifications of the queues they are due in, in one round trip.
        session.execute(INSERT_TASK_ARRAYS_AND_NOTIFY, _as_arrays(rows))
    else:  # another PostgreSQL driver: the same rows, one INSERT each
        session.execute(INSERT_TASKS, rows)
        for queue_name in due_queues:
            session.execute(NOTIFY, {"queue": queue_name})
    return [spec.id for spec in specs]


# Built once, every value a named parameter, so each enqueue reuses one compiled statement. A Core INSERT
# on the table, not the ORM entity: no identity-map work. Times come from the database clock, so every
# worker compares them against the same time.
INSERT_TASKS = insert(tasks).values(
    {
        **{name: bindparam(name) for name in _ROW_COLUMNS},
        "created_at": db_now(),
        "run_at": func.coalesce(
            bindparam("at", type_=UtcDateTime()), db_now(bindparam("delay", type_=Float()))
        ),
        "expires_at": db_now(bindparam("expires_in", type_=Float())),
    }
)
NOTIFY = select(func.pg_notify(literal(NOTIFY_CHANNEL), bindparam("queue", type_=String())))
# PostgreSQL runs a data-modifying CTE even though nothing reads it: insert and notify in one statement.
_INSERTED = INSERT_TASKS.returning(tasks.c.queue).cte("inserted")
INSERT_AND_NOTIFY = select(func.pg_notify(literal(NOTIFY_CHANNEL), _INSERTED.c.queue))


# PostgreSQL, many rows: one statement whatever their number, each column sent as one array and unnested
# into rows on the server, instead of one INSERT per row (even pipelined, each is parsed and executed).
# The NOTIFY rides along as a data-modifying CTE's reader: one per queue that got a task due now (the
# listener wakes the workers of that queue; tasks due later are found by polling).
INSERT_TASK_ARRAYS_AND_NOTIFY = text(
    f"""
    WITH inserted AS (
        INSERT INTO queue_tasks (id, name, queue, state, priority, args, attempts, max_attempts,
                                 cancel_requested, parent_id, root_id, created_at, run_at, expires_at)
        SELECT row.id, row.name, row.queue, 'pending', row.priority, row.args, 0, row.max_attempts,
               false, row.parent_id, row.root_id, statement_timestamp(),
               coalesce(row.at, statement_timestamp() + make_interval(secs => row.delay)),
               statement_timestamp() + make_interval(secs => row.expires_in)
        FROM unnest(CAST(:id AS uuid[]), CAST(:name AS text[]), CAST(:queue AS text[]),
                    CAST(:priority AS smallint[]), CAST(:args AS jsonb[]), CAST(:max_attempts AS integer[]),
                    CAST(:parent_id AS uuid[]), CAST(:root_id AS uuid[]), CAST(:at AS timestamptz[]),
                    CAST(:delay AS float8[]), CAST(:expires_in AS float8[]))
             AS row(id, name, queue, priority, args, max_attempts, parent_id, root_id, at, delay, expires_in)
        RETURNING queue, run_at <= statement_timestamp() AS due
    )
    SELECT pg_notify('{NOTIFY_CHANNEL}', queue)
    FROM (SELECT DISTINCT queue FROM inserted WHERE due) AS due_now
    """
)
_ARRAY_COLUMNS = (
    "id", "name", "queue", "priority", "args", "max_attempts", "parent_id", "root_id", "at", "delay",
    "expires_in",
)  # fmt: skip


def _as_arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows as one list per column, for ``INSERT_TASK_ARRAYS_AND_NOTIFY``; ``args`` as JSON documents."""
    from psycopg.types.json import Jsonb  # here: psycopg is needed only on PostgreSQL

    arrays = {column: [row[column] for row in rows] for column in _ARRAY_COLUMNS}
    arrays["args"] = [None if args is None else Jsonb(args) for args in arrays["args"]]
    for seconds in ("delay", "expires_in"):  # an array holds one type: 90 and 0.5 both as float8
        arrays[seconds] = [None if value is None else float(value) for value in arrays[seconds]]
    return arrays


def _row(spec: TaskSpec, lineage: Lineage | None) -> dict[str, Any]:
    _check(spec)
    return {
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
        "at": spec.run_at,
        "delay": _seconds(spec.delay) or 0.0,
        "expires_in": _seconds(spec.expires_in),
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
