"""Regressions for the findings of the queue_core review: each test fails on the behaviour that was found.

The findings' labels (C1, C2, ..., m2) head each section, so a test can be traced back to its finding.
Workers run in threads with fast settings; every wait polls a condition until a deadline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from queue_core import (
    Discard,
    OnPrune,
    RetryPolicy,
    RunningTask,
    TaskDefinition,
    TaskRegistry,
    TaskState,
    Worker,
    cancel,
    enqueue,
    find_dangling,
    prune,
    requeue,
)
from queue_core._claims import claim
from queue_core._clock import db_now
from queue_core._maintenance import expire_overdue
from queue_core._models import limit_table, task_table
from queue_core._periodic import enqueue_due_ticks
from tests.support.inprocess import (
    Crate,
    ParcelJammedError,
    Sticker,
    backdate_finished,
    error_rows,
    fast_settings,
    handler_runs,
    record_run,
    run_until_idle,
    running_worker,
    running_workers,
    task_exists,
    task_row,
    wait_for,
    wait_for_state,
    wait_for_states,
    wait_until_set,
)

# A failing task here gets two quick attempts, then it is dead.
TWO_QUICK_ATTEMPTS = RetryPolicy(max_attempts=2, base_seconds=0.1, jitter=0.0)
RETENTION_SECONDS = 3600.0
FAILURE_DEADLINE = 15.0  # long enough for two attempts and a hand-back on a busy machine


def tasks_named(engine: Engine, name: str) -> list[uuid.UUID]:
    """The IDs of every task of one name, in any state."""
    with engine.connect() as connection:
        return list(connection.execute(select(task_table.c.id).where(task_table.c.name == name)).scalars())


def running_task_ids(engine: Engine) -> list[uuid.UUID]:
    """The IDs of every task in state ``running``."""
    with engine.connect() as connection:
        query = select(task_table.c.id).where(task_table.c.state == TaskState.RUNNING.value)
        return list(connection.execute(query).scalars())


def database_now(engine: Engine) -> dt.datetime:
    """The database's clock, which is the one schedules tick by."""
    with engine.connect() as connection:
        now = connection.scalar(select(db_now()))
    assert now is not None
    return now


def cron_weekday(moment: dt.datetime) -> int:
    """Cron's day of the week for ``moment`` (0 is Sunday; Python counts from Monday)."""
    return (moment.weekday() + 1) % 7


# -- C1: schedules with ticks more than a day apart ------------------------------------------------------


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


def test_an_every_second_schedule_is_still_enqueued_once_per_tick_across_three_workers(
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


# -- C2: a handler raising a BaseException that is not an Exception ---------------------------------------


class ConveyorHaltError(BaseException):
    """Not an Exception: what a library's abort signal or a GeneratorExit-like escape looks like."""


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
    assert running_task_ids(depot) == []


# -- C3: handlers that swallow a database error or roll the session back ----------------------------------


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


def label_missing_shelf(task: RunningTask, session: Session) -> None:
    """Label shelf 404, which does not exist: the statement succeeds, the commit fails."""
    session.execute(insert(shelf_labels).values(shelf_id=404, text=f"label of {task.id}"))


def test_a_task_given_up_after_a_failed_commit_counts_its_attempts_and_ends_dead(depot: Engine) -> None:
    shelving.create_all(depot)
    registry = TaskRegistry()
    registry.task("label-missing-shelf", retry=TWO_QUICK_ATTEMPTS)(label_missing_shelf)

    with Session(depot) as session:
        task_id = enqueue(session, "label-missing-shelf", max_attempts=2)
        session.commit()
    with running_worker(depot, registry, fast_settings(concurrency=1)):
        wait_for_state(depot, task_id, TaskState.DEAD, timeout=FAILURE_DEADLINE)

    row = task_row(depot, task_id)
    assert (row["state"], row["attempts"]) == ("dead", 2), row
    assert error_rows(depot, task_id), "a task that died has no error recorded"
    with depot.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(shelf_labels)) == 0


def test_a_commit_refused_by_a_deferred_constraint_leaves_the_pooled_connection_usable(
    depot: Engine,
) -> None:
    # Found while writing the test above: on SQLite, a COMMIT refused by a deferred foreign key leaves the
    # transaction open, and the connection went back to the pool inside it; every later BEGIN IMMEDIATE on
    # it failed ("cannot start a transaction within a transaction"), in the worker as in the application.
    shelving.create_all(depot)
    with pytest.raises(IntegrityError), Session(depot) as session:
        session.execute(insert(shelf_labels).values(shelf_id=404, text="label of a shelf that is not there"))
        session.commit()

    with depot.begin() as connection:
        connection.execute(insert(shelves).values(id=7))
        connection.execute(insert(shelf_labels).values(shelf_id=7, text="TOP-SHELF"))
    with depot.connect() as connection:
        assert connection.scalars(select(shelf_labels.c.text)).all() == ["TOP-SHELF"]


