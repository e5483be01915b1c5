"""Promise 6, limits: per-name concurrency and rate limits hold across all workers, measured from outside.

A claim takes limited and unlimited names together: a backlog of either never starves the other.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import RateLimit, RunningTask, TaskDefinition, TaskRegistry, TaskState
from queue_core._claims import claim
from queue_core._models import limit_table, task_table
from tests.support.inprocess import (
    fast_settings,
    handler_runs,
    record_run,
    run_until_idle,
    running_workers,
    wait_for_states,
)

HANDLER_SECONDS = 0.3


def max_overlap(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end and a start at the same instant do not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = highest = 0
    for _, change in events:
        open_now += change
        highest = max(highest, open_now)
    return highest


def test_max_overlap_counts_intervals_open_together() -> None:
    assert max_overlap([(0, 2), (1, 3), (2, 4)]) == 2
    assert max_overlap([(0, 1), (1, 2)]) == 1
    assert max_overlap([(0, 5), (1, 2), (1.5, 3)]) == 3


def test_a_concurrency_limit_of_two_holds_across_three_workers(three_engines: list[Engine]) -> None:
    registry = TaskRegistry()

    @registry.task("weigh-pallet", concurrency_limit=2)
    def weigh_pallet(task: RunningTask, session: Session) -> None:
        started = time.time()
        time.sleep(HANDLER_SECONDS)  # the work being limited
        record_run(session, task.id, "weigh-pallet", started=started)

    observer = three_engines[0]
    with Session(observer) as session:
        task_ids = [weigh_pallet.enqueue(session) for _ in range(12)]
        session.commit()

    with running_workers(three_engines, registry, fast_settings(concurrency=2)):
        wait_for_states(observer, task_ids, TaskState.SUCCEEDED)

    runs = handler_runs(observer, "weigh-pallet")
    assert sorted(r.task_id for r in runs) == sorted(task_ids)
    # Never above the limit, and it does reach it: a limit of one would fail this test too.
    assert max_overlap([(r.started, r.ended) for r in runs]) == 2


def starts_in_windows(starts: Sequence[float], width: float) -> int:
    """The most starts in any closed window ``[t, t + width]``."""
    ordered = sorted(starts)
    return max(sum(1 for s in ordered[i:] if s <= first + width) for i, first in enumerate(ordered))


def test_a_rate_limit_never_lets_more_starts_through_than_its_token_bucket_allows(
    three_engines: list[Engine],
) -> None:
    limit = RateLimit(count=5, per_seconds=1)
    registry = TaskRegistry()

    @registry.task("call-courier", rate_limit=limit)
    def call_courier(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "call-courier")

    observer = three_engines[0]
    with Session(observer) as session:
        task_ids = [call_courier.enqueue(session) for _ in range(20)]
        session.commit()

    with running_workers(three_engines, registry, fast_settings(concurrency=2)):
        wait_for_states(observer, task_ids, TaskState.SUCCEEDED)

    with observer.connect() as connection:
        started_at = connection.execute(
            select(task_table.c.started_at).where(task_table.c.id.in_(task_ids))
        ).scalars()
        starts = [moment.timestamp() for moment in started_at]
    # A bucket of ``count`` tokens (full at first use) refilled at count/per_seconds tokens a second lets
    # at most count + rate * w starts through in any window of w seconds. ``started_at`` is stamped a
    # statement after the bucket is read, hence the few milliseconds of slack.
    slack = 0.05
    for width in (0.0, 0.5, 1.0, 2.0):
        allowance = math.floor(limit.count + limit.tokens_per_second * (width + slack))
        assert starts_in_windows(starts, width) <= allowance, (width, sorted(starts))
    # The bucket really throttles: 20 starts with 5 up front and 5 a second take three seconds.
    assert max(starts) - min(starts) >= (20 - limit.count) / limit.tokens_per_second - slack
    assert len(handler_runs(observer, "call-courier")) == 20


def test_a_name_with_only_a_concurrency_limit_never_drives_its_tokens_negative(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("weigh-pallet", concurrency_limit=2)
    def weigh_pallet(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "weigh-pallet")

    with Session(depot) as session:
        task_ids = [weigh_pallet.enqueue(session) for _ in range(6)]
        session.commit()
    run_until_idle(depot, registry, fast_settings(concurrency=2))

    wait_for_states(depot, task_ids, TaskState.SUCCEEDED)
    with depot.connect() as connection:
        tokens = connection.scalar(select(limit_table.c.tokens).where(limit_table.c.name == "weigh-pallet"))
    # The token bucket is a rate limit's; a name without one leaves it alone.
    assert tokens is None or tokens >= 0, tokens


# -- what one claim takes --------------------------------------------------------------------------------


def names_in_one_claim(
    engine: Engine, registry: TaskRegistry, backlog: dict[TaskDefinition, int], *, limit: int
) -> list[str]:
    """Enqueue ``backlog`` (task -> how many), then claim once as a worker would; the claimed names."""
    with Session(engine) as session:
        for definition, count in backlog.items():
            for _ in range(count):
                definition.enqueue(session)
        session.commit()
    claimed = claim(
        engine,
        worker_id=uuid.uuid4(),
        lease_token=uuid.uuid4(),
        queues=registry.queues(),
        options={d.name: d.options for d in registry.definitions},
        limit=limit,
    )
    return [task.name for task in claimed]


def test_a_limited_name_gets_into_the_first_claim_despite_a_large_unlimited_backlog(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("sweep-floor")
    def sweep_floor(task: RunningTask, session: Session) -> None:
        """Plenty of these are waiting."""

    @registry.task("call-forklift", concurrency_limit=1)
    def call_forklift(task: RunningTask, session: Session) -> None:
        """Only one at a time, across all workers."""

    names = names_in_one_claim(depot, registry, {sweep_floor: 200, call_forklift: 2}, limit=50)

    assert names.count("call-forklift") == 1, names
    assert len(names) == 50


def test_a_backlog_of_a_limited_name_leaves_room_for_unlimited_names(depot: Engine) -> None:
    # Limited names are claimed first; a limit above the claim's size must not let them fill all of it.
    registry = TaskRegistry()

    @registry.task("restock-shelf", concurrency_limit=100)
    def restock_shelf(task: RunningTask, session: Session) -> None:
        """Plenty of these are waiting, and the limit allows them all."""

    @registry.task("fire-drill", priority=10)
    def fire_drill(task: RunningTask, session: Session) -> None:
        """Urgent, unlimited."""

    names = names_in_one_claim(depot, registry, {restock_shelf: 200, fire_drill: 3}, limit=8)

    assert names.count("fire-drill") == 3, names
    assert len(names) == 8
