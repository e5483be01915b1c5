"""Promises 2 and 5 from the handler's side: a handler that breaks its transaction fails only its attempt.

A handler may hide a database error from its code, roll its session back, or write a row that the commit
refuses (a foreign key checked at COMMIT). Each time its attempt fails and is recorded, its writes roll
back, and the tasks that share its commit group or its claim still run once. A handler may still use
savepoints of its own, and a refused commit leaves no pooled connection broken or the database locked.
Workers run in threads with fast settings; every wait polls a condition until a deadline.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import Column, Engine, ForeignKey, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from queue_core import RetryPolicy, RunningTask, TaskRegistry, TaskState, enqueue
from tests.support.inprocess import (
    Crate,
    error_rows,
    fast_settings,
    handler_runs,
    record_run,
    running_worker,
    task_row,
    wait_for,
    wait_for_state,
    wait_for_states,
    wait_until_set,
)

# A failing task here gets two quick attempts, then it is dead.
TWO_QUICK_ATTEMPTS = RetryPolicy(max_attempts=2, base_seconds=0.1, jitter=0.0)
FAILURE_DEADLINE = 15.0  # long enough for two attempts and a hand-back on a busy machine

# A table whose foreign key is checked only at COMMIT: a handler's bad row makes its group's commit fail,
# which is how a worker comes to give up a task it ran (the heartbeat then hands it back).
shelving = MetaData()
shelves = Table("test_shelves", shelving, Column("id", Integer, primary_key=True))
shelf_labels = Table(
    "test_shelf_labels",
    shelving,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "shelf_id",
        Integer,
        ForeignKey("test_shelves.id", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
    Column("text", String(100), nullable=False),
)


@pytest.fixture
def shelved_depot(depot: Engine) -> Engine:
    """The depot with its shelves and their labels, whose foreign key is checked at COMMIT."""
    shelving.create_all(depot)
    return depot


def label_missing_shelf(task: RunningTask, session: Session) -> None:
    """Label shelf 404, which does not exist: the statement succeeds, the commit fails."""
    session.execute(insert(shelf_labels).values(shelf_id=404, text=f"label of {task.id}"))


# -- a handler's failure stays its own -------------------------------------------------------------------


def run_three_in_one_group(
    engine: Engine, registry: TaskRegistry, troublemaker: str
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Enqueue an innocent task, the troublemaker, another innocent one (claimed in that order), run them.

    Returns (before, troublemaker, after) once the troublemaker is dead and the innocent ones succeeded.
    """
    with Session(engine) as session:
        before = enqueue(session, "unpack-crate", priority=1)
        trouble = enqueue(session, troublemaker, priority=0, max_attempts=2)
        after = enqueue(session, "unpack-crate", priority=-1)
        session.commit()
    # One runner and a large buffer: the three tasks are claimed together and share one commit group.
    settings = fast_settings(concurrency=1, prefetch=20, group_size=50, group_window=2.0)
    with running_worker(engine, registry, settings):
        # Waiting for either end: a troublemaker that wrongly succeeds fails the test at once, not later.
        wait_for_state(engine, trouble, TaskState.DEAD, TaskState.SUCCEEDED, timeout=FAILURE_DEADLINE)
        wait_for_states(engine, [before, after], TaskState.SUCCEEDED, timeout=FAILURE_DEADLINE)
    return before, trouble, after


def innocent_registry() -> TaskRegistry:
    """A registry whose ``unpack-crate`` task always succeeds; tests add their troublemaker to it."""
    registry = TaskRegistry()

    @registry.task("unpack-crate")
    def unpack_crate(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "unpack-crate")

    return registry


def assert_innocent_tasks_ran_once(engine: Engine, innocent: Sequence[uuid.UUID]) -> None:
    for task_id in innocent:
        row = task_row(engine, task_id)
        assert (row["state"], row["attempts"]) == ("succeeded", 1), row
    assert sorted(r.task_id for r in handler_runs(engine, "unpack-crate")) == sorted(innocent)


def assert_failed_every_attempt(engine: Engine, task_id: uuid.UUID, label: str) -> None:
    row = task_row(engine, task_id)
    assert (row["state"], row["attempts"]) == ("dead", 2), row
    assert [e["attempt"] for e in error_rows(engine, task_id)] == [1, 2]
    assert handler_runs(engine, label) == []  # its writes rolled back each time


