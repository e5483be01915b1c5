"""Claiming tasks: the one query every worker runs in a loop.

    WITH claimable AS (
        SELECT id FROM queue_tasks
        WHERE state = 'pending' AND queue = :claim_queue AND name IN (...)
          AND run_at <= statement_timestamp()
          AND (expires_at IS NULL OR expires_at > statement_timestamp())
        ORDER BY priority DESC, run_at, id
        LIMIT :room
        FOR UPDATE SKIP LOCKED
    )
    UPDATE queue_tasks SET state = 'running', attempts = attempts + 1, started_at = statement_timestamp(),
                           worker_id = :claimer, lease_token = :token
    FROM claimable WHERE queue_tasks.id = claimable.id
    RETURNING ...

The inner SELECT walks the partial index ``ix_queue_tasks_claimable``, which holds only pending rows in
claim order, so its cost depends on the backlog, never on the history of finished tasks. ``FOR UPDATE
SKIP LOCKED`` makes concurrent claimers pass over rows another claimer has locked instead of waiting for
them, so two workers never get the same task and never queue up behind each other. On SQLite the clause is
dropped: every transaction there begins with ``BEGIN IMMEDIATE``, so claims simply take turns.

``lease_token`` is fresh for every claim. Whatever the worker later does with the task (complete it,
retry it, report progress) is an UPDATE that also requires ``lease_token = :token``: the fence. If the task
was rescued from this worker and claimed by another, the token no longer matches and nothing is written.

Task names with a concurrency or rate limit are claimed one name at a time after locking that name's row
in ``queue_name_limits``, so that the count of running tasks read under that lock is still true when the
claim commits: a limit holds across all workers, not just within one.

On PostgreSQL a claim without limited names is that one statement in autocommit mode: atomic on its
own, and one round trip instead of three (BEGIN, UPDATE, COMMIT). The worker claims through its
bookkeeping engine (``engine.bookkeeping_engine``), whose connections commit with
``synchronous_commit = off``. Losing a claim in a database crash only means the task is claimed again;
every completion commits synchronously, and PostgreSQL writes its WAL in order, so no completion is ever
durable while the claim it depends on is not.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from queue_core._clock import db_now
from queue_core._models import in_state
from queue_core._models import limit_table as limits
from queue_core._models import task_table as tasks
from queue_core._registry import TaskOptions
from queue_core._states import TaskState


@dataclass(frozen=True)
class ClaimedTask:
    """A task this worker now holds, as read at claim time."""

    id: uuid.UUID
    name: str
    queue: str
    priority: int
    attempt: int
    max_attempts: int
    args: dict[str, Any] | None
    parent_id: uuid.UUID | None
    root_id: uuid.UUID | None
    run_at: dt.datetime
    started_at: dt.datetime
    lease_token: uuid.UUID
    cancel_requested: bool


_RETURNING = (
    tasks.c.id,
    tasks.c.name,
    tasks.c.queue,
    tasks.c.priority,
    tasks.c.attempts,
    tasks.c.max_attempts,
    tasks.c.args,
    tasks.c.parent_id,
    tasks.c.root_id,
    tasks.c.run_at,
    tasks.c.started_at,
    tasks.c.lease_token,
    tasks.c.cancel_requested,
)


def claim(
    engine: Engine,
    *,
    worker_id: uuid.UUID,
    lease_token: uuid.UUID,
    queues: Sequence[str],
    options: Mapping[str, TaskOptions],
    limit: int,
) -> list[ClaimedTask]:
    """Claim up to ``limit`` tasks of the names in ``options`` from ``queues``, in one transaction."""
    if limit <= 0 or not queues or not options:
        return []
    free_names = [name for name, opts in options.items() if not opts.is_limited]
    limited = {name: opts for name, opts in options.items() if opts.is_limited}
    if not limited and engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            claimed = _claim_rows(connection, worker_id, lease_token, queues, free_names, limit)
        return _in_claim_order(claimed)
    with engine.begin() as connection:
        # Limited names may take at most half of a claim while free names exist, and go first: a
        # backlog of either kind would otherwise fill every claim and starve the other.
        share = max(1, limit // 2) if free_names else limit
        claimed = _claim_limited_names(connection, worker_id, lease_token, queues, limited, share)
        if free_names and len(claimed) < limit:
            room = limit - len(claimed)
            claimed += _claim_rows(connection, worker_id, lease_token, queues, free_names, room)
        if free_names and len(claimed) < limit:  # free names left room: limited ones may use it
            room = limit - len(claimed)
            claimed += _claim_limited_names(connection, worker_id, lease_token, queues, limited, room)
    return _in_claim_order(claimed)


def _claim_limited_names(
    connection: Connection,
    worker_id: uuid.UUID,
    lease_token: uuid.UUID,
    queues: Sequence[str],
    limited: Mapping[str, TaskOptions],
    room: int,
) -> list[ClaimedTask]:
    claimed: list[ClaimedTask] = []
    for name, opts in limited.items():
        if len(claimed) >= room:
            break
        claimed += _claim_limited(connection, worker_id, lease_token, queues, name, opts, room - len(claimed))
    return claimed


def _in_claim_order(claimed: list[ClaimedTask]) -> list[ClaimedTask]:
    """RETURNING does not keep the CTE's order; restore it so buffered tasks start by priority."""
    return sorted(claimed, key=lambda t: (-t.priority, t.run_at))


