"""Watching worker processes lose their tasks: who runs a task, what each attempt wrote, what was recorded.

Shared by the tests of promise 3 (tests/integration/queue_core/): the test handler ``test.record_slowly``
reports on entry which process runs it, so a test can kill, pause or cut off exactly that process.
"""

from __future__ import annotations

import signal
import sqlite3
import time
import uuid

from sqlalchemy import Engine, make_url, select

from queue_core import task_details
from queue_core._models import worker_table
from tests.support.inprocess import wait_for
from tests.support.queue_handlers import effects, task_row
from tests.support.worker_process import WorkerProcess


def wait_until_started_by(engine: Engine, task_id: uuid.UUID, process: WorkerProcess) -> None:
    """Wait until ``process`` is inside the task's handler (the handler reports progress on entry)."""
    wait_for(
        lambda: f"started by pid {process.pid} " in (task_row(engine, task_id)["progress_message"] or ""),
        timeout=30,
        what=f"worker process {process.pid} starts the handler",
    )


def wait_until_finished(engine: Engine, task_id: uuid.UUID, timeout: float = 40) -> dict[str, object]:
    return wait_for(
        lambda: (row := task_row(engine, task_id))["state"] == "succeeded" and row,
        timeout=timeout,
        what=f"task {task_id} succeeds",
    )


def effect_rows(engine: Engine, task_id: uuid.UUID) -> list[tuple[int, int]]:
    """(pid, attempt) of every effect row of the task."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(effects.c.pid, effects.c.attempt).where(effects.c.task_id == task_id)
        ).all()
    return [(row.pid, row.attempt) for row in rows]


def error_types(engine: Engine, task_id: uuid.UUID) -> list[tuple[int, str, uuid.UUID | None]]:
    """(attempt, error type, worker ID) of every recorded error of the task."""
    with engine.connect() as connection:
        return [(e.attempt, e.error_type, e.worker_id) for e in task_details(connection, task_id).errors]


def silence_before_rescue(engine: Engine, task_id: uuid.UUID, lost: WorkerProcess) -> float:
    """Seconds between the lost worker's last heartbeat and the rescue, both by the database clock."""
    with engine.connect() as connection:
        [error] = task_details(connection, task_id).errors
        last_beat = connection.execute(
            select(worker_table.c.heartbeat_at).where(worker_table.c.id == lost.worker_id)
        ).scalar_one()
    return float((error.failed_at - last_beat).total_seconds())


def pause(process: WorkerProcess, database_url: str) -> None:
    """SIGSTOP the process at a moment it holds no SQLite write lock.

    A SQLite database has one writer at a time: a writer paused inside a transaction stalls every other
    process until it resumes, however the queue behaves. That is SQLite's model, not the lease under
    test, so on SQLite the pause is retried until it lands outside a transaction.
    """
    url = make_url(database_url)
    for _ in range(50):
        process.send(signal.SIGSTOP)
        if url.get_backend_name() != "sqlite" or _write_lock_is_free(str(url.database)):
            return
        process.send(signal.SIGCONT)
        time.sleep(0.02)
    raise AssertionError(f"could not pause worker process {process.pid} outside a transaction")


def _write_lock_is_free(path: str) -> bool:
    connection = sqlite3.connect(path, timeout=0.5, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()
