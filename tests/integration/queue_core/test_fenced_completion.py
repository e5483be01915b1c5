"""Promise 2: a handler's writes and its task's completion commit together, fenced by the lease token.

These tests drive ``TaskRunner`` in-process on tasks claimed with ``queue_core._claims.claim``, so they can
change the database between the claim and the completion exactly where a lost lease would. The tests of
one task run twice: as a task of a commit group (inside a savepoint) and as a ``commits_alone`` task
(in the transaction itself, with no savepoint): the promise is the same.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from queue_core import TaskRegistry, enqueue, task_details
from queue_core._claims import ClaimedTask, claim
from queue_core._execution import TaskRunner
from queue_core._models import task_table as tasks
from tests.support.inprocess import wait_for
from tests.support.queue_handlers import count_effects, effects, enqueue_committed, registry, task_row

WORKER_ID = uuid.UUID("00000000-0000-4000-8000-00000000beef")


def claim_ready(engine: Engine, limit: int = 10) -> list[ClaimedTask]:
    return claim(
        engine,
        worker_id=WORKER_ID,
        lease_token=uuid.uuid4(),
        queues=registry.queues(),
        options={d.name: d.options for d in registry.definitions},
        limit=limit,
    )


@pytest.fixture(params=["grouped", "commits_alone"])
def handlers(request: pytest.FixtureRequest) -> TaskRegistry:
    """The test handlers as tasks of a commit group, or each declared ``commits_alone``."""
    if request.param == "grouped":
        return registry
    alone = TaskRegistry().include(registry)
    for name in alone.names:
        alone.with_options(name, commits_alone=True)
    return alone


def run_alone(engine: Engine, task: ClaimedTask, handlers: TaskRegistry = registry) -> str:
    """Run one claimed task in a commit group of its own; its outcome."""
    runner = TaskRunner(engine, handlers, WORKER_ID, lambda _task_id: threading.Event())
    [(ran, outcome)] = runner.run_group(task, lambda: None, 1, lambda: True)
    assert ran is task
    return outcome


def run_as_one_group(engine: Engine, claimed: list[ClaimedTask]) -> dict[uuid.UUID, str]:
    """Run the claimed tasks one after another in a single commit group; their outcomes by task ID."""
    runner = TaskRunner(engine, registry, WORKER_ID, lambda _task_id: threading.Event())
    rest = iter(claimed[1:])
    outcomes = runner.run_group(claimed[0], lambda: next(rest, None), len(claimed), lambda: False)
    return {task.id: outcome for task, outcome in outcomes}


def steal_lease(engine: Engine, task_id: uuid.UUID) -> uuid.UUID:
    """Give the task a new lease token, as a rescue and a claim by another worker would."""
    other_token = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(update(tasks).where(tasks.c.id == task_id).values(lease_token=other_token))
    return other_token


def test_handler_writes_and_task_success_commit_together(engine: Engine, handlers: TaskRegistry) -> None:
    task_id = enqueue_committed(engine, "test.record")
    [task] = claim_ready(engine)

    assert run_alone(engine, task, handlers) == "succeeded"

    row = task_row(engine, task_id)
    assert (row["state"], row["attempts"], row["lease_token"]) == ("succeeded", 1, None)
    with engine.connect() as connection:
        effect = connection.execute(select(effects).where(effects.c.task_id == task_id)).one()
    assert effect.attempt == 1


def test_handler_that_raises_leaves_no_business_write_and_its_task_is_retried(
    engine: Engine, handlers: TaskRegistry
) -> None:
    task_id = enqueue_committed(engine, "test.record_then_fail_first_attempt")
    [first] = claim_ready(engine)

    assert run_alone(engine, first, handlers) == "retrying"

    assert count_effects(engine, task_id) == 0  # written by the handler, rolled back with the failure
    row = task_row(engine, task_id)
    assert (row["state"], row["attempts"], row["worker_id"], row["lease_token"]) == ("pending", 1, None, None)
    with engine.connect() as connection:
        [error] = task_details(connection, task_id).errors
    assert (error.attempt, error.error_type) == (1, "RuntimeError")
    assert "timed out on the first attempt" in error.message

    [second] = wait_for(lambda: claim_ready(engine), timeout=15, what="the retry becomes claimable")
    assert (second.id, second.attempt) == (task_id, 2)
    assert run_alone(engine, second, handlers) == "succeeded"
    assert task_row(engine, task_id)["state"] == "succeeded"
    with engine.connect() as connection:
        [effect] = connection.execute(select(effects).where(effects.c.task_id == task_id)).all()
    assert effect.attempt == 2


def test_completion_with_a_stale_lease_token_is_refused_and_its_writes_roll_back(
    engine: Engine, handlers: TaskRegistry
) -> None:
    task_id = enqueue_committed(engine, "test.record")
    [task] = claim_ready(engine)
    new_token = steal_lease(engine, task_id)

    assert run_alone(engine, task, handlers) == "lease_lost"

    assert count_effects(engine, task_id) == 0
    row = task_row(engine, task_id)
    # Untouched: the task belongs to whoever holds the new token.
    assert (row["state"], row["attempts"], row["lease_token"]) == ("running", 1, new_token)


def test_stale_completion_of_a_handler_that_ran_no_sql_is_refused(
    engine: Engine, handlers: TaskRegistry
) -> None:
    task_id = enqueue_committed(engine, "test.noop")
    [task] = claim_ready(engine)
    new_token = steal_lease(engine, task_id)

    assert run_alone(engine, task, handlers) == "lease_lost"

    row = task_row(engine, task_id)
    assert (row["state"], row["lease_token"]) == ("running", new_token)


def test_stale_task_in_a_commit_group_rolls_back_alone(engine: Engine) -> None:
    with Session(engine) as session:
        kept = [enqueue(session, "test.record") for _ in range(3)]
        noop = enqueue(session, "test.noop")
        session.commit()
    claimed = claim_ready(engine)
    assert {task.id for task in claimed} == {*kept, noop}
    stolen = kept[1]
    steal_lease(engine, stolen)

    outcomes = run_as_one_group(engine, claimed)

    assert outcomes == {kept[0]: "succeeded", kept[1]: "lease_lost", kept[2]: "succeeded", noop: "succeeded"}
    assert [count_effects(engine, task_id) for task_id in kept] == [1, 0, 1]
    assert [task_row(engine, task_id)["state"] for task_id in (*kept, noop)] == [
        "succeeded",
        "running",
        "succeeded",
        "succeeded",
    ]


def test_handler_that_commits_fails_its_task_instead_of_splitting_the_transaction(
    engine: Engine, handlers: TaskRegistry
) -> None:
    task_id = enqueue_committed(engine, "test.record_then_commit")
    [task] = claim_ready(engine)

    assert run_alone(engine, task, handlers) == "retrying"

    assert count_effects(engine, task_id) == 0  # the write before the refused commit rolled back too
    row = task_row(engine, task_id)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    with engine.connect() as connection:
        [error] = task_details(connection, task_id).errors
    assert error.error_type == "RuntimeError"
    assert "must not commit" in error.message
