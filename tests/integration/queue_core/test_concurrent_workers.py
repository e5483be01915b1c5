"""Promise 4: concurrent worker processes drain a backlog with every task's effect exactly once.

On PostgreSQL claims use ``FOR UPDATE SKIP LOCKED``; on SQLite every transaction takes the single write
lock (``BEGIN IMMEDIATE``), so claims take turns. Either way no two workers may get the same task: a task
run twice would show as a second attempt, or as a second effect row (which its primary key refuses).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from queue_core import TaskSpec, enqueue_many
from queue_core._models import error_table as errors
from queue_core._models import task_table as tasks
from tests.support.inprocess import wait_for
from tests.support.queue_handlers import effects
from tests.support.worker_process import WorkerProcesses


def drain(
    engine: Engine, workers: WorkerProcesses, *, processes: int, tasks_count: int, timeout: float
) -> None:
    """Start the workers, then commit the whole backlog at once and wait until nothing is left to run."""
    workers.start(processes, concurrency=2)
    with Session(engine) as session:
        enqueue_many(session, [TaskSpec(name="test.record") for _ in range(tasks_count)])
        session.commit()
    wait_for(
        lambda: count_where(engine, tasks.c.state.in_(["pending", "running"])) == 0,
        timeout=timeout,
        what="every task has finished",
        interval=0.2,
    )


def count_where(engine: Engine, *conditions: ColumnElement[bool]) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(tasks).where(*conditions)).scalar_one()
        )


def assert_each_task_ran_exactly_once(engine: Engine, tasks_count: int, processes: int) -> None:
    with engine.connect() as connection:
        by_state: dict[str, int] = dict(
            connection.execute(select(tasks.c.state, func.count()).group_by(tasks.c.state)).all()
        )
        attempts: dict[int, int] = dict(
            connection.execute(select(tasks.c.attempts, func.count()).group_by(tasks.c.attempts)).all()
        )
        effect_count = connection.execute(select(func.count()).select_from(effects)).scalar_one()
        unmatched = connection.execute(
            select(func.count())
            .select_from(tasks.outerjoin(effects, effects.c.task_id == tasks.c.id))
            .where(effects.c.task_id.is_(None))
        ).scalar_one()
        error_count = connection.execute(select(func.count()).select_from(errors)).scalar_one()
        pids = connection.execute(select(func.count(func.distinct(effects.c.pid)))).scalar_one()
    assert by_state == {"succeeded": tasks_count}
    assert attempts == {1: tasks_count}  # no task was claimed twice
    assert effect_count == tasks_count
    assert unmatched == 0  # and each task has its own effect row
    assert error_count == 0
    assert pids == processes  # every process took part: the claims really did compete


# PostgreSQL: four processes on 5,000 tasks. SQLite takes one writer at a time, so fewer of both; enough
# tasks (over a second of work) that the second process joins in even on a busy machine.
WORKLOAD = {"postgresql": (4, 5000), "sqlite": (2, 1500)}


def test_concurrent_worker_processes_run_every_task_exactly_once(
    engine: Engine, workers: WorkerProcesses
) -> None:
    processes, tasks_count = WORKLOAD[engine.dialect.name]
    drain(engine, workers, processes=processes, tasks_count=tasks_count, timeout=90)
    assert_each_task_ran_exactly_once(engine, tasks_count, processes=processes)
