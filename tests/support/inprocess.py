"""Running queue_core workers inside the test process, and the small business tables the tests point at tasks.

Workers run in threads (``running_worker``) or until the queue is idle (``run_until_idle``), with settings
fast enough that a test waits tenths of a second, not seconds. Nothing here sleeps to make an assertion:
``wait_for`` polls a condition until a deadline and fails with a message that says what never happened.

The test tables are business rows of a parcel depot: ``crates`` keep the task that unpacks them (kept when
pruning), ``stickers`` the task that prints them (nulled when pruning), ``handler_runs`` records what
handlers did and when, committed with their task.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, Float, Integer, String, Uuid, delete, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskState, Worker, WorkerSettings, state_of
from queue_core._models import error_table, task_table
from queue_core._registry import TaskRegistry

# Leases, heartbeats and polls a hundred times shorter than in production: a test waits tenths of a second.
FAST = WorkerSettings(lease_seconds=2, heartbeat_interval=0.3, poll_interval=0.05, maintenance_interval=0.1)
DEADLINE_SECONDS = 20.0  # generous: the suite shares two cores with other work


def fast_settings(**changes: Any) -> WorkerSettings:
    """``FAST`` with some settings changed (``concurrency=1``, ``queues=["a"]``...)."""
    return replace(FAST, **changes)


class DepotBase(DeclarativeBase):
    """The test tables' own base: business tables never share queue_core's metadata."""


class Crate(DepotBase):
    """A crate waiting to be unpacked; ``unpack_task_id`` points at the task that does it."""

    __tablename__ = "test_crates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    unpack_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)


class Sticker(DepotBase):
    """A sticker to print; once printed, nobody needs its task, so pruning nulls the pointer."""

    __tablename__ = "test_stickers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    print_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True, index=True)


class HandlerRun(DepotBase):
    """One handler run, written by the handler itself, so it exists only if the task's work committed."""

    __tablename__ = "test_handler_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    label: Mapped[str] = mapped_column(String(100))
    started: Mapped[float] = mapped_column(Float)  # time.time() when the handler began
    ended: Mapped[float] = mapped_column(Float)  # time.time() when it was about to return


def create_depot_tables(engine: Engine) -> None:
    """Create the test tables in this test's (already migrated) database."""
    DepotBase.metadata.create_all(engine)


def record_run(session: Session, task_id: uuid.UUID, label: str, started: float | None = None) -> None:
    """Write a ``HandlerRun`` row in the handler's session (it commits with the task, or not at all)."""
    now = time.time()
    session.add(
        HandlerRun(task_id=task_id, label=label, started=now if started is None else started, ended=now)
    )


class SlowTask:
    """A registry with one task whose handler notes each attempt, says when it starts and takes ``seconds``.

    With ``record``, each attempt also writes a ``HandlerRun`` row in its transaction, so a test sees
    which attempt's writes landed. For the tests of who keeps, and who must not take, a running task.
    """

    def __init__(self, name: str, seconds: float, *, record: bool = True) -> None:
        self.registry = TaskRegistry()
        self.started = threading.Event()
        self.attempts: list[int] = []

        @self.registry.task(name)
        def run_slowly(task: RunningTask, session: Session) -> None:
            self.attempts.append(task.attempt)
            self.started.set()
            time.sleep(seconds)
            if record:
                record_run(session, task.id, name)


def transactions_left_open(engine: Engine) -> list[str]:
    """PostgreSQL: the last statement of every other session of this database idle inside a transaction."""
    with engine.connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            )
        )


def handler_runs(engine: Engine, label: str | None = None) -> list[HandlerRun]:
    """The committed handler runs, in the order they were written."""
    with Session(engine, expire_on_commit=False) as session:
        query = select(HandlerRun).order_by(HandlerRun.id)
        if label is not None:
            query = query.where(HandlerRun.label == label)
        return list(session.scalars(query))


class ParcelJammedError(Exception):
    """What a failing test handler raises: a vivid, recognisable error type."""


# -- waiting ---------------------------------------------------------------------------------------------


def wait_for(
    condition: Callable[[], Any], *, timeout: float = DEADLINE_SECONDS, interval: float = 0.02, what: str
) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"within {timeout:.0f}s: {what} never happened")
        time.sleep(interval)


def wait_for_state(
    engine: Engine, task_id: uuid.UUID, *states: TaskState, timeout: float = DEADLINE_SECONDS
) -> TaskState:
    """Wait until the task is in one of ``states``; returns the state it reached."""

    def reached() -> TaskState | None:
        with engine.connect() as connection:
            state = state_of(connection, task_id)
        return state if state in states else None

    names = " or ".join(s.value for s in states)
    result: TaskState = wait_for(reached, timeout=timeout, what=f"task {task_id} reaching {names}")
    return result