def test_a_refused_commit_does_not_keep_the_database_locked_for_other_pooled_connections(
    depot: Engine,
) -> None:
    # Second review: rolling the open transaction back only at its connection's next BEGIN left SQLite's
    # write lock held while that connection sat in the pool; a writer on another connection then waited
    # out the busy timeout. Hold a second connection out of the pool so the next writer takes a new one.
    shelving.create_all(depot)
    with depot.connect() as other:  # checked out of the pool, no transaction yet
        with pytest.raises(IntegrityError), Session(depot) as session:
            session.execute(insert(shelf_labels).values(shelf_id=404, text="label of a missing shelf"))
            session.commit()
        started = time.monotonic()
        with other.begin():
            other.execute(insert(shelves).values(id=8))
    assert time.monotonic() - started < 2.0, "the next writer waited for a lock nobody was using"


def test_a_handler_may_use_a_savepoint_of_its_own(depot: Engine) -> None:
    # Second review: the guard against handlers that commit also refused the release of a handler's own
    # savepoint, the usual way to try an insert and ignore a duplicate on PostgreSQL.
    shelving.create_all(depot)
    registry = TaskRegistry()

    @registry.task("shelve-once", retry=TWO_QUICK_ATTEMPTS)
    def shelve_once(task: RunningTask, session: Session) -> None:
        with contextlib.suppress(IntegrityError), session.begin_nested():
            session.execute(insert(shelves).values(id=9))
        with contextlib.suppress(IntegrityError), session.begin_nested():
            session.execute(insert(shelves).values(id=9))  # the duplicate, ignored

    with Session(depot) as session:
        task_id = shelve_once.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_for_state(depot, task_id, TaskState.SUCCEEDED, timeout=FAILURE_DEADLINE)

    assert task_row(depot, task_id)["attempts"] == 1
    with depot.connect() as connection:
        assert connection.scalars(select(shelves.c.id)).all() == [9]


# -- M1: graceful shutdown keeps heartbeating ------------------------------------------------------------


SLOW_HANDLER_SECONDS = 3.0


def slow_registry(seconds: float) -> tuple[TaskRegistry, threading.Event, list[int]]:
    """A registry with one slow task; its start signal; the attempts its handler saw, one per run."""
    registry = TaskRegistry()
    started = threading.Event()
    runs: list[int] = []

    @registry.task("weigh-pallet-slowly")
    def weigh_pallet_slowly(task: RunningTask, session: Session) -> None:
        runs.append(task.attempt)
        started.set()
        time.sleep(seconds)
        record_run(session, task.id, "weigh-pallet-slowly")

    return registry, started, runs


def test_a_stopping_worker_keeps_its_running_task_until_the_handler_finishes(
    three_engines: list[Engine],
) -> None:
    registry, started, runs = slow_registry(SLOW_HANDLER_SECONDS)
    settings = fast_settings(
        concurrency=1, lease_seconds=1, heartbeat_interval=0.2, maintenance_interval=0.1, shutdown_grace=5
    )
    first_engine, second_engine, observer = three_engines

    with running_worker(first_engine, registry, settings) as stopping:
        with Session(observer) as session:
            task_id = enqueue(session, "weigh-pallet-slowly")
            session.commit()
        wait_until_set(started, "the slow handler starting")
        assert task_row(observer, task_id)["worker_id"] == stopping.id
        with running_worker(second_engine, registry, settings):
            stopping.stop()  # SIGTERM's handler does exactly this
            wait_for_state(observer, task_id, TaskState.SUCCEEDED)
            # The second worker rescues within a lease of silence: give it three leases to (wrongly) do so.
            finished = time.monotonic()
            wait_for(lambda: time.monotonic() - finished >= 3.0, what="three leases passing")

    row = task_row(observer, task_id)
    assert (row["state"], row["attempts"]) == ("succeeded", 1), row
    assert runs == [1]
    assert [r.task_id for r in handler_runs(observer, "weigh-pallet-slowly")] == [task_id]


# -- M2: rescue respects each worker's own lease ---------------------------------------------------------


def test_a_worker_with_a_short_lease_never_rescues_a_task_of_a_worker_with_a_long_lease(
    three_engines: list[Engine],
) -> None:
    registry, started, runs = slow_registry(4.0)
    patient = fast_settings(concurrency=1, lease_seconds=6, heartbeat_interval=None)  # beats every 1.2 s
    hasty = fast_settings(concurrency=1, lease_seconds=1, heartbeat_interval=0.2, maintenance_interval=0.1)
    patient_engine, hasty_engine, observer = three_engines

    with running_worker(patient_engine, registry, patient) as patient_worker:
        with Session(observer) as session:
            task_id = enqueue(session, "weigh-pallet-slowly")
            session.commit()
        wait_until_set(started, "the slow handler starting")
        assert task_row(observer, task_id)["worker_id"] == patient_worker.id
        with running_worker(hasty_engine, registry, hasty):
            wait_for_state(observer, task_id, TaskState.SUCCEEDED)

    row = task_row(observer, task_id)
    assert (row["state"], row["attempts"]) == ("succeeded", 1), row
    assert runs == [1]
    assert error_rows(observer, task_id) == []


