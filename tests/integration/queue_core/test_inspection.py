"""Promise 9, inspection: counts, ages, throughput and pickup latency; listings; one task in full."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from queue_core import (
    Backlog,
    OnPrune,
    RetryPolicy,
    RunningTask,
    TaskNotFoundError,
    TaskRegistry,
    TaskState,
    backlog,
    enqueue,
    list_tasks,
    queue_stats,
    task_details,
)
from queue_core._ids import new_task_id
from tests.support.inprocess import (
    Crate,
    ParcelJammedError,
    Sticker,
    fast_settings,
    record_run,
    run_until_idle,
    running_worker,
    wait_for,
    wait_for_state,
)


def depot_registry() -> TaskRegistry:
    registry = TaskRegistry()
    registry.track_reference(Crate.unpack_task_id, on_prune=OnPrune.KEEP)
    registry.track_reference(Sticker.print_task_id, on_prune=OnPrune.SET_NULL)

    @registry.task("load-van", queue="vans")
    def load_van(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "load-van")

    @registry.task("jam-van", queue="vans", retry=RetryPolicy(max_attempts=1))
    def jam_van(task: RunningTask, session: Session) -> None:
        raise ParcelJammedError("the van door is stuck")

    @registry.task("sweep-floor", queue="floors")
    def sweep_floor(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "sweep-floor")

    return registry


def test_queue_stats_counts_by_state_and_queue_and_measures_the_oldest_waiting_task(depot: Engine) -> None:
    registry = depot_registry()
    began = time.monotonic()
    with Session(depot) as session:
        for _ in range(3):
            registry.get("load-van").enqueue(session)
        registry.get("jam-van").enqueue(session)
        sweep = registry.get("sweep-floor")
        sweep.enqueue(session, run_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30))
        sweep.enqueue(session, delay=3600)  # waiting, but not due: not part of the oldest age
        session.commit()
    run_until_idle(depot, registry, fast_settings(queues=["vans"]))

    with Session(depot) as session:
        stats = queue_stats(session)

    assert stats.by_state == {
        "pending": 2,
        "running": 0,
        "succeeded": 3,
        "dead": 1,
        "cancelled": 0,
        "expired": 0,
        "discarded": 0,
    }
    assert stats.by_queue_and_state == {"vans": {"succeeded": 3, "dead": 1}, "floors": {"pending": 2}}
    assert stats.oldest_pending_age_seconds is not None
    assert 30.0 <= stats.oldest_pending_age_seconds <= 30.0 + (time.monotonic() - began) + 1.0
    assert stats.succeeded_last_minute == 3
    assert stats.throughput_per_second == pytest.approx(3 / 60)
    assert stats.live_workers == 0  # the worker removed its row when it stopped


def test_queue_stats_of_an_empty_queue(depot: Engine) -> None:
    with Session(depot) as session:
        stats = queue_stats(session)
    assert set(stats.by_state.values()) == {0}
    assert stats.by_queue_and_state == {}
    assert stats.oldest_pending_age_seconds is None
    assert stats.pickup_latency_ms == {}


def test_queue_stats_counts_live_workers(depot: Engine) -> None:
    def live_workers() -> int:
        with Session(depot) as session:
            return queue_stats(session).live_workers

    with running_worker(depot, depot_registry()):
        # The worker registers from its own thread: wait for the row, then check it is the only one.
        wait_for(live_workers, what="the worker registering")
        assert live_workers() == 1
    assert live_workers() == 0


def test_pickup_latency_percentiles_come_from_run_at_to_start(depot: Engine) -> None:
    registry = depot_registry()
    now = dt.datetime.now(dt.UTC)
    began = time.monotonic()
    with Session(depot) as session:
        # Task i was due i seconds ago, so it waits about i seconds plus the worker's own pickup time.
        for seconds_late in range(1, 101):
            registry.get("load-van").enqueue(session, run_at=now - dt.timedelta(seconds=seconds_late))
        session.commit()
    run_until_idle(depot, registry)
    pickup_ms = (time.monotonic() - began) * 1000.0 + 100.0

    with Session(depot) as session:
        latency = queue_stats(session, window_seconds=120).pickup_latency_ms

    assert set(latency) == {"p50", "p95", "p99"}
    # Inclusive percentiles of 1..100 seconds are 50.5, 95.05 and 99.01 seconds.
    assert 50_500 <= latency["p50"] <= 50_500 + pickup_ms
    assert 95_050 <= latency["p95"] <= 95_050 + pickup_ms
    assert 99_010 <= latency["p99"] <= 99_010 + pickup_ms


def test_list_tasks_filters_by_state_queue_and_name_newest_first(depot: Engine) -> None:
    registry = depot_registry()
    created = []
    for name in ("load-van", "jam-van", "load-van", "sweep-floor"):
        with Session(depot) as session:
            created.append(registry.get(name).enqueue(session))
            session.commit()
    run_until_idle(depot, registry, fast_settings(queues=["vans"]))
    van_1, jammed, van_2, sweep = created

    with Session(depot) as session:
        assert [t.id for t in list_tasks(session)] == [sweep, van_2, jammed, van_1]
        assert [t.id for t in list_tasks(session, state="succeeded")] == [van_2, van_1]
        assert [t.id for t in list_tasks(session, state="dead")] == [jammed]
        assert [t.id for t in list_tasks(session, queue="floors")] == [sweep]
        assert [t.id for t in list_tasks(session, name="load-van", queue="vans")] == [van_2, van_1]
        assert [t.id for t in list_tasks(session, limit=2)] == [sweep, van_2]
        assert list_tasks(session, name="paint-van") == []
        [dead] = list_tasks(session, state="dead")
    assert (dead.name, dead.queue, dead.state, dead.attempts, dead.max_attempts) == (
        "jam-van",
        "vans",
        "dead",
        1,
        1,
    )
    assert dead.finished_at is not None


def test_task_details_show_errors_by_attempt_and_the_rows_that_point_at_the_task(depot: Engine) -> None:
    registry = depot_registry()

    @registry.task("unpack-crate", retry=RetryPolicy(max_attempts=5, base_seconds=0.05))
    def unpack_crate(task: RunningTask, session: Session) -> None:
        if task.attempt < 3:
            raise ParcelJammedError(f"crowbar slipped on attempt {task.attempt}")

    with Session(depot) as session:
        task_id = unpack_crate.enqueue(session)
        session.add(Crate(id=1, label="CRUNCHY-ARMCHAIR", unpack_task_id=task_id))
        session.add(Sticker(id=4, label="FRAGILE", print_task_id=task_id))
        session.commit()
    with running_worker(depot, registry) as worker:
        wait_for_state(depot, task_id, TaskState.SUCCEEDED)

    with Session(depot) as session:
        details = task_details(session, task_id, registry.references)
        bare = task_details(session, task_id)

    assert (details.task["id"], details.task["state"], details.task["attempts"]) == (task_id, "succeeded", 3)
    assert [e.attempt for e in details.errors] == [1, 2]
    for error in details.errors:
        assert error.error_type == "tests.support.inprocess.ParcelJammedError"
        assert error.message == f"crowbar slipped on attempt {error.attempt}"
        assert error.traceback is not None and "unpack_crate" in error.traceback
        assert error.worker_id == worker.id
    assert details.errors[0].failed_at <= details.errors[1].failed_at
    assert sorted((r.table, r.primary_key["id"]) for r in details.referenced_by) == [
        ("test_crates", 1),
        ("test_stickers", 4),
    ]
    assert bare.referenced_by == []


def test_task_details_of_an_unknown_task_says_so(depot: Engine) -> None:
    with Session(depot) as session, pytest.raises(TaskNotFoundError):
        task_details(session, new_task_id())


def test_backlog_counts_only_due_pending_tasks_and_the_oldest_age(engine: Engine) -> None:
    with Session(engine) as session:
        enqueue(session, "polish-lamp")
        enqueue(session, "polish-lamp")
        enqueue(session, "polish-lamp", delay=3600)  # not due yet
        session.commit()

        found = backlog(session)

    assert found.due == 2
    assert found.oldest_due_age_seconds is not None and 0.0 <= found.oldest_due_age_seconds < 60.0


def test_backlog_of_an_empty_queue_has_no_age(engine: Engine) -> None:
    with Session(engine) as session:
        assert backlog(session) == Backlog(due=0, oldest_due_age_seconds=None)
