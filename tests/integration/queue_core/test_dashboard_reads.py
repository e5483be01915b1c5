"""What a dashboard polls, on both backends: live tasks in full, finished ones over a recent window only.

test_inspection_at_scale.py checks the same reads' plans against a long history on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from queue_core import (
    RetryPolicy,
    RunningTask,
    TaskRegistry,
    TaskState,
    find_worker,
    live_workers,
    task_counts,
    throughput,
)
from tests.support.inprocess import (
    DEADLINE_SECONDS,
    backdate_finished,
    fast_settings,
    run_until_idle,
    running_worker,
    wait_until_set,
)

TWO_HOURS = 7200.0


def van_registry() -> TaskRegistry:
    """Vans load (and succeed) or jam (and die at once); floors are swept."""
    registry = TaskRegistry()

    @registry.task("load-van", queue="vans")
    def load_van(task: RunningTask, session: Session) -> None:
        pass

    @registry.task("jam-van", queue="vans", retry=RetryPolicy(max_attempts=1))
    def jam_van(task: RunningTask, session: Session) -> None:
        raise RuntimeError("the van door is stuck")

    @registry.task("sweep-floor", queue="floors")
    def sweep_floor(task: RunningTask, session: Session) -> None:
        pass

    return registry


def enqueue_all(engine: Engine, registry: TaskRegistry, *names: str) -> list[uuid.UUID]:
    with Session(engine) as session:
        ids = [registry.get(name).enqueue(session) for name in names]
        session.commit()
    return ids


def test_task_counts_count_live_tasks_in_full_and_finished_ones_only_within_the_window(
    engine: Engine,
) -> None:
    registry = van_registry()
    old_van, *_ = enqueue_all(engine, registry, "load-van", "load-van", "load-van", "jam-van")
    run_until_idle(engine, registry, fast_settings(queues=["vans"]))
    backdate_finished(engine, [old_van], TWO_HOURS)  # history now: out of the hour's window
    enqueue_all(engine, registry, "sweep-floor", "sweep-floor")

    with Session(engine) as session:
        counts = task_counts(session)
        last_day = task_counts(session, finished_window_seconds=86_400)

    assert counts.finished_window_seconds == 3600.0
    assert counts.by_queue_and_state == {"vans": {"succeeded": 2, "dead": 1}, "floors": {"pending": 2}}
    assert counts.by_state == {
        "pending": 2,
        "running": 0,
        "succeeded": 2,
        "dead": 1,
        "cancelled": 0,
        "expired": 0,
        "discarded": 0,
    }
    assert last_day.by_queue_and_state["vans"] == {"succeeded": 3, "dead": 1}


def test_task_counts_of_an_empty_queue_are_zero_in_every_state(engine: Engine) -> None:
    with Session(engine) as session:
        counts = task_counts(session)
    assert counts.by_queue_and_state == {}
    assert set(counts.by_state) == {state.value for state in TaskState}
    assert set(counts.by_state.values()) == {0}


def test_throughput_puts_each_finished_task_in_its_minute_with_its_pickup_latency(engine: Engine) -> None:
    registry = van_registry()
    old_van, *_ = enqueue_all(engine, registry, "load-van", "load-van", "load-van", "jam-van")
    run_until_idle(engine, registry)
    backdate_finished(engine, [old_van], TWO_HOURS)

    with Session(engine) as session:
        chart = throughput(session)
        short = throughput(session, minutes=3, row_limit=2)

    assert len(chart.minutes) == 10 and not chart.truncated
    first = chart.minutes[0].start
    assert (first.second, first.microsecond) == (0, 0)
    assert [minute.start for minute in chart.minutes] == [first + dt.timedelta(minutes=n) for n in range(10)]
    assert (chart.succeeded, sum(minute.unsuccessful for minute in chart.minutes)) == (2, 1)
    busy = [minute for minute in chart.minutes if minute.succeeded or minute.unsuccessful]
    assert busy and all(minute.p50_pickup_ms is not None and minute.p50_pickup_ms >= 0 for minute in busy)
    assert set(chart.pickup_latency_ms) == {"p50", "p95", "p99"}
    assert len(short.minutes) == 3 and short.truncated  # three tasks finished, two were read


def test_an_idle_minute_has_no_latency_and_an_empty_queue_no_percentiles(engine: Engine) -> None:
    with Session(engine) as session:
        chart = throughput(session)
    assert chart.succeeded == 0 and chart.pickup_latency_ms == {} and not chart.truncated
    assert {minute.p50_pickup_ms for minute in chart.minutes} == {None}


def test_live_workers_list_each_worker_with_the_tasks_it_holds(engine: Engine) -> None:
    registry = TaskRegistry()
    started, release = threading.Event(), threading.Event()

    @registry.task("polish-lamp", queue="lamps")
    def polish_lamp(task: RunningTask, session: Session) -> None:
        started.set()
        release.wait(DEADLINE_SECONDS)

    [task_id] = enqueue_all(engine, registry, "polish-lamp")
    with running_worker(engine, registry, fast_settings(queues=["lamps"], concurrency=2)) as worker:
        try:
            wait_until_set(started, "the handler starting")
            with Session(engine) as session:
                [live] = live_workers(session)
                same = find_worker(session, worker.id)
        finally:
            release.set()

    assert (live.id, live.alive, live.queues, live.concurrency) == (worker.id, True, ("lamps",), 2)
    assert 0.0 <= live.heartbeat_age_seconds < DEADLINE_SECONDS
    [held] = live.in_flight
    assert (held.id, held.name, held.queue, held.attempt) == (task_id, "polish-lamp", "lamps", 1)
    assert held.lease_token is not None and live.lease_left_seconds > 0
    assert held.started_at is not None
    assert same is not None and (same.id, same.alive, same.in_flight) == (live.id, True, live.in_flight)
    with Session(engine) as session:
        assert live_workers(session) == []  # a stopped worker deletes its row
        assert find_worker(session, worker.id) is None
