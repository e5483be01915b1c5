"""A worker's row in ``queue_workers`` and the heartbeat that keeps it, and so its tasks, alive.

The row's ``lease_expires_at`` is what keeps a worker's claimed tasks its own (ADR 0002): each beat moves
it ``lease_seconds`` ahead; a worker silent past it loses its tasks to a rescue. On PostgreSQL the row also
names the session lock the worker holds (ADR 0012), and a worker whose lock is free is dead at once; the
caller registers and beats only while it holds the lock it names, never before. A beat also brings news
of cancellation requests, and hands back tasks the database says the worker holds but the worker no
longer does (after a commit that failed because the database went away).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import NamedTuple

from sqlalchemy import Connection, delete, insert, select, update

from queue_core._clock import db_now
from queue_core._maintenance import GIVEN_UP, WORKER_LOST, hand_back
from queue_core._models import in_state
from queue_core._models import task_table as tasks
from queue_core._models import worker_table as workers
from queue_core._states import TaskState
from queue_core._worker_settings import WorkerSettings

log = logging.getLogger("queue_core._worker")


class WorkerRowGone(Exception):  # noqa: N818 - reads as what happened
    """A worker that vouches by a session lock found its row removed: it must take a new lock."""


class Holdings(NamedTuple):
    """What the worker holds in memory at one moment."""

    tasks: set[uuid.UUID]  # claimed tasks not yet finished
    claiming: list[uuid.UUID]  # lease tokens of claims in flight, which hold no task yet


def register(
    connection: Connection,
    worker_id: uuid.UUID,
    queues: Sequence[str],
    settings: WorkerSettings,
    lock_key: int | None = None,
) -> None:
    """Insert the worker's row, its lease starting now; ``lock_key`` is the session lock it holds, if any."""
    connection.execute(insert(workers).values(_worker_row(worker_id, queues, settings, lock_key)))


def vouch_again(
    connection: Connection,
    worker_id: uuid.UUID,
    queues: Sequence[str],
    settings: WorkerSettings,
    lock_key: int,
) -> list[uuid.UUID]:
    """After a lost session lock: name the new one in the worker's row and hand back what it still held.

    Between the loss and now the worker counted as dead, so its tasks are handed back whether a rescuer
    got there first or not (it claimed nothing meanwhile). The row is written first: a rescuer removing
    it holds its row lock until it commits, so this waits and then registers again.
    """
    renamed = connection.execute(
        update(workers)
        .where(workers.c.id == worker_id)
        .values(
            heartbeat_at=db_now(),
            lease_expires_at=db_now(settings.lease_seconds),
            session_lock_key=lock_key,
        )
    )
    if renamed.rowcount == 0:
        register(connection, worker_id, queues, settings, lock_key)
    mine = in_state(TaskState.RUNNING) & (tasks.c.worker_id == worker_id)
    return hand_back(connection, mine, WORKER_LOST, "its worker lost its session lock")


def unregister(connection: Connection, worker_id: uuid.UUID) -> None:
    """Remove the worker's row: it holds nothing any more."""
    connection.execute(delete(workers).where(workers.c.id == worker_id))


def beat(
    connection: Connection,
    worker_id: uuid.UUID,
    queues: Sequence[str],
    settings: WorkerSettings,
    holdings: Callable[[], Holdings],
    lock_key: int | None = None,
) -> list[uuid.UUID]:
    """Extend the worker's lease and hand back what it no longer holds; returns the held tasks whose
    cancellation was requested. ``holdings`` is asked after the database's clock is read, so a claim
    made meanwhile is never mistaken for a task the worker gave up."""
    extended = connection.execute(
        update(workers)
        .where(workers.c.id == worker_id)
        .values(heartbeat_at=db_now(), lease_expires_at=db_now(settings.lease_seconds))
    )
    if extended.rowcount == 0:
        if lock_key is not None:
            # Removed by a rescuer that found its lock free, or whose lease ran out: either way the lock
            # it names is suspect, and a row naming a lock this worker may not hold would let it claim
            # tasks that the next rescue takes back, attempt counted. A new lock registers it again.
            raise WorkerRowGone(f"worker {worker_id} has no row any more")
        log.warning("worker %s was declared dead (silent too long); registering again", worker_id)
        register(connection, worker_id, queues, settings, lock_key)
    mine = (in_state(TaskState.RUNNING)) & (tasks.c.worker_id == worker_id)
    requested = connection.execute(select(tasks.c.id).where(mine, tasks.c.cancel_requested)).scalars().all()
    # What this worker holds, as of a moment on the database clock. A claim registers its token before it
    # runs, so a claim in flight is among ``claiming``, and any claim made after the snapshot has a later
    # ``started_at``: neither is mistaken for a task the worker gave up.
    as_of = connection.scalar(select(db_now()))
    held = holdings()
    orphaned = mine & (tasks.c.started_at < as_of)
    if held.tasks:
        orphaned = orphaned & tasks.c.id.not_in(held.tasks)
    if held.claiming:
        orphaned = orphaned & tasks.c.lease_token.not_in(held.claiming)
    hand_back(connection, orphaned, GIVEN_UP, "the worker gave it up after a failed commit")
    return [
        task_id for task_id in requested if task_id in held.tasks
    ]  # a flag for a task not held outlives it


def _worker_row(
    worker_id: uuid.UUID, queues: Sequence[str], settings: WorkerSettings, lock_key: int | None
) -> dict[str, object]:
    return {
        "id": worker_id,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "queues": list(queues),
        "concurrency": settings.concurrency,
        "started_at": db_now(),
        "heartbeat_at": db_now(),
        "lease_expires_at": db_now(settings.lease_seconds),
        "session_lock_key": lock_key,
    }
