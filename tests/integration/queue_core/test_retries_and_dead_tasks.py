"""Promise 5, failures: backoff with jitter, one error row per failed attempt, dead tasks, requeue, poison.

A failure is whatever escapes the handler, an Exception or not; the worker outlives every one of them.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import RetryPolicy, RunningTask, TaskRegistry, TaskState, enqueue, requeue
from queue_core._maintenance import expire_overdue
from queue_core._models import task_table
from tests.support.inprocess import (
    ParcelJammedError,
    error_rows,
    fast_settings,
    handler_runs,
    record_run,
    running_worker,
    task_row,
    wait_for,
    wait_for_state,
    wait_for_states,
)

BACKOFF = RetryPolicy(max_attempts=4, base_seconds=0.2, jitter=0.5)
TWO_QUICK_ATTEMPTS = RetryPolicy(max_attempts=2, base_seconds=0.1, jitter=0.0)
FAILURE_DEADLINE = 15.0  # long enough for two attempts on a busy machine


class ConveyorHaltError(BaseException):
    """Not an Exception: what a library's abort signal or a GeneratorExit-like escape looks like."""


def test_failed_attempts_are_retried_with_exponential_backoff_within_the_jitter_band(depot: Engine) -> None:
    registry = TaskRegistry()
    seen: list[dict[str, Any]] = []

    @registry.task("scan-parcel", retry=BACKOFF)
    def scan_parcel(task: RunningTask, session: Session) -> None:
        row = session.execute(
            select(task_table.c.run_at, task_table.c.started_at).where(task_table.c.id == task.id)
        ).one()
        seen.append({"attempt": task.attempt, "run_at": row.run_at, "started_at": row.started_at})
        raise ParcelJammedError(f"barcode smudged on attempt {task.attempt}")

    with Session(depot) as session:
        task_id = scan_parcel.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_for_state(depot, task_id, TaskState.DEAD)

    errors = error_rows(depot, task_id)
    assert [s["attempt"] for s in seen] == [1, 2, 3, 4]
    for attempt in (1, 2, 3):
        # The retry's run_at is set in the transaction that records the failure, from the same clock.
        waited = (seen[attempt]["run_at"] - errors[attempt - 1]["failed_at"]).total_seconds()
        full = BACKOFF.base_seconds * 2 ** (attempt - 1)
        assert full * (1 - BACKOFF.jitter) - 0.02 <= waited <= full + 0.02, (attempt, waited)
        # ... and the worker did not take it before then.
        assert seen[attempt]["started_at"] >= seen[attempt]["run_at"]


