"""Promise 6, graceful shutdown: SIGTERM lets running handlers finish and hands back what never started.

A stopping worker keeps heartbeating until its last handler returns, so no other worker takes that task
for a lost one meanwhile.
"""

from __future__ import annotations

import signal
import time
import uuid

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import TaskSpec, TaskState, enqueue, enqueue_many
from queue_core._models import task_table as tasks
from queue_core._models import worker_table as workers_table
from tests.support.inprocess import (
    SlowTask,
    fast_settings,
    handler_runs,
    running_worker,
    task_row,
    wait_for,
    wait_for_state,
    wait_until_set,
)
from tests.support.queue_handlers import effects
from tests.support.worker_process import WorkerProcesses

SLOW_HANDLER_SECONDS = 3.0  # three leases of the workers below


def snapshot(engine: Engine) -> dict[uuid.UUID, tuple[str, int, str | None]]:
    """(state, attempts, progress message) of every task."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(tasks.c.id, tasks.c.state, tasks.c.attempts, tasks.c.progress_message)
        )
        return {row.id: (row.state, row.attempts, row.progress_message) for row in rows}


def two_running_and_two_buffered(engine: Engine) -> dict[uuid.UUID, tuple[str, int, str | None]] | None:
    """The snapshot once four tasks are claimed and two of them are inside their handler, else None."""
    now = snapshot(engine)
    claimed = sum(state == "running" for state, _, _ in now.values())
    started = sum(message is not None for _, _, message in now.values())
    return now if (claimed, started) == (4, 2) else None


def test_sigterm_lets_running_handlers_finish_and_hands_back_buffered_tasks(
    engine: Engine, workers: WorkerProcesses
) -> None:
    # Two runner threads and a buffer of two: two tasks run, two wait in the buffer, two stay pending.
    [worker] = workers.start(concurrency=2, prefetch=2)
    with Session(engine) as session:
        ids = enqueue_many(
            session, [TaskSpec(name="test.record_slowly", args={"seconds": 4}) for _ in range(6)]
        )
        session.commit()
    before = wait_for(
        lambda: two_running_and_two_buffered(engine),
        timeout=30,
        what="two tasks run and two more are claimed into the buffer",
    )
    in_flight = {task_id for task_id, (_, _, message) in before.items() if message is not None}
    buffered = {task_id for task_id, (state, _, message) in before.items() if state == "running"} - in_flight

    exit_code = worker.stop(signal.SIGTERM, seconds=30)

    after = snapshot(engine)
    with engine.connect() as connection:
        with_effects = set(connection.execute(select(effects.c.task_id)).scalars())
        worker_rows = connection.execute(select(workers_table.c.id)).scalars().all()
    assert exit_code == 0
    assert with_effects == in_flight
    assert {task_id: after[task_id][:2] for task_id in in_flight} == dict.fromkeys(
        in_flight, ("succeeded", 1)
    )
    assert len(buffered) == 2
    # Handed back as if never claimed: pending, and the attempt not counted.
    assert {task_id: after[task_id][:2] for task_id in set(ids) - in_flight} == dict.fromkeys(
        set(ids) - in_flight, ("pending", 0)
    )
    assert not any(state == "running" for state, _, _ in after.values())
    assert worker_rows == []
    assert "2 buffered task(s) handed back" in worker.log_text()


def test_a_stopping_worker_keeps_its_running_task_until_the_handler_finishes(
    three_engines: list[Engine],
) -> None:
    slow = SlowTask("weigh-pallet-slowly", seconds=SLOW_HANDLER_SECONDS)
    registry, started, attempts = slow.registry, slow.started, slow.attempts

    settings = fast_settings(
        concurrency=1, lease_seconds=1, heartbeat_interval=0.2, maintenance_interval=0.1, shutdown_grace=5
    )
    first_engine, second_engine, observer = three_engines

    with running_worker(first_engine, registry, settings) as stopping:
        with Session(observer) as session:
            task_id = enqueue(session, "weigh-pallet-slowly")
            session.commit()
        wait_until_set(started, "the slow handler starting")
        assert task_row(observer, task_id)["worker_id"] == stopping.id
        with running_worker(second_engine, registry, settings):
            stopping.stop()  # SIGTERM's handler does exactly this
            wait_for_state(observer, task_id, TaskState.SUCCEEDED)
            # The second worker rescues within a lease of silence: give it three leases to (wrongly) do so.
            finished = time.monotonic()
            wait_for(lambda: time.monotonic() - finished >= 3.0, what="three leases passing")

    row = task_row(observer, task_id)
    assert (row["state"], row["attempts"]) == ("succeeded", 1), row
    assert attempts == [1]
    assert [r.task_id for r in handler_runs(observer, "weigh-pallet-slowly")] == [task_id]
