"""Keeping the queue healthy: rescue tasks of dead workers, expire overdue ones, prune finished ones.

Two rules find a dead worker: its lease ran out (ADR 0002), or, on PostgreSQL, the session lock its row
names is free (ADR 0012). Either hands its running tasks back with the attempt counted.

Every worker runs these on a timer; they are idempotent, so it does not matter how many run at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, case, delete, insert, select, text, tuple_, update

from queue_core._clock import db_now
from queue_core._models import error_table as errors
from queue_core._models import in_state
from queue_core._models import task_table as tasks
from queue_core._models import worker_table as workers
from queue_core._references import OnPrune, TaskReference, still_needed
from queue_core._session_lock import LOCK_CLASS
from queue_core._states import FINISHED_STATES, TaskState

WORKER_LOST = "queue_core.WorkerLost"
GIVEN_UP = "queue_core.TaskGivenUp"


def rescue_abandoned(connection: Connection) -> list[uuid.UUID]:
    """Hand back running tasks whose worker's lease has run out (or whose worker row is gone).

    Each worker's heartbeat keeps its ``lease_expires_at`` in the future, so a live worker's tasks are
    never taken, however long they run. Rows locked by a worker that is committing right now are skipped
    (SKIP LOCKED): that commit either lands or it does not, and the next pass sees which.
    """
    live_workers = select(workers.c.id).where(workers.c.lease_expires_at > db_now())
    abandoned = (in_state(TaskState.RUNNING)) & (
        tasks.c.worker_id.is_(None) | tasks.c.worker_id.not_in(live_workers)
    )
    return hand_back(connection, abandoned, WORKER_LOST, "its worker stopped heartbeating")


def rescue_unlocked(connection: Connection) -> list[uuid.UUID]:
    """On PostgreSQL, hand back the running tasks of workers whose session lock is free; remove their rows.

    A worker holds its lock from before its row names it until its process or session ends (ADR 0012), so
    a lock this transaction can take belongs to a dead worker. It is taken with
    ``pg_try_advisory_xact_lock`` and kept until this transaction ends: never waited for, and meanwhile
    no worker can take it back, and a second rescuer fails to take it and leaves that worker to this one.
    A row is removed only if it still names the free key, so a worker that took a new lock and wrote it
    since is left alone. Tasks skipped here (rows locked) are rescued by the lease rule's next pass, which
    takes any task whose worker row is gone.
    """
    if connection.dialect.name != "postgresql":
        return []
    named = connection.execute(
        select(workers.c.id, workers.c.session_lock_key).where(workers.c.session_lock_key.is_not(None))
    ).all()
    if not named:
        return []
    free = set(
        connection.execute(
            text(
                # CASE fixes the order: a key this session holds already (a pooler handed it a live
                # worker's server session) is never tried, since an advisory lock is re-entrant.
                "SELECT key FROM unnest(CAST(:keys AS integer[])) AS key WHERE CASE WHEN EXISTS ("
                " SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND classid = CAST(:cls AS oid) AND objid = CAST(key AS oid) AND objsubid = 2"
                ") THEN false ELSE pg_try_advisory_xact_lock(:cls, key) END"
            ),
            {"keys": sorted({row.session_lock_key for row in named}), "cls": LOCK_CLASS},
        ).scalars()
    )
    suspects = [(row.id, row.session_lock_key) for row in named if row.session_lock_key in free]
    if not suspects:
        return []
    dead = (
        connection.execute(
            delete(workers)
            .where(tuple_(workers.c.id, workers.c.session_lock_key).in_(suspects))
            .returning(workers.c.id)
        )
        .scalars()
        .all()
    )
    if not dead:
        return []
    abandoned = in_state(TaskState.RUNNING) & tasks.c.worker_id.in_(dead)
    return hand_back(
        connection, abandoned, WORKER_LOST, "its worker's session ended (its session lock was free)"
    )


def hand_back(
    connection: Connection, condition: ColumnElement[bool], error_type: str, why: str
) -> list[uuid.UUID]:
    """Put running tasks matching ``condition`` back to ``pending``, or ``dead`` once attempts are used up.

    The attempt was counted when the task was claimed, so a task that keeps being handed back (a handler
    that crashes its worker, a poison task) ends ``dead`` like any other failing task. Each hand-back is
    recorded as an error of the attempt, saying why.
    """
    rows = connection.execute(
        select(tasks.c.id, tasks.c.worker_id, tasks.c.attempts)
        .where(condition)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    used_up = tasks.c.attempts >= tasks.c.max_attempts
    connection.execute(
        update(tasks)
        .where(tasks.c.id.in_(ids))
        .values(
            state=case((used_up, TaskState.DEAD.value), else_=TaskState.PENDING.value),
            finished_at=case((used_up, db_now()), else_=None),
            run_at=db_now(),
            worker_id=None,
            lease_token=None,
        )
    )
    connection.execute(
        insert(errors).values(failed_at=db_now()),
        [
            {
                "task_id": row.id,
                "attempt": row.attempts,
                "worker_id": row.worker_id,
                "error_type": error_type,
                "message": f"attempt {row.attempts} handed back: {why} (worker {row.worker_id})",
                "traceback": None,
            }
            for row in rows
        ],
    )
    return ids


def expire_overdue(connection: Connection) -> int:
    """End pending tasks whose deadline to start has passed; returns how many."""
    result = connection.execute(
        update(tasks)
        .where(
            in_state(TaskState.PENDING),
            tasks.c.expires_at.is_not(None),
            tasks.c.expires_at <= db_now(),
        )
        .values(state=TaskState.EXPIRED.value, finished_at=db_now())
    )
    return int(result.rowcount)


def forget_dead_workers(connection: Connection, older_than_seconds: float = 600.0) -> int:
    """Delete worker rows whose lease ran out over ``older_than_seconds`` ago (their tasks are rescued)."""
    result = connection.execute(
        delete(workers).where(workers.c.lease_expires_at < db_now(-older_than_seconds))
    )
    return int(result.rowcount)


@dataclass(frozen=True)
class PruneResult:
    """What one ``prune`` call did."""

    deleted: int
    nulled_references: int


def prune(
    connection: Connection,
    references: Sequence[TaskReference],
    *,
    older_than_seconds: float,
    batch_size: int = 1000,
) -> PruneResult:
    """Delete one batch of tasks finished more than ``older_than_seconds`` ago, oldest first.

    A task that a KEEP column still points at stays. A task that succeeded and that SET_NULL columns
    point at goes, its pointers nulled in the same transaction; an unsuccessful one stays while any row
    points at it, so it can still be found dangling and repaired. Call repeatedly until ``deleted`` is 0.
    """
    if connection.dialect.name == "postgresql":
        # The batch query's estimated cost, with a NOT EXISTS per referencing column, can pass PostgreSQL's
        # JIT threshold over a long history; one measurement found compiling it took 383 ms of a 414 ms
        # batch, far more than the work. Off for this transaction only. (With states written into the SQL
        # the estimate stays lower: `make bench`'s pruning pass reads the same with or without this.)
        connection.exec_driver_sql("SET LOCAL jit = off")
    due = in_state(*FINISHED_STATES) & (tasks.c.finished_at < db_now(-older_than_seconds))
    batch = [
        row.id
        for row in connection.execute(
            select(tasks.c.id)
            .where(due, ~still_needed(references, tasks.c.id, tasks.c.state))
            .order_by(tasks.c.finished_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ]
    nulled = 0
    for ref in references:
        if ref.on_prune is OnPrune.SET_NULL and batch:
            nulled += int(
                connection.execute(
                    update(ref.table).where(ref.column.in_(batch)).values({ref.column: None})
                ).rowcount
            )
    if batch:
        connection.execute(delete(errors).where(errors.c.task_id.in_(batch)))
        connection.execute(delete(tasks).where(tasks.c.id.in_(batch)))
    return PruneResult(deleted=len(batch), nulled_references=nulled)
