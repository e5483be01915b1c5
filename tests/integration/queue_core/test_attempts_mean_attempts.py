"""Attempts mean attempts: a task claimed ahead but never started keeps its attempt when its worker dies.

A claim counts an attempt, and a worker claims ahead of its free runners (its buffer). Before a commit
group's handlers run, the worker marks them started (``queue_tasks.attempt_started_at``, one statement per
batch); a rescue hands a marked task back with its attempt used and an error saying why, and an unmarked
one with its attempt given back and no error: nothing of it ran (ADR 0015).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine

from queue_core import TaskState
from queue_core._claims import ClaimedTask, claim, mark_started
from queue_core._maintenance import hand_back
from queue_core._models import task_table as tasks
from tests.support.inprocess import wait_for
from tests.support.lost_workers import error_types, wait_until_started_by
from tests.support.queue_handlers import enqueue_committed, registry, task_row
from tests.support.worker_process import WorkerProcesses

LEASE_SECONDS = 30.0


def claimed_by_a_worker(engine: Engine, count: int) -> list[ClaimedTask]:
    """Enqueue ``count`` tasks and claim them all as one worker's claim would."""
    for _ in range(count):
        enqueue_committed(engine, "test.record")
    options = {name: registry.get(name).options for name in registry.names}
    return claim(
        engine,
        worker_id=uuid.uuid4(),
        lease_token=uuid.uuid4(),
        queues=["default"],
        options=options,
        limit=count,
    )


def test_a_handed_back_task_keeps_its_attempt_unless_its_handler_had_started(engine: Engine) -> None:
    claimed = claimed_by_a_worker(engine, 4)
    started, waiting = claimed[:2], claimed[2:]
    with engine.begin() as connection:
        assert mark_started(connection, started) == {t.id for t in started}
        handed = hand_back(connection, tasks.c.id.in_([t.id for t in claimed]), "test.Lost", "the test")

    assert set(handed) == {t.id for t in claimed}
    for task in started:  # its handler was about to run: the attempt is used, and said so
        assert (task_row(engine, task.id)["state"], task_row(engine, task.id)["attempts"]) == ("pending", 1)
        assert [(attempt, kind) for attempt, kind, _ in error_types(engine, task.id)] == [(1, "test.Lost")]
    for task in waiting:  # it only waited in the buffer: as if never claimed
        row = task_row(engine, task.id)
        assert (row["state"], row["attempts"], row["attempt_started_at"]) == ("pending", 0, None)
        assert error_types(engine, task.id) == []


def test_a_task_rescued_meanwhile_is_not_marked_started_by_the_worker_that_lost_it(engine: Engine) -> None:
    [task] = claimed_by_a_worker(engine, 1)
    with engine.begin() as connection:
        hand_back(connection, tasks.c.id == task.id, "test.Lost", "the test")
    with engine.begin() as connection:
        assert mark_started(connection, [task]) == set()  # the fence: its token is no longer the task's
    assert task_row(engine, task.id)["attempt_started_at"] is None


def test_an_exhausted_task_that_never_started_is_handed_back_not_killed(engine: Engine) -> None:
    [task] = claimed_by_a_worker(engine, 1)
    with engine.begin() as connection:  # as if every earlier attempt had been used
        connection.execute(tasks.update().where(tasks.c.id == task.id).values(max_attempts=1))
        hand_back(connection, tasks.c.id == task.id, "test.Lost", "the test")
    assert (task_row(engine, task.id)["state"], task_row(engine, task.id)["attempts"]) == ("pending", 0)


@pytest.mark.postgres_only
def test_a_killed_workers_buffered_tasks_run_elsewhere_with_their_first_attempt(
    engine: Engine, workers: WorkerProcesses
) -> None:
    [killed] = workers.start(lease=LEASE_SECONDS, concurrency=2, prefetch=20)
    slow = [enqueue_committed(engine, "test.record_slowly", {"seconds": 8}) for _ in range(2)]
    for task_id in slow:
        wait_until_started_by(engine, task_id, killed)
    # Both runners are inside a slow handler: these wait in the killed worker's buffer, claimed.
    quick = [enqueue_committed(engine, "test.record") for _ in range(6)]
    wait_for(
        lambda: all(task_row(engine, t)["worker_id"] == killed.worker_id for t in quick),
        timeout=10,
        what="the worker claims the quick tasks ahead",
    )
    assert all(task_row(engine, t)["attempt_started_at"] is None for t in quick)

    killed.kill()
    workers.start(lease=LEASE_SECONDS, concurrency=2)
    for task_id in [*slow, *quick]:
        wait_for(
            lambda t=task_id: task_row(engine, t)["state"] == TaskState.SUCCEEDED.value,  # type: ignore[misc]
            timeout=40,
            what=f"task {task_id} succeeds on the second worker",
        )

    for task_id in quick:  # never started on the killed worker: its only attempt is the one that ran
        assert task_row(engine, task_id)["attempts"] == 1
        assert error_types(engine, task_id) == []
    for task_id in slow:  # killed inside its handler: that attempt counted
        assert task_row(engine, task_id)["attempts"] == 2
        assert [attempt for attempt, _, _ in error_types(engine, task_id)] == [1]
