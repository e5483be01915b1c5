"""Task handlers for queue_core's integration tests, and the ``effects`` table they write to.

Each handler's business write is one row in ``effects`` keyed by the task's ID. The primary key makes a
second effect of the same task fail loudly; tests also count the rows, so an effect that ran twice cannot
hide behind a retry. ``pid`` and ``attempt`` say which worker process and which attempt wrote the row.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Engine, Float, Integer, MetaData, Table, Uuid, func, insert, select
from sqlalchemy.orm import Session

from queue_core import RetryPolicy, RunningTask, TaskRegistry, enqueue, task_details

metadata = MetaData()

effects = Table(
    "effects",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=False),  # time.time() when the handler began
    Column("finished_at", Float, nullable=False),  # time.time() just before the row was written
)

registry = TaskRegistry()

# Retry soon: tests that retry wait for the second attempt, not for a production backoff.
QUICK_RETRY = RetryPolicy(max_attempts=3, base_seconds=0.2, jitter=0.0)


def create_test_tables(engine: Engine) -> None:
    """Create the ``effects`` table in the test's database (the migrations know nothing about it)."""
    metadata.create_all(engine)


def record_effect(task: RunningTask, session: Session, started_at: float) -> None:
    """Write this attempt's effect row in the handler's session (so it commits with the task, or not)."""
    session.execute(
        insert(effects).values(
            task_id=task.id,
            pid=os.getpid(),
            attempt=task.attempt,
            started_at=started_at,
            finished_at=time.time(),
        )
    )


def count_effects(engine: Engine, task_id: uuid.UUID | None = None) -> int:
    """How many effect rows exist, in all or for one task."""
    query = select(func.count()).select_from(effects)
    if task_id is not None:
        query = query.where(effects.c.task_id == task_id)
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def enqueue_committed(engine: Engine, name: str, args: Mapping[str, Any] | None = None) -> uuid.UUID:
    """Enqueue one task in a transaction of its own and commit it; its ID."""
    with Session(engine) as session:
        task_id = enqueue(session, name, args=args)
        session.commit()
    return task_id


def task_row(engine: Engine, task_id: uuid.UUID) -> dict[str, Any]:
    """The task's row as it is committed now, as a dict of columns."""
    with engine.connect() as connection:
        return task_details(connection, task_id).task


@registry.task("test.record", retry=QUICK_RETRY)
def record(task: RunningTask, session: Session) -> None:
    """Write one effect row."""
    record_effect(task, session, time.time())


@registry.task("test.record_slowly", retry=QUICK_RETRY)
def record_slowly(task: RunningTask, session: Session) -> None:
    """Say it started (progress commits at once), sleep ``args["seconds"]``, then write one effect row.

    The progress message tells a test which process is inside the handler, so it can kill or pause
    exactly that process mid-handler.
    """
    started_at = time.time()
    assert task.args is not None
    task.report_progress(0.0, f"started by pid {os.getpid()} in attempt {task.attempt}")
    time.sleep(float(task.args["seconds"]))
    record_effect(task, session, started_at)


@registry.task("test.record_then_fail_first_attempt", retry=QUICK_RETRY)
def record_then_fail_first_attempt(task: RunningTask, session: Session) -> None:
    """Write the effect row, then raise on the first attempt: that write must roll back with the failure."""
    record_effect(task, session, time.time())
    if task.attempt == 1:
        raise RuntimeError("the payment provider timed out on the first attempt")


@registry.task("test.record_then_commit", retry=QUICK_RETRY)
def record_then_commit(task: RunningTask, session: Session) -> None:
    """Write the effect row and then (wrongly) commit: the worker must refuse the split transaction."""
    record_effect(task, session, time.time())
    session.commit()


@registry.task("test.noop", retry=QUICK_RETRY)
def noop(task: RunningTask, session: Session) -> None:
    """Run no SQL at all: such tasks complete in one shared UPDATE at the end of their commit group."""
