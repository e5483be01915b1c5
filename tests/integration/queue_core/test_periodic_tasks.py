"""Promise 6, periodic tasks: one enqueue per tick, however many workers evaluate the schedule.

That holds for ticks a second apart and for ticks days apart (a weekly cron, ``every=7`` days), whose
latest tick is still due days after it fell.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, TaskState, Worker
from queue_core._clock import db_now
from queue_core._models import task_table
from queue_core._periodic import enqueue_due_ticks
from tests.support.inprocess import (
    fast_settings,
    handler_runs,
    record_run,
    running_workers,
    scheduled_ticks,
    wait_for,
    wait_for_state,
)

TICKS_TO_WATCH = 4


def tasks_named(engine: Engine, name: str) -> list[uuid.UUID]:
    """The IDs of every task of one name, in any state."""
    with engine.connect() as connection:
        return list(connection.execute(select(task_table.c.id).where(task_table.c.name == name)).scalars())


def database_now(engine: Engine) -> dt.datetime:
    """The database's clock, which is the one schedules tick by."""
    with engine.connect() as connection:
        now = connection.scalar(select(db_now()))
    assert now is not None
    return now


def cron_weekday(moment: dt.datetime) -> int:
    """Cron's day of the week for ``moment`` (0 is Sunday; Python counts from Monday)."""
    return (moment.weekday() + 1) % 7


def weekly_stocktake_registry(engine: Engine) -> TaskRegistry:
    """A weekly schedule whose latest tick is three to four days old, whatever today is."""
    three_days_ago = database_now(engine) - dt.timedelta(days=3)
    registry = TaskRegistry()

    @registry.task("weekly-stocktake")
    def weekly_stocktake(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "weekly-stocktake")

    registry.schedule("stocktake", weekly_stocktake, cron=f"0 0 * * {cron_weekday(three_days_ago)}")
    return registry


@contextmanager
def idle_workers(engines: Sequence[Engine], registry: TaskRegistry) -> Iterator[list[Worker]]:
    """Workers that are never run, for calling ``maintain()`` by hand.

    ``run()`` closes a worker's own connections when it stops; these never run, so they are closed here.
    """
    workers = [Worker(engine, registry, fast_settings()) for engine in engines]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.close()


# -- ticks a second apart --------------------------------------------------------------------------------


def test_three_workers_enqueue_each_tick_of_a_schedule_exactly_once(three_engines: list[Engine]) -> None:
    registry = TaskRegistry()

    @registry.task("count-pallets")
    def count_pallets(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "count-pallets")

    registry.schedule("pallet-census", count_pallets, every=1)
    observer = three_engines[0]

    with running_workers(three_engines, registry):
        wait_for(
            lambda: len(scheduled_ticks(observer, "count-pallets")) >= TICKS_TO_WATCH,
            what=f"{TICKS_TO_WATCH} ticks of an every=1 schedule",
        )

    ticks = scheduled_ticks(observer, "count-pallets")
    enqueued = set(tasks_named(observer, "count-pallets"))
    assert len(ticks) >= TICKS_TO_WATCH
    # One task per second boundary: no tick enqueued twice, whichever of the three workers won it.
    assert all(t["tick_at"].microsecond == 0 for t in ticks)
    assert len({t["tick_at"] for t in ticks}) == len(ticks)
    assert len(enqueued) == len(ticks)
    assert {t["task_id"] for t in ticks} == enqueued
    # And each enqueued tick ran at most once.
    ran = [r.task_id for r in handler_runs(observer, "count-pallets")]
    assert len(ran) == len(set(ran))
    assert set(ran) <= enqueued


def test_consecutive_ticks_are_one_period_apart(three_engines: list[Engine]) -> None:
    registry = TaskRegistry()

    @registry.task("count-pallets")
    def count_pallets(task: RunningTask, session: Session) -> None:
        """Nothing to do: the test reads the ticks."""

    registry.schedule("pallet-census", count_pallets, every=1)
    observer = three_engines[0]

    with running_workers(three_engines, registry):
        wait_for(
            lambda: len(scheduled_ticks(observer, "count-pallets")) >= 3,
            what="3 ticks of an every=1 schedule",
        )

    moments = [t["tick_at"] for t in scheduled_ticks(observer, "count-pallets")]
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    # Workers evaluate schedules ten times a second here, so no tick is skipped.
    assert gaps and all(gap == dt.timedelta(seconds=1) for gap in gaps), gaps


