"""Promise 6, periodic tasks: one enqueue per tick, however many workers evaluate the schedule."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry
from queue_core._models import task_table
from tests.support.inprocess import (
    handler_runs,
    record_run,
    running_workers,
    scheduled_ticks,
    wait_for,
)

TICKS_TO_WATCH = 4


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
    with observer.connect() as connection:
        enqueued = set(
            connection.execute(select(task_table.c.id).where(task_table.c.name == "count-pallets")).scalars()
        )
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
