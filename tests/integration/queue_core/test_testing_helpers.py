"""queue_core.testing: drain runs due tasks in the test with the worker's fenced completion; enqueued and
assert_enqueued show what a transaction put on the queue."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from queue_core import RetryPolicy, RunningTask, TaskRegistry, TaskState, enqueue, state_of
from queue_core._models import task_table
from queue_core.testing import DrainLimitError, assert_enqueued, drain, enqueued, mark
from tests.support.inprocess import ParcelJammedError, error_rows, handler_runs, record_run, task_row

PATIENT = RetryPolicy(max_attempts=3, base_seconds=30, jitter=0.0)  # 30 s, then 60 s: never due by itself


def depot_registry() -> TaskRegistry:
    """Unpacking a crate labels it (a second task, enqueued by the first); jammed parcels always fail."""
    registry = TaskRegistry()

    @registry.task("depot.unpack")
    def unpack(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "unpack")
        label.enqueue(session)

    @registry.task("depot.label")
    def label(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "label")

    @registry.task("depot.jammed", retry=PATIENT)
    def jammed(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "jammed")  # rolled back with the failed attempt
        raise ParcelJammedError("parcel CRUNCHY-ARMCHAIR is stuck in the chute")

    return registry


def committed(engine: Engine, registry: TaskRegistry, name: str, delay: float | None = None) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        return registry.get(name).enqueue(session, delay=delay)


def test_drain_runs_due_tasks_and_the_tasks_they_enqueue_until_none_is_due(depot: Engine) -> None:
    registry = depot_registry()
    unpack_id = committed(depot, registry, "depot.unpack")

    result = drain(depot, registry)

    assert [run.name for run in result.runs] == ["depot.unpack", "depot.label"]
    assert result.counts == {"succeeded": 2}
    label_id = result.runs[1].task_id
    assert task_row(depot, label_id)["parent_id"] == unpack_id
    assert [run.label for run in handler_runs(depot)] == ["unpack", "label"]
    assert len(drain(depot, registry)) == 0


def test_a_failed_attempt_rolls_back_its_writes_and_waits_for_its_backoff(depot: Engine) -> None:
    registry = depot_registry()
    task_id = committed(depot, registry, "depot.jammed")

    result = drain(depot, registry)

    assert result.counts == {"retrying": 1}
    assert result.failures[0].error == (
        "tests.support.inprocess.ParcelJammedError: parcel CRUNCHY-ARMCHAIR is stuck in the chute"
    )
    assert handler_runs(depot) == []
    assert task_row(depot, task_id)["state"] == "pending"  # its 30 s backoff has not passed


def test_advance_runs_every_retry_whose_backoff_fits_the_window_until_the_task_is_dead(depot: Engine) -> None:
    registry = depot_registry()
    task_id = committed(depot, registry, "depot.jammed")

    result = drain(depot, registry, advance=120)

    assert [(run.attempt, run.outcome) for run in result.of(task_id)] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "dead"),
    ]
    assert task_row(depot, task_id)["state"] == "dead"
    assert [error["attempt"] for error in error_rows(depot, task_id)] == [1, 2, 3]


def test_a_delayed_task_runs_only_once_advance_covers_its_delay(depot: Engine) -> None:
    registry = depot_registry()
    task_id = committed(depot, registry, "depot.label", delay=600)

    assert len(drain(depot, registry)) == 0
    assert len(drain(depot, registry, advance=60)) == 0
    assert drain(depot, registry, advance=3600).counts == {"succeeded": 1}
    assert task_row(depot, task_id)["state"] == "succeeded"


def test_advanced_tasks_run_in_the_order_a_clock_would_reach_them(depot: Engine) -> None:
    registry = depot_registry()
    by_delay = {delay: committed(depot, registry, "depot.label", delay=delay) for delay in (30, 10, 20)}

    result = drain(depot, registry, advance=60)

    assert [run.task_id for run in result.runs] == [by_delay[10], by_delay[20], by_delay[30]]


def test_drain_completes_through_the_lease_fence(depot: Engine) -> None:
    """A handler whose task changed hands (a rescue, a claim elsewhere) cannot commit its writes."""
    registry = TaskRegistry()

    @registry.task("depot.overtaken")
    def overtaken(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "overtaken")
        session.execute(update(task_table).where(task_table.c.id == task.id).values(lease_token=uuid.uuid4()))

    committed(depot, registry, "depot.overtaken")

    assert drain(depot, registry).counts == {"lease_lost": 1}
    assert handler_runs(depot) == []


def test_a_handler_that_keeps_enqueueing_stops_the_drain_at_max_runs(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("depot.forever")
    def forever(task: RunningTask, session: Session) -> None:
        enqueue(session, "depot.forever")

    committed(depot, registry, "depot.forever")

    with pytest.raises(DrainLimitError, match=r"depot.forever x5"):
        drain(depot, registry, max_runs=5)
    with depot.connect() as connection:
        states = [task.state for task in enqueued(connection, "depot.forever")]
    # The task claimed past the limit went back to pending, not left running.
    assert states == [TaskState.SUCCEEDED] * 5 + [TaskState.PENDING]


def test_session_info_reaches_the_handlers(depot: Engine) -> None:
    registry = TaskRegistry()
    seen: list[str] = []

    @registry.task("depot.greet")
    def greet(task: RunningTask, session: Session) -> None:
        seen.append(session.info["depot_name"])

    committed(depot, registry, "depot.greet")
    drain(depot, registry, session_info={"depot_name": "NORTH-QUAY"})

    assert seen == ["NORTH-QUAY"]


def test_enqueued_sees_a_transactions_own_tasks_before_commit_and_none_after_rollback(depot: Engine) -> None:
    with Session(depot) as session:
        task_id = enqueue(session, "depot.label", args={"crate": "CRUNCHY-ARMCHAIR"})
        [task] = assert_enqueued(session, "depot.label", args={"crate": "CRUNCHY-ARMCHAIR"})
        assert (task.id, task.state) == (task_id, TaskState.PENDING)
        session.rollback()
        assert enqueued(session) == []


def test_since_a_mark_keeps_only_the_tasks_enqueued_after_it(depot: Engine) -> None:
    registry = depot_registry()
    committed(depot, registry, "depot.unpack")
    with Session(depot) as session, session.begin():
        start = mark(session)
        label_id = registry.get("depot.label").enqueue(session)
        assert [task.id for task in enqueued(session, since=start)] == [label_id]
        assert_enqueued(session, "depot.unpack", count=0, since=start)
    with Session(depot) as session:
        assert len(enqueued(session)) == 2
        assert state_of(session, label_id) is TaskState.PENDING


def test_assert_enqueued_says_what_was_enqueued_instead(depot: Engine) -> None:
    with Session(depot) as session:
        enqueue(session, "depot.unpack")
        with pytest.raises(AssertionError, match=r"expected 1 task\(s\) 'depot.label' enqueued, found 0; "):
            assert_enqueued(session, "depot.label")
        with pytest.raises(AssertionError, match=r"enqueued: depot.unpack \(pending\)"):
            assert_enqueued(session, "depot.unpack", args={"crate": "SQUEAKY-STOOL"})
