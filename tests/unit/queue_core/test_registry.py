"""TaskRegistry: what it accepts, what it refuses, and how registries merge."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Uuid
from sqlalchemy.orm import Session

from queue_core import OnPrune, RateLimit, RetryPolicy, RunningTask, Schedule, TaskDefinition, TaskRegistry

depot = MetaData()
pallets = Table(
    "pallets",
    depot,
    Column("id", Integer, primary_key=True),
    Column("wrap_task_id", Uuid, nullable=True),
)


def wrap_pallet(task: RunningTask, session: Session) -> None:
    """A handler that does nothing: registries never call handlers."""


def stack_pallet(task: RunningTask, session: Session) -> None:
    """Another handler, to tell two definitions apart."""


def test_a_declared_task_is_found_by_name_with_its_options() -> None:
    registry = TaskRegistry()
    definition = registry.task("wrap-pallet", queue="pallets", priority=3, expires_in=60)(wrap_pallet)
    assert registry.get("wrap-pallet") is definition
    assert "wrap-pallet" in registry
    assert definition.options.queue == "pallets"
    assert definition.spec().priority == 3
    assert definition.spec().expires_in == 60
    assert registry.queues() == ["pallets"]


def test_the_retry_policy_sets_max_attempts_of_enqueued_tasks() -> None:
    registry = TaskRegistry()
    definition = registry.task("wrap-pallet", retry=RetryPolicy(max_attempts=9))(wrap_pallet)
    assert definition.spec().max_attempts == 9


def test_rejects_a_second_task_with_the_same_name() -> None:
    registry = TaskRegistry()
    registry.task("wrap-pallet")(wrap_pallet)
    with pytest.raises(ValueError, match="declared twice"):
        registry.task("wrap-pallet")(stack_pallet)


def test_the_same_definition_may_be_added_twice() -> None:
    registry = TaskRegistry()
    definition = registry.task("wrap-pallet")(wrap_pallet)
    registry.add(definition)
    assert registry.names == ["wrap-pallet"]


def test_unknown_names_raise_key_error_naming_the_task() -> None:
    with pytest.raises(KeyError, match="wrap-pallet"):
        TaskRegistry().get("wrap-pallet")


def test_rejects_an_invalid_cron_line() -> None:
    registry = TaskRegistry()
    registry.task("wrap-pallet")(wrap_pallet)
    with pytest.raises(ValueError, match="cron"):
        registry.schedule("wrap-nightly", "wrap-pallet", cron="61 25 * * *")


def test_a_schedule_needs_exactly_one_of_every_and_cron() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Schedule(name="wrap", task="wrap-pallet")
    with pytest.raises(ValueError, match="exactly one"):
        Schedule(name="wrap", task="wrap-pallet", every=60, cron="* * * * *")


@pytest.mark.parametrize("every", [0, -1.5])
def test_rejects_a_schedule_that_is_not_positive(every: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Schedule(name="wrap", task="wrap-pallet", every=every)


def test_rejects_a_second_schedule_with_the_same_name() -> None:
    registry = TaskRegistry()
    registry.task("wrap-pallet")(wrap_pallet)
    registry.task("stack-pallet")(stack_pallet)
    registry.schedule("nightly", "wrap-pallet", cron="0 3 * * *")
    with pytest.raises(ValueError):
        registry.schedule("nightly", "stack-pallet", cron="0 4 * * *")


@pytest.mark.parametrize("limit", [0, -1])
def test_rejects_a_concurrency_limit_below_one(limit: int) -> None:
    with pytest.raises(ValueError, match="concurrency_limit"):
        TaskRegistry().task("wrap-pallet", concurrency_limit=limit)


@pytest.mark.parametrize(("count", "per_seconds"), [(0, 1.0), (-3, 1.0), (5, 0.0), (5, -1.0)])
def test_rejects_a_rate_limit_that_allows_nothing(count: int, per_seconds: float) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(count=count, per_seconds=per_seconds)


def test_tasks_with_a_concurrency_or_rate_limit_are_limited() -> None:
    registry = TaskRegistry()
    registry.task("wrap-pallet", concurrency_limit=2)(wrap_pallet)
    registry.task("stack-pallet", rate_limit=RateLimit(count=10, per_seconds=2))(stack_pallet)
    registry.task("sweep-floor")(wrap_pallet)
    limited = sorted(d.name for d in registry.definitions if d.options.is_limited)
    assert limited == ["stack-pallet", "wrap-pallet"]
    assert RateLimit(count=10, per_seconds=2).tokens_per_second == 5.0


def test_include_merges_tasks_schedules_and_references() -> None:
    wrapping = TaskRegistry()
    wrapping.task("wrap-pallet", queue="pallets")(wrap_pallet)
    wrapping.schedule("wrap-every-minute", "wrap-pallet", every=60)
    wrapping.track_reference(pallets.c.wrap_task_id, on_prune=OnPrune.SET_NULL)
    stacking = TaskRegistry()
    stacking.task("stack-pallet", queue="stacks")(stack_pallet)

    app = TaskRegistry().include(wrapping).include(stacking)

    assert sorted(app.names) == ["stack-pallet", "wrap-pallet"]
    assert [s.name for s in app.schedules] == ["wrap-every-minute"]
    assert [(r.label, r.on_prune) for r in app.references] == [("pallets.wrap_task_id", OnPrune.SET_NULL)]
    assert app.queues() == ["pallets", "stacks"]


def test_include_refuses_two_packages_declaring_one_name_differently() -> None:
    first = TaskRegistry()
    first.task("wrap-pallet")(wrap_pallet)
    second = TaskRegistry()
    second.task("wrap-pallet")(stack_pallet)
    with pytest.raises(ValueError, match="declared twice"):
        TaskRegistry().include(first).include(second)


def test_with_options_replaces_a_tasks_options() -> None:
    registry = TaskRegistry()
    registry.task("wrap-pallet")(wrap_pallet)
    updated = registry.with_options("wrap-pallet", retry=RetryPolicy(max_attempts=1))
    assert registry.get("wrap-pallet") is updated
    assert updated.spec().max_attempts == 1


def test_track_reference_refuses_something_that_is_not_a_table_column() -> None:
    with pytest.raises((TypeError, AttributeError)):
        TaskRegistry().track_reference("pallets.wrap_task_id")  # type: ignore[arg-type]


def test_a_task_declared_without_its_handler_enqueues_with_its_options_and_is_in_no_registry() -> None:
    declared = TaskDefinition.declare("wrap-pallet", queue="pallets", retry=RetryPolicy(max_attempts=9))
    assert (declared.spec().queue, declared.spec().max_attempts) == ("pallets", 9)
    with pytest.raises(LookupError, match="no handler was bound"):
        declared.handler(None, None)  # type: ignore[arg-type]


def test_handles_binds_a_handler_to_a_declared_task_and_says_how_it_runs() -> None:
    declared = TaskDefinition.declare("wrap-pallet", queue="pallets", retry=RetryPolicy(max_attempts=9))
    registry = TaskRegistry()
    bound = registry.handles(declared, commits_alone=True, concurrency_limit=2)(wrap_pallet)
    assert registry.get("wrap-pallet") is bound
    assert bound.handler is wrap_pallet
    assert (bound.options.queue, bound.options.retry.max_attempts) == ("pallets", 9)
    assert (bound.options.commits_alone, bound.options.concurrency_limit) == (True, 2)
    assert bound.options.retry == declared.options.retry  # enqueued through either, it is the same task