# PostgreSQL only: after a failed statement PostgreSQL refuses everything until the savepoint is rolled back,
# so the handler cannot have succeeded. SQLite rolls back just the statement and lets the transaction go
# on, so there a handler that catches the error and carries on ("insert, ignore duplicates") succeeds with
# its other writes, as it chose to.
@pytest.mark.postgres_only
def test_a_handler_that_swallows_a_database_error_fails_its_attempt_without_harming_its_group(
    depot: Engine,
) -> None:
    registry = innocent_registry()

    @registry.task("relabel-crate", retry=TWO_QUICK_ATTEMPTS)
    def relabel_crate(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "relabel-crate")
        # The mistake under test: a handler that hides the database's refusal and carries on.
        with contextlib.suppress(IntegrityError):
            session.execute(insert(Crate).values(id=1, label="DUPLICATE-ARMCHAIR"))

    with Session(depot) as session:
        session.add(Crate(id=1, label="CRUNCHY-ARMCHAIR"))
        session.commit()

    before, relabel, after = run_three_in_one_group(depot, registry, "relabel-crate")

    assert_failed_every_attempt(depot, relabel, "relabel-crate")
    assert_innocent_tasks_ran_once(depot, [before, after])


def test_a_handler_that_rolls_back_the_session_fails_its_attempt_without_harming_its_group(
    depot: Engine,
) -> None:
    registry = innocent_registry()

    @registry.task("second-thoughts", retry=TWO_QUICK_ATTEMPTS)
    def second_thoughts(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "second-thoughts")
        session.rollback()

    before, doubtful, after = run_three_in_one_group(depot, registry, "second-thoughts")

    assert_failed_every_attempt(depot, doubtful, "second-thoughts")
    assert_innocent_tasks_ran_once(depot, [before, after])


@pytest.mark.parametrize("mistake", ["rolls back", "swallows a database error"])
def test_a_task_that_commits_alone_and_breaks_its_transaction_fails_its_attempt_and_writes_nothing(
    depot: Engine, mistake: str
) -> None:
    # It runs without a savepoint of its own (its transaction holds nothing else), so the runner must
    # notice the broken transaction itself rather than roll back to a savepoint.
    if mistake == "swallows a database error" and depot.dialect.name != "postgresql":
        pytest.skip("SQLite rolls back just the failed statement and lets the transaction go on")
    registry = TaskRegistry()

    @registry.task("call-the-carrier", retry=TWO_QUICK_ATTEMPTS, commits_alone=True)
    def call_the_carrier(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "call-the-carrier")
        if mistake == "rolls back":
            session.rollback()
        else:
            with contextlib.suppress(Exception):
                session.execute(select(func.no_such_function()))

    with Session(depot) as session:
        task_id = call_the_carrier.enqueue(session)
        session.commit()
    with running_worker(depot, registry, fast_settings()):
        wait_for_state(depot, task_id, TaskState.DEAD, timeout=FAILURE_DEADLINE)

    assert_failed_every_attempt(depot, task_id, "call-the-carrier")


def test_a_handler_may_use_a_savepoint_of_its_own(shelved_depot: Engine) -> None:
    # The usual way to try an insert and ignore a duplicate on PostgreSQL: releasing the handler's own
    # savepoint is not the commit that handlers are forbidden.
    registry = TaskRegistry()

    @registry.task("shelve-once", retry=TWO_QUICK_ATTEMPTS)
    def shelve_once(task: RunningTask, session: Session) -> None:
        with contextlib.suppress(IntegrityError), session.begin_nested():
            session.execute(insert(shelves).values(id=9))
        with contextlib.suppress(IntegrityError), session.begin_nested():
            session.execute(insert(shelves).values(id=9))  # the duplicate, ignored

    with Session(shelved_depot) as session:
        task_id = shelve_once.enqueue(session)
        session.commit()
    with running_worker(shelved_depot, registry):
        wait_for_state(shelved_depot, task_id, TaskState.SUCCEEDED, timeout=FAILURE_DEADLINE)

    assert task_row(shelved_depot, task_id)["attempts"] == 1
    with shelved_depot.connect() as connection:
        assert connection.scalars(select(shelves.c.id)).all() == [9]