def wait_for_states(
    engine: Engine, task_ids: Sequence[uuid.UUID], *states: TaskState, timeout: float = DEADLINE_SECONDS
) -> None:
    """Wait until every task is in one of ``states``."""
    wanted = {s.value for s in states}

    def all_there() -> bool:
        with engine.connect() as connection:
            found = connection.execute(
                select(task_table.c.state).where(task_table.c.id.in_(list(task_ids)))
            ).scalars()
            reached = [state for state in found if state in wanted]
        return len(reached) == len(task_ids)

    names = " or ".join(sorted(wanted))
    wait_for(all_there, timeout=timeout, what=f"all {len(task_ids)} tasks reaching {names}")


def wait_until_set(event: threading.Event, what: str, timeout: float = DEADLINE_SECONDS) -> None:
    """Wait for a handler's signal; fail with ``what`` if it never comes."""
    if not event.wait(timeout):
        raise AssertionError(f"within {timeout:.0f}s: {what} never happened")


# -- workers ---------------------------------------------------------------------------------------------


@contextmanager
def running_worker(
    engine: Engine,
    registry: TaskRegistry,
    settings: WorkerSettings = FAST,
    session_info: Mapping[str, Any] | None = None,
) -> Iterator[Worker]:
    """A worker running in a thread for the duration of the block; stopped (gracefully) on leaving it."""
    with running_workers([engine], registry, settings, session_info) as workers:
        yield workers[0]


@contextmanager
def running_workers(
    engines: Sequence[Engine],
    registry: TaskRegistry,
    settings: WorkerSettings = FAST,
    session_info: Mapping[str, Any] | None = None,
) -> Iterator[list[Worker]]:
    """One worker per engine, all running at once in threads; each stopped and joined on leaving."""
    workers = [Worker(engine, registry, settings, session_info=session_info) for engine in engines]
    failures: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            worker.run()
        except BaseException as exc:  # reported by the test, not lost in a thread
            failures.append(exc)

    threads = [
        threading.Thread(target=run, args=(w,), name=f"test-worker-{n}") for n, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    try:
        yield workers
    finally:
        for worker in workers:
            worker.stop()
        for thread in threads:
            thread.join(timeout=settings.shutdown_grace + 10)
        stuck = [t.name for t in threads if t.is_alive()]
        assert not stuck, f"workers did not stop: {stuck}"
        assert not failures, f"a worker crashed: {failures!r}"


def run_until_idle(
    engine: Engine,
    registry: TaskRegistry,
    settings: WorkerSettings = FAST,
    session_info: Mapping[str, Any] | None = None,
) -> Worker:
    """Run one worker until nothing is left for it to do (in a thread, so no signal handler is installed)."""
    worker = Worker(engine, registry, settings, session_info=session_info)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            worker.run(until_idle=True)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name="test-worker-until-idle")
    thread.start()
    thread.join(timeout=DEADLINE_SECONDS * 3)
    if thread.is_alive():
        worker.stop()
        thread.join(timeout=DEADLINE_SECONDS)
        raise AssertionError("the worker did not go idle")
    assert not failures, f"the worker crashed: {failures!r}"
    return worker


# -- reading the queue's tables --------------------------------------------------------------------------


def task_row(engine: Engine, task_id: uuid.UUID) -> dict[str, Any]:
    """The task's row as a dict (fails if it is gone)."""
    with engine.connect() as connection:
        row = connection.execute(select(task_table).where(task_table.c.id == task_id)).one()
    return dict(row._mapping)


def task_exists(engine: Engine, task_id: uuid.UUID) -> bool:
    """Whether the task's row is still there (pruning deletes it)."""
    with engine.connect() as connection:
        found = connection.execute(select(task_table.c.id).where(task_table.c.id == task_id)).first()
    return found is not None


def error_rows(engine: Engine, task_id: uuid.UUID) -> list[dict[str, Any]]:
    """The task's error rows, attempt by attempt."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(error_table).where(error_table.c.task_id == task_id).order_by(error_table.c.attempt)
        )
        return [dict(row._mapping) for row in rows]


def scheduled_ticks(engine: Engine, task_name: str) -> list[dict[str, Any]]:
    """The tasks a schedule enqueued for ``task_name``, oldest tick first, each with its ``tick_at``."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(task_table.c.id, task_table.c.args).where(task_table.c.name == task_name)
        ).all()
    ticks = [
        {"task_id": row.id, "tick_at": dt.datetime.fromisoformat(row.args["scheduled_for"])} for row in rows
    ]
    return sorted(ticks, key=lambda tick: tick["tick_at"])


def backdate_finished(engine: Engine, task_ids: Sequence[uuid.UUID], seconds: float) -> None:
    """Pretend the tasks finished ``seconds`` earlier than they did (the retention clock, fast-forwarded)."""
    with engine.begin() as connection:
        for task_id in task_ids:
            finished_at = connection.execute(
                select(task_table.c.finished_at).where(task_table.c.id == task_id)
            ).scalar_one()
            assert finished_at is not None, f"task {task_id} has not finished"
            connection.execute(
                task_table.update()
                .where(task_table.c.id == task_id)
                .values(finished_at=finished_at - dt.timedelta(seconds=seconds))
            )


def forget_handler_runs(engine: Engine) -> None:
    """Empty ``test_handler_runs`` (between phases of one test)."""
    with engine.begin() as connection:
        connection.execute(delete(HandlerRun))