# -- M7: a given-up task is handed back while the rest of its claim batch still runs ----------------------


def test_a_given_up_task_is_handed_back_while_its_claim_batch_is_still_running(depot: Engine) -> None:
    shelving.create_all(depot)
    registry = TaskRegistry()
    registry.task("label-missing-shelf", retry=TWO_QUICK_ATTEMPTS)(label_missing_shelf)
    holding = threading.Event()
    release = threading.Event()

    @registry.task("hold-pallet")
    def hold_pallet(task: RunningTask, session: Session) -> None:
        holding.set()
        if not release.wait(60):
            raise TimeoutError("the test never released the pallet")

    with Session(depot) as session:
        given_up = enqueue(session, "label-missing-shelf", max_attempts=2)
        held = enqueue(session, "hold-pallet")
        session.commit()
    # Both tasks in one claim (one lease token), each in a commit group of its own on its own runner.
    settings = fast_settings(concurrency=2, prefetch=2, group_size=1)
    try:
        with running_worker(depot, registry, settings):
            wait_until_set(holding, "the holding handler starting")

            def handed_back() -> bool:
                row = task_row(depot, given_up)
                return bool(row["state"] != TaskState.RUNNING.value or row["attempts"] >= 2)

            wait_for(handed_back, timeout=FAILURE_DEADLINE, what="the given-up task being handed back")
            assert task_row(depot, held)["state"] == TaskState.RUNNING.value  # its batch is still running
            release.set()
            wait_for_state(depot, held, TaskState.SUCCEEDED)
    finally:
        release.set()


# -- M8: limited names are not starved by a backlog of unlimited ones --------------------------------------


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
    # Second review: claiming limited names first, with a limit above the claim size, starved the others.
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


# -- M9: requeue of an expired task ----------------------------------------------------------------------


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
    assert task_row(depot, task_id)["expires_at"] is None

    with running_worker(depot, registry):
        reached = wait_for_state(depot, task_id, TaskState.SUCCEEDED, TaskState.EXPIRED)

    assert reached is TaskState.SUCCEEDED
    assert [r.task_id for r in handler_runs(depot, "deliver-flowers")] == [task_id]


# -- M10: SET_NULL pruning never hides a dangling reference ------------------------------------------------


def test_set_null_pruning_keeps_pointers_at_unsuccessful_tasks_and_nulls_those_at_succeeded_ones(
    depot: Engine,
) -> None:
    registry = TaskRegistry()
    registry.track_reference(Sticker.print_task_id, on_prune=OnPrune.SET_NULL)

    @registry.task("print-sticker")
    def print_sticker(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "print-sticker")

    @registry.task("jam-printer", retry=RetryPolicy(max_attempts=1))
    def jam_printer(task: RunningTask, session: Session) -> None:
        raise ParcelJammedError("the printer ate the label roll")

    @registry.task("lose-sticker")
    def lose_sticker(task: RunningTask, session: Session) -> None:
        raise Discard("the sticker blew away")

    with Session(depot) as session:
        ids = {
            "succeeded": print_sticker.enqueue(session),
            "dead": jam_printer.enqueue(session),
            "discarded": lose_sticker.enqueue(session),
            "cancelled": print_sticker.enqueue(session, delay=3600),
            "expired": enqueue(session, "print-sticker", delay=3600, expires_in=0.1),
        }
        session.commit()
        cancel(session, ids["cancelled"])
        for number, (label, task_id) in enumerate(ids.items(), start=1):
            session.add(Sticker(id=number, label=label.upper(), print_task_id=task_id))
        session.commit()
    run_until_idle(depot, registry)

    def expired() -> bool:
        with depot.begin() as connection:
            expire_overdue(connection)
        return task_row(depot, ids["expired"])["state"] == TaskState.EXPIRED.value

    wait_for(expired, what="the sticker task expiring")
    for label, task_id in ids.items():
        assert task_row(depot, task_id)["state"] == label
    backdate_finished(depot, list(ids.values()), seconds=2 * RETENTION_SECONDS)

    while True:
        with depot.begin() as connection:
            if not prune(connection, registry.references, older_than_seconds=RETENTION_SECONDS).deleted:
                break

    unsuccessful = {label: task_id for label, task_id in ids.items() if label != "succeeded"}
    with Session(depot) as session:
        pointers = {s.label.lower(): s.print_task_id for s in session.scalars(select(Sticker))}
        dangling = find_dangling(session, registry.references)
    assert pointers == {"succeeded": None, **unsuccessful}
    assert not task_exists(depot, ids["succeeded"])
    assert all(task_exists(depot, task_id) for task_id in unsuccessful.values())
    assert {(d.task_id, d.task_state) for d in dangling} == {
        (task_id, label) for label, task_id in unsuccessful.items()
    }


# -- m2: a concurrency limit without a rate limit leaves the token bucket alone --------------------------


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
    assert tokens is None or tokens >= 0, tokens
