"""Promises 5, 6: Discard ends a task for good; cancel ends a pending task now, a running one when asked."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from queue_core import (
    Discard,
    RetryPolicy,
    RunningTask,
    TaskNotFoundError,
    TaskRegistry,
    TaskState,
    cancel,
    state_of,
)
from tests.support.inprocess import (
    DEADLINE_SECONDS,
    error_rows,
    handler_runs,
    record_run,
    run_until_idle,
    running_worker,
    task_row,
    wait_for_state,
    wait_until_set,
)


def enqueue_committed(engine: Engine, registry: TaskRegistry, name: str) -> uuid.UUID:
    with Session(engine) as session:
        task_id = registry.get(name).enqueue(session)
        session.commit()
    return task_id


# -- Discard ---------------------------------------------------------------------------------------------


def test_discard_ends_the_task_discarded_without_retry_and_rolls_back_its_writes(depot: Engine) -> None:
    registry = TaskRegistry()
    attempts: list[int] = []

    @registry.task("deliver-parcel", retry=RetryPolicy(max_attempts=5, base_seconds=0.01))
    def deliver_parcel(task: RunningTask, session: Session) -> None:
        attempts.append(task.attempt)
        record_run(session, task.id, "deliver-parcel")
        raise Discard("parcel CRUNCHY-ARMCHAIR was returned to sender")

    task_id = enqueue_committed(depot, registry, "deliver-parcel")
    run_until_idle(depot, registry)

    row = task_row(depot, task_id)
    assert (row["state"], row["attempts"]) == ("discarded", 1)
    assert row["finished_at"] is not None
    assert attempts == [1]
    assert handler_runs(depot) == []
    [error] = error_rows(depot, task_id)
    assert error["attempt"] == 1
    assert error["error_type"] == "queue_core.Discard"
    assert error["message"] == "parcel CRUNCHY-ARMCHAIR was returned to sender"


# -- cancel ----------------------------------------------------------------------------------------------


def test_a_pending_task_is_cancelled_at_once_and_never_runs(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("deliver-parcel")
    def deliver_parcel(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "deliver-parcel")

    doomed = enqueue_committed(depot, registry, "deliver-parcel")
    spared = enqueue_committed(depot, registry, "deliver-parcel")
    with Session(depot) as session:
        assert cancel(session, doomed) is TaskState.CANCELLED
        session.commit()
    assert task_row(depot, doomed)["finished_at"] is not None

    run_until_idle(depot, registry)

    assert [r.task_id for r in handler_runs(depot)] == [spared]
    assert task_row(depot, doomed)["state"] == "cancelled"
    assert task_row(depot, doomed)["attempts"] == 0


def test_a_running_task_is_asked_to_stop_and_ends_cancelled_with_its_writes_rolled_back(
    depot: Engine,
) -> None:
    registry = TaskRegistry()
    started = threading.Event()
    saw_request = threading.Event()

    @registry.task("weigh-parcel")
    def weigh_parcel(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "weigh-parcel")
        started.set()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not task.cancel_requested and time.monotonic() < deadline:
            time.sleep(0.02)
        if task.cancel_requested:
            saw_request.set()
        task.raise_if_cancel_requested()

    task_id = enqueue_committed(depot, registry, "weigh-parcel")
    with running_worker(depot, registry):
        wait_until_set(started, "the handler starting")
        with Session(depot) as session:
            assert cancel(session, task_id) is TaskState.RUNNING
            session.commit()
        assert task_row(depot, task_id)["cancel_requested"] is True
        wait_for_state(depot, task_id, TaskState.CANCELLED, TaskState.SUCCEEDED)

    assert saw_request.is_set()
    row = task_row(depot, task_id)
    assert (row["state"], row["attempts"]) == ("cancelled", 1)
    assert row["finished_at"] is not None
    assert handler_runs(depot) == []


def test_a_handler_checking_only_raise_if_cancel_requested_stops_too(depot: Engine) -> None:
    registry = TaskRegistry()
    started = threading.Event()

    @registry.task("weigh-parcel")
    def weigh_parcel(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "weigh-parcel")
        started.set()
        deadline = time.monotonic() + DEADLINE_SECONDS
        while time.monotonic() < deadline:
            task.raise_if_cancel_requested()
            time.sleep(0.02)

    task_id = enqueue_committed(depot, registry, "weigh-parcel")
    with running_worker(depot, registry):
        wait_until_set(started, "the handler starting")
        with Session(depot) as session:
            cancel(session, task_id)
            session.commit()
        wait_for_state(depot, task_id, TaskState.CANCELLED, TaskState.SUCCEEDED)

    assert task_row(depot, task_id)["state"] == "cancelled"
    assert handler_runs(depot) == []


def test_cancel_joins_the_callers_transaction(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("deliver-parcel")
    def deliver_parcel(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "deliver-parcel")

    task_id = enqueue_committed(depot, registry, "deliver-parcel")
    with Session(depot) as session:
        assert cancel(session, task_id) is TaskState.CANCELLED
        session.rollback()
    with Session(depot) as session:
        assert state_of(session, task_id) is TaskState.PENDING

    run_until_idle(depot, registry)

    assert task_row(depot, task_id)["state"] == "succeeded"
    assert [r.task_id for r in handler_runs(depot)] == [task_id]


def test_cancelling_a_finished_task_leaves_it_as_it_was(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("deliver-parcel")
    def deliver_parcel(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "deliver-parcel")

    task_id = enqueue_committed(depot, registry, "deliver-parcel")
    run_until_idle(depot, registry)
    before = task_row(depot, task_id)

    with Session(depot) as session:
        assert cancel(session, task_id) is TaskState.SUCCEEDED
        session.commit()

    assert task_row(depot, task_id) == before
    assert before["cancel_requested"] is False


def test_cancelling_an_unknown_task_says_so(depot: Engine) -> None:
    with Session(depot) as session, pytest.raises(TaskNotFoundError):
        cancel(session, uuid.uuid4())