def test_each_failed_attempt_records_its_error_and_the_last_one_makes_the_task_dead(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("scan-parcel", retry=RetryPolicy(max_attempts=3, base_seconds=0.05))
    def scan_parcel(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "scan-parcel")  # rolled back with each failure
        raise ParcelJammedError(f"belt 7 jammed on attempt {task.attempt}")

    with Session(depot) as session:
        task_id = scan_parcel.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_for_state(depot, task_id, TaskState.DEAD)

    row = task_row(depot, task_id)
    assert (row["state"], row["attempts"], row["max_attempts"]) == ("dead", 3, 3)
    assert row["finished_at"] is not None and row["lease_token"] is None
    errors = error_rows(depot, task_id)
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    for error in errors:
        assert error["error_type"] == "tests.support.inprocess.ParcelJammedError"
        assert error["message"] == f"belt 7 jammed on attempt {error['attempt']}"
        assert "Traceback" in error["traceback"] and "scan_parcel" in error["traceback"]
        assert "ParcelJammedError: belt 7 jammed" in error["traceback"]
        assert error["worker_id"] is not None
    assert handler_runs(depot) == []


def test_a_handler_raising_a_base_exception_fails_its_attempts_and_the_worker_keeps_running(
    depot: Engine,
) -> None:
    registry = TaskRegistry()

    @registry.task("halt-conveyor", retry=TWO_QUICK_ATTEMPTS)
    def halt_conveyor(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "halt-conveyor")  # rolled back with the failure
        raise ConveyorHaltError("the emergency stop was pressed")

    @registry.task("unpack-crate")
    def unpack_crate(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "unpack-crate")

    # One runner thread: if the exception killed it, nothing would run afterwards.
    with running_worker(depot, registry, fast_settings(concurrency=1)):
        with Session(depot) as session:
            halted = halt_conveyor.enqueue(session)
            session.commit()
        assert wait_for_state(depot, halted, TaskState.DEAD, timeout=FAILURE_DEADLINE) is TaskState.DEAD
        with Session(depot) as session:
            afterwards = [unpack_crate.enqueue(session) for _ in range(3)]
            session.commit()
        wait_for_states(depot, afterwards, TaskState.SUCCEEDED, timeout=FAILURE_DEADLINE)

    errors = error_rows(depot, halted)
    assert [e["attempt"] for e in errors] == [1, 2]
    assert all(e["error_type"].endswith("ConveyorHaltError") for e in errors), errors
    assert task_row(depot, halted)["attempts"] == 2
    assert handler_runs(depot, "halt-conveyor") == []
    assert sorted(r.task_id for r in handler_runs(depot, "unpack-crate")) == sorted(afterwards)
    with depot.connect() as connection:
        running = connection.scalars(
            select(task_table.c.id).where(task_table.c.state == TaskState.RUNNING.value)
        )
        assert running.all() == []


def test_a_requeued_dead_task_gets_one_more_attempt_and_can_succeed(depot: Engine) -> None:
    registry = TaskRegistry()
    belt_fixed = threading.Event()

    @registry.task("scan-parcel", retry=RetryPolicy(max_attempts=2, base_seconds=0.05))
    def scan_parcel(task: RunningTask, session: Session) -> None:
        if not belt_fixed.is_set():
            raise ParcelJammedError("belt 7 jammed")
        record_run(session, task.id, "scan-parcel")

    with Session(depot) as session:
        task_id = scan_parcel.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_for_state(depot, task_id, TaskState.DEAD)
        belt_fixed.set()
        with Session(depot) as session:
            assert requeue(session, task_id) is TaskState.PENDING
            session.commit()
        wait_for_state(depot, task_id, TaskState.SUCCEEDED)

    row = task_row(depot, task_id)
    assert (row["attempts"], row["max_attempts"]) == (3, 3)
    assert [e["attempt"] for e in error_rows(depot, task_id)] == [1, 2]  # the history stays
    assert [r.task_id for r in handler_runs(depot)] == [task_id]


def test_a_requeued_expired_task_runs_and_succeeds(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("deliver-flowers")
    def deliver_flowers(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "deliver-flowers")

    with Session(depot) as session:
        task_id = enqueue(session, "deliver-flowers", delay=3600, expires_in=0.1)
        session.commit()

    def expired() -> bool:
        with depot.begin() as connection:
            expire_overdue(connection)
        return task_row(depot, task_id)["state"] == TaskState.EXPIRED.value

    wait_for(expired, what="the task expiring")
    with Session(depot) as session:
        assert requeue(session, task_id) is TaskState.PENDING
        session.commit()
    assert task_row(depot, task_id)["expires_at"] is None  # or it would expire again at once

    with running_worker(depot, registry):
        reached = wait_for_state(depot, task_id, TaskState.SUCCEEDED, TaskState.EXPIRED)

    assert reached is TaskState.SUCCEEDED
    assert [r.task_id for r in handler_runs(depot, "deliver-flowers")] == [task_id]


def test_requeue_leaves_a_pending_task_alone(depot: Engine) -> None:
    with Session(depot) as session:
        task_id = TaskRegistry().task("scan-parcel")(lambda task, session: None).enqueue(session, delay=60)
        session.commit()
        assert requeue(session, task_id, extra_attempts=3) is TaskState.PENDING
        session.commit()
    assert task_row(depot, task_id)["max_attempts"] == RetryPolicy().max_attempts


def test_a_poison_task_does_not_block_the_others(depot: Engine) -> None:
    registry = TaskRegistry()
    poison_attempts: list[int] = []

    @registry.task("scan-parcel", retry=RetryPolicy(max_attempts=1000, base_seconds=0.01, cap_seconds=0.05))
    def scan_parcel(task: RunningTask, session: Session) -> None:
        if task.args and task.args.get("poison"):
            poison_attempts.append(task.attempt)
            raise ParcelJammedError("this parcel jams every scanner")
        record_run(session, task.id, "scan-parcel")

    with Session(depot) as session:
        poison_id = scan_parcel.enqueue(session, args={"poison": True}, priority=10)
        good_ids = [scan_parcel.enqueue(session) for _ in range(30)]
        session.commit()
    with running_worker(depot, registry, fast_settings(concurrency=1)):
        wait_for_states(depot, good_ids, TaskState.SUCCEEDED)
        assert task_row(depot, poison_id)["state"] in {"pending", "running"}

    assert sorted(r.task_id for r in handler_runs(depot)) == sorted(good_ids)
    assert len(poison_attempts) >= 2  # it kept failing, and kept being retried, while the others ran