# -- a commit the database refuses -----------------------------------------------------------------------


def test_a_task_given_up_after_a_failed_commit_counts_its_attempts_and_ends_dead(
    shelved_depot: Engine,
) -> None:
    registry = TaskRegistry()
    registry.task("label-missing-shelf", retry=TWO_QUICK_ATTEMPTS)(label_missing_shelf)

    with Session(shelved_depot) as session:
        task_id = enqueue(session, "label-missing-shelf", max_attempts=2)
        session.commit()
    with running_worker(shelved_depot, registry, fast_settings(concurrency=1)):
        wait_for_state(shelved_depot, task_id, TaskState.DEAD, timeout=FAILURE_DEADLINE)

    row = task_row(shelved_depot, task_id)
    assert (row["state"], row["attempts"]) == ("dead", 2), row
    assert error_rows(shelved_depot, task_id), "a task that died has no error recorded"
    with shelved_depot.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(shelf_labels)) == 0


def test_a_given_up_task_is_handed_back_while_its_claim_batch_is_still_running(shelved_depot: Engine) -> None:
    registry = TaskRegistry()
    registry.task("label-missing-shelf", retry=TWO_QUICK_ATTEMPTS)(label_missing_shelf)
    holding = threading.Event()
    release = threading.Event()

    @registry.task("hold-pallet")
    def hold_pallet(task: RunningTask, session: Session) -> None:
        holding.set()
        if not release.wait(60):
            raise TimeoutError("the test never released the pallet")

    with Session(shelved_depot) as session:
        given_up = enqueue(session, "label-missing-shelf", max_attempts=2)
        held = enqueue(session, "hold-pallet")
        session.commit()
    # Both tasks in one claim (one lease token), each in a commit group of its own on its own runner.
    settings = fast_settings(concurrency=2, prefetch=2, group_size=1)
    try:
        with running_worker(shelved_depot, registry, settings):
            wait_until_set(holding, "the holding handler starting")

            def handed_back() -> bool:
                row = task_row(shelved_depot, given_up)
                return bool(row["state"] != TaskState.RUNNING.value or row["attempts"] >= 2)

            wait_for(handed_back, timeout=FAILURE_DEADLINE, what="the given-up task being handed back")
            assert task_row(shelved_depot, held)["state"] == TaskState.RUNNING.value  # its batch still runs
            release.set()
            wait_for_state(shelved_depot, held, TaskState.SUCCEEDED)
    finally:
        release.set()


def test_a_commit_refused_by_a_deferred_constraint_leaves_the_pooled_connection_usable(
    shelved_depot: Engine,
) -> None:
    # On SQLite a COMMIT refused by a deferred foreign key leaves the transaction open; a connection
    # returned to the pool inside it would fail every later BEGIN IMMEDIATE ("cannot start a transaction
    # within a transaction"), in the worker as in the application.
    with pytest.raises(IntegrityError), Session(shelved_depot) as session:
        session.execute(insert(shelf_labels).values(shelf_id=404, text="label of a shelf that is not there"))
        session.commit()

    with shelved_depot.begin() as connection:
        connection.execute(insert(shelves).values(id=7))
        connection.execute(insert(shelf_labels).values(shelf_id=7, text="TOP-SHELF"))
    with shelved_depot.connect() as connection:
        assert connection.scalars(select(shelf_labels.c.text)).all() == ["TOP-SHELF"]


def test_a_refused_commit_does_not_keep_the_database_locked_for_other_pooled_connections(
    shelved_depot: Engine,
) -> None:
    # The refused transaction must be rolled back when its connection goes back to the pool, not at its
    # next BEGIN: until then SQLite's write lock stays held, and a writer on another connection waits out
    # the busy timeout. A second connection is held out of the pool so the next writer takes a new one.
    with shelved_depot.connect() as other:  # checked out of the pool, no transaction yet
        with pytest.raises(IntegrityError), Session(shelved_depot) as session:
            session.execute(insert(shelf_labels).values(shelf_id=404, text="label of a missing shelf"))
            session.commit()
        started = time.monotonic()
        with other.begin():
            other.execute(insert(shelves).values(id=8))
    assert time.monotonic() - started < 2.0, "the next writer waited for a lock nobody was using"