def test_three_connections_evaluating_an_every_second_schedule_at_once_enqueue_one_task_per_tick(
    three_engines: list[Engine],
) -> None:
    registry = TaskRegistry()

    @registry.task("count-pallets")
    def count_pallets(task: RunningTask, session: Session) -> None:
        """Nothing to do: the test counts the tasks."""

    registry.schedule("pallet-census", count_pallets, every=1)
    stop = threading.Event()
    failures: list[BaseException] = []

    def evaluate_often(engine: Engine) -> None:
        try:
            while not stop.is_set():
                with engine.begin() as connection:
                    enqueue_due_ticks(connection, registry, registry.schedules)
                time.sleep(0.02)
        except BaseException as exc:
            failures.append(exc)

    first_moment = database_now(three_engines[0])
    threads = [threading.Thread(target=evaluate_often, args=(e,)) for e in three_engines]
    for thread in threads:
        thread.start()
    try:
        wait_for(
            lambda: len(tasks_named(three_engines[0], "count-pallets")) >= 4,
            what="4 ticks of an every=1 schedule",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    last_moment = database_now(three_engines[0])

    assert not failures, failures
    # Every call saw a moment between the first and the last, so it enqueued one of the ticks in between;
    # one task per tick means no more tasks than ticks (and with a call every 20 ms, none is skipped).
    ticks_in_between = int(last_moment.timestamp()) - int(first_moment.timestamp()) + 1
    enqueued = len(tasks_named(three_engines[0], "count-pallets"))
    assert ticks_in_between - 1 <= enqueued <= ticks_in_between


# -- ticks days apart ------------------------------------------------------------------------------------


def test_a_weekly_cron_tick_days_old_is_enqueued_once_however_often_three_workers_evaluate_it(
    three_engines: list[Engine],
) -> None:
    registry = weekly_stocktake_registry(three_engines[0])

    with idle_workers(three_engines, registry) as workers:
        for _ in range(3):
            for worker in workers:
                worker.maintain()

    assert len(tasks_named(three_engines[0], "weekly-stocktake")) == 1


def test_an_every_seven_days_tick_days_old_is_enqueued_once_however_often_it_is_evaluated(
    three_engines: list[Engine],
) -> None:
    registry = TaskRegistry()

    @registry.task("restock-shelves")
    def restock_shelves(task: RunningTask, session: Session) -> None:
        """Nothing to do: the test counts the tasks."""

    registry.schedule("weekly-restock", restock_shelves, every=7 * 86400)
    # Ticks of every=7 days fall on Thursdays at 00:00 UTC (the epoch's weekday). On Thursdays the latest
    # tick is less than a day old, which is not the case under test.
    if database_now(three_engines[0]).weekday() == 3:
        pytest.skip("the latest every=7-days tick is less than a day old on Thursdays")

    with idle_workers(three_engines, registry) as workers:
        for _ in range(3):
            for worker in workers:
                worker.maintain()

    assert len(tasks_named(three_engines[0], "restock-shelves")) == 1


def test_three_running_workers_enqueue_a_days_old_weekly_tick_once(three_engines: list[Engine]) -> None:
    registry = weekly_stocktake_registry(three_engines[0])
    observer = three_engines[0]

    with running_workers(three_engines, registry):
        task_id = wait_for(
            lambda: tasks_named(observer, "weekly-stocktake"), what="the weekly tick being enqueued"
        )[0]
        wait_for_state(observer, task_id, TaskState.SUCCEEDED)
        # Maintenance runs ten times a second in each worker: give them some thirty passes to misbehave.
        passes_before = time.monotonic()
        wait_for(lambda: time.monotonic() - passes_before >= 1.0, what="a second of maintenance passes")

    assert tasks_named(observer, "weekly-stocktake") == [task_id]
    assert [r.task_id for r in handler_runs(observer, "weekly-stocktake")] == [task_id]