def _claim_rows(
    connection: Connection,
    worker_id: uuid.UUID,
    lease_token: uuid.UUID,
    queues: Sequence[str],
    names: Sequence[str],
    limit: int,
) -> list[ClaimedTask]:
    """One claim statement per queue, in the order given, until ``limit`` tasks are claimed.

    One queue per statement keeps each claim an index-ordered scan of ``ix_queue_tasks_claimable`` that
    stops after ``limit`` rows; ``queue IN (...)`` would make PostgreSQL sort the whole backlog of those
    queues for every claim. The worker rotates the order of its queues from one claim to the next.
    """
    claimed: list[ClaimedTask] = []
    for queue in queues:
        room = limit - len(claimed)
        if room <= 0:
            break
        params = {
            "claim_queue": queue,
            "names": list(names),
            "room": room,
            "claimer": worker_id,
            "token": lease_token,
        }
        claimed += [_claimed(row) for row in connection.execute(CLAIM, params)]
    return claimed


# Built once; see the module docstring for the SQL this renders.
_CLAIMABLE = (
    select(tasks.c.id)
    .where(
        in_state(TaskState.PENDING),
        tasks.c.queue == bindparam("claim_queue"),
        tasks.c.name.in_(bindparam("names", expanding=True)),
        tasks.c.run_at <= db_now(),
        or_(tasks.c.expires_at.is_(None), tasks.c.expires_at > db_now()),
    )
    .order_by(tasks.c.priority.desc(), tasks.c.run_at, tasks.c.id)
    .limit(bindparam("room"))
    .with_for_update(skip_locked=True)
    .cte("claimable")
)
CLAIM = (
    update(tasks)
    .where(tasks.c.id == _CLAIMABLE.c.id)
    .values(
        state=TaskState.RUNNING.value,
        attempts=tasks.c.attempts + 1,
        started_at=db_now(),
        worker_id=bindparam("claimer"),
        lease_token=bindparam("token"),
    )
    .returning(*_RETURNING)
)


def _claim_limited(
    connection: Connection,
    worker_id: uuid.UUID,
    lease_token: uuid.UUID,
    queues: Sequence[str],
    name: str,
    options: TaskOptions,
    room: int,
) -> list[ClaimedTask]:
    """Claim tasks of one limited name while holding its ``queue_name_limits`` row lock."""
    bucket = _lock_limit_row(connection, name, options)
    if bucket is None:
        return []  # another worker is claiming this name right now; it will take what is allowed
    tokens, refilled_at, now = bucket
    allowed = room
    if options.concurrency_limit is not None:
        running = connection.scalar(
            select(func.count()).select_from(tasks).where(in_state(TaskState.RUNNING), tasks.c.name == name)
        )
        allowed = min(allowed, options.concurrency_limit - int(running or 0))
    if options.rate_limit is not None:
        elapsed = max(0.0, (now - refilled_at).total_seconds())
        tokens = min(float(options.rate_limit.count), tokens + elapsed * options.rate_limit.tokens_per_second)
        allowed = min(allowed, math.floor(tokens))
    claimed = _claim_rows(connection, worker_id, lease_token, queues, [name], allowed) if allowed > 0 else []
    if options.rate_limit is not None:
        connection.execute(
            update(limits).where(limits.c.name == name).values(tokens=tokens - len(claimed), refilled_at=now)
        )
    return claimed


def _lock_limit_row(
    connection: Connection, name: str, options: TaskOptions
) -> tuple[float, dt.datetime, dt.datetime] | None:
    """Create the name's row on first use, then lock it; None when another claimer holds the lock."""
    burst = float(options.rate_limit.count) if options.rate_limit else 0.0
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(
        insert(limits).values(name=name, tokens=burst, refilled_at=db_now()).on_conflict_do_nothing()
    )
    row = connection.execute(
        select(limits.c.tokens, limits.c.refilled_at, db_now())
        .where(limits.c.name == name)
        .with_for_update(skip_locked=True)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def _claimed(row: Any) -> ClaimedTask:
    return ClaimedTask(
        id=row.id,
        name=row.name,
        queue=row.queue,
        priority=row.priority,
        attempt=row.attempts,
        max_attempts=row.max_attempts,
        args=row.args,
        parent_id=row.parent_id,
        root_id=row.root_id,
        run_at=row.run_at,
        started_at=row.started_at,
        lease_token=row.lease_token,
        cancel_requested=row.cancel_requested,
    )


def unclaim(connection: Connection, which: ColumnElement[bool]) -> None:
    """Put running tasks matching ``which`` back to ``pending`` as if never claimed: the attempt the
    claim counted is taken back. For tasks claimed but never started (a failed claim, a worker's buffer
    at shutdown); a task whose handler ran is handed back with its attempt counted instead."""
    connection.execute(
        update(tasks)
        .where(which, in_state(TaskState.RUNNING))
        .values(
            state=TaskState.PENDING.value,
            attempts=tasks.c.attempts - 1,
            worker_id=None,
            lease_token=None,
            started_at=None,
        )
    )
