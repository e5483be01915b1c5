"""Promise 6, when and where tasks run: delay, run-at, expiry, priorities and named queues."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, TaskState, enqueue
from tests.support.inprocess import (
    fast_settings,
    handler_runs,
    record_run,
    run_until_idle,
    running_worker,
    task_row,
    wait_for_state,
    wait_for_states,
)


def depot_registry() -> TaskRegistry:
    """``load-van`` records each run; ``sweep-floor`` is a second name on a second queue."""
    registry = TaskRegistry()

    @registry.task("load-van", queue="vans")
    def load_van(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "load-van")

    @registry.task("sweep-floor", queue="floors")
    def sweep_floor(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "sweep-floor")

    return registry


def test_a_delayed_task_does_not_start_before_its_delay(depot: Engine) -> None:
    registry = depot_registry()
    with running_worker(depot, registry):
        with Session(depot) as session:
            task_id = registry.get("load-van").enqueue(session, delay=1.5)
            session.commit()
        wait_for_state(depot, task_id, TaskState.SUCCEEDED)

    row = task_row(depot, task_id)
    assert (row["run_at"] - row["created_at"]).total_seconds() == pytest.approx(1.5, abs=0.05)
    assert row["started_at"] >= row["run_at"]


def test_a_task_with_run_at_does_not_start_before_that_moment(depot: Engine) -> None:
    registry = depot_registry()
    run_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    with running_worker(depot, registry):
        with Session(depot) as session:
            task_id = registry.get("load-van").enqueue(session, run_at=run_at)
            session.commit()
        wait_for_state(depot, task_id, TaskState.SUCCEEDED)

    row = task_row(depot, task_id)
    assert row["run_at"] == run_at
    assert row["started_at"] >= run_at


def test_a_task_not_started_before_it_expires_ends_expired_and_never_runs(depot: Engine) -> None:
    registry = depot_registry()
    with running_worker(depot, registry):
        with Session(depot) as session:
            # Due only after its deadline to start has passed: it can never start.
            doomed = enqueue(session, "load-van", queue="vans", delay=1.0, expires_in=0.3)
            session.commit()
        wait_for_state(depot, doomed, TaskState.EXPIRED)
        with Session(depot) as session:
            later = registry.get("load-van").enqueue(session, delay=1.3)  # due after the doomed one
            session.commit()
        wait_for_state(depot, later, TaskState.SUCCEEDED)

    row = task_row(depot, doomed)
    assert (row["state"], row["attempts"], row["started_at"]) == ("expired", 0, None)
    assert row["finished_at"] is not None
    assert [r.task_id for r in handler_runs(depot)] == [later]


def test_expires_in_from_the_task_declaration_applies(depot: Engine) -> None:
    registry = TaskRegistry()
    ran = threading.Event()

    @registry.task("print-label", expires_in=0.2)
    def print_label(task: RunningTask, session: Session) -> None:
        ran.set()

    with Session(depot) as session:
        task_id = print_label.enqueue(session, delay=0.6)
        session.commit()
    row = task_row(depot, task_id)
    assert (row["expires_at"] - row["created_at"]).total_seconds() == pytest.approx(0.2, abs=0.05)
    with running_worker(depot, registry):
        wait_for_state(depot, task_id, TaskState.EXPIRED, TaskState.SUCCEEDED)
    assert task_row(depot, task_id)["state"] == "expired"
    assert not ran.is_set()


def test_higher_priority_runs_first_within_a_queue(depot: Engine) -> None:
    registry = depot_registry()
    load_van = registry.get("load-van")
    with Session(depot) as session:
        routine = [load_van.enqueue(session) for _ in range(6)]
        urgent = [load_van.enqueue(session, priority=10) for _ in range(6)]
        session.commit()

    run_until_idle(depot, registry, fast_settings(concurrency=1, prefetch=1))

    order = [r.task_id for r in handler_runs(depot)]
    assert sorted(order[:6]) == sorted(urgent)
    assert sorted(order[6:]) == sorted(routine)


def test_within_one_priority_tasks_run_in_run_at_order(depot: Engine) -> None:
    registry = depot_registry()
    load_van = registry.get("load-van")
    now = dt.datetime.now(dt.UTC)
    with Session(depot) as session:
        newer = load_van.enqueue(session, run_at=now - dt.timedelta(seconds=1))
        older = load_van.enqueue(session, run_at=now - dt.timedelta(seconds=5))
        session.commit()

    run_until_idle(depot, registry, fast_settings(concurrency=1, prefetch=1))

    assert [r.task_id for r in handler_runs(depot)] == [older, newer]


def test_a_worker_for_queue_a_never_takes_tasks_of_queue_b(depot: Engine) -> None:
    registry = depot_registry()
    with Session(depot) as session:
        vans = [registry.get("load-van").enqueue(session) for _ in range(5)]
        floors = [registry.get("sweep-floor").enqueue(session) for _ in range(5)]
        session.commit()

    with running_worker(depot, registry, fast_settings(queues=["vans"])):
        wait_for_states(depot, vans, TaskState.SUCCEEDED)
        # A few more polls with the floors still waiting: nothing of theirs has been touched.
        with Session(depot) as session:
            marker = registry.get("load-van").enqueue(session, delay=0.3)
            session.commit()
        wait_for_state(depot, marker, TaskState.SUCCEEDED)

    assert {r.label for r in handler_runs(depot)} == {"load-van"}
    for task_id in floors:
        row = task_row(depot, task_id)
        assert (row["state"], row["attempts"], row["started_at"]) == ("pending", 0, None)

    run_until_idle(depot, registry, fast_settings(queues=["floors"]))
    assert sorted(r.task_id for r in handler_runs(depot, "sweep-floor")) == sorted(floors)
