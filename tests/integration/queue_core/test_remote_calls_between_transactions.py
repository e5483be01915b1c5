"""A handler that calls another service works in phases, and the queue refuses a call made inside a
transaction: ``RunningTask.short_transaction`` reads (or commits an intent) before the call,
``RunningTask.outside_transaction`` marks the call, and the handler's own session records the answer."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from queue_core import RunningTask, TaskRegistry, TaskState, enqueue
from queue_core._models import error_table
from queue_core.testing import drain
from tests.support.inprocess import (
    Crate,
    fast_settings,
    running_worker,
    transactions_left_open,
    wait_for_states,
    wait_until_set,
)

CARRIER_ANSWER = "CARRIER-BOOKING-7"


def crate_with_task(engine: Engine, name: str, label: str = "crate of teacups") -> tuple[int, uuid.UUID]:
    with Session(engine) as session:
        task_id = enqueue(session, name)
        crate = Crate(label=label, unpack_task_id=task_id)
        session.add(crate)
        session.commit()
        return crate.id, task_id


def label_of(engine: Engine, crate_id: int) -> str:
    with Session(engine) as session:
        return session.get_one(Crate, crate_id).label


def test_the_phases_read_before_the_call_and_record_after_it(depot: Engine) -> None:
    registry = TaskRegistry()
    calls: list[str] = []

    @registry.task("book-pickup", commits_alone=True)
    def book_pickup(task: RunningTask, session: Session) -> None:
        with task.short_transaction() as reading:
            label = reading.scalars(select(Crate.label).where(Crate.unpack_task_id == task.id)).one()
            assert reading.info["carrier"] == "the carrier's client"  # the worker's session_info
        with task.outside_transaction():
            calls.append(label)  # stands in for the carrier's API
        crate = session.scalars(select(Crate).where(Crate.unpack_task_id == task.id)).one()
        crate.label, crate.unpack_task_id = f"{label}: {CARRIER_ANSWER}", None

    crate_id, _task_id = crate_with_task(depot, "book-pickup")
    result = drain(depot, registry, session_info={"carrier": "the carrier's client"})

    assert result.counts == {"succeeded": 1}
    assert calls == ["crate of teacups"]
    assert label_of(depot, crate_id) == f"crate of teacups: {CARRIER_ANSWER}"


def test_the_short_transaction_is_not_fenced_it_commits_whatever_the_attempt_does_next(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("book-pickup", commits_alone=True)
    def book_pickup(task: RunningTask, session: Session) -> None:
        with task.short_transaction() as intent:
            crate = intent.scalars(select(Crate).where(Crate.unpack_task_id == task.id)).one()
            crate.label = "pickup requested"  # a recovery point: right for any attempt to write
        session.scalars(select(Crate).where(Crate.unpack_task_id == task.id)).one().label = "booked"
        raise RuntimeError("the carrier hung up")

    crate_id, task_id = crate_with_task(depot, "book-pickup")
    result = drain(depot, registry)

    assert result.of(task_id)[0].outcome == "retrying"
    assert label_of(depot, crate_id) == "pickup requested"  # the handler's own write rolled back


def test_a_call_after_the_handler_used_its_session_fails_the_attempt_saying_how_to_fix_it(
    depot: Engine,
) -> None:
    registry = TaskRegistry()
    calls: list[str] = []

    @registry.task("book-pickup", commits_alone=True)
    def book_pickup(task: RunningTask, session: Session) -> None:
        session.scalars(select(Crate).where(Crate.unpack_task_id == task.id)).one()  # transaction begun
        with task.outside_transaction():
            calls.append("booked")

    crate_with_task(depot, "book-pickup")
    [first, *_] = drain(depot, registry).runs

    assert calls == []  # the call never went out
    assert first.outcome == "retrying"
    assert first.error is not None and first.error.startswith("queue_core.TransactionHeldError")
    assert "use the handler's session only after the remote call" in first.error


def test_a_call_grouped_behind_a_task_that_wrote_is_refused_until_it_runs_alone(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("label-crate")
    def label_crate(task: RunningTask, session: Session) -> None:
        session.scalars(select(Crate).where(Crate.unpack_task_id == task.id)).one().label = "labelled"

    @registry.task("book-pickup")  # forgot commits_alone=True
    def book_pickup(task: RunningTask, session: Session) -> None:
        with task.outside_transaction():
            pass

    with Session(depot) as session:  # claimed in this order and buffered together: the label, then the call
        labelled = enqueue(session, "label-crate", priority=9)
        session.add(Crate(label="crate of saucers", unpack_task_id=labelled))
        call = enqueue(session, "book-pickup", priority=1)
        session.commit()

    settings = fast_settings(concurrency=1, prefetch=20, group_size=50, group_window=2.0)
    with running_worker(depot, registry, settings):
        wait_for_states(depot, [labelled, call], TaskState.SUCCEEDED)

    with depot.connect() as connection:
        errors = connection.scalars(select(error_table.c.error_type).where(error_table.c.task_id == call))
        assert list(errors) == ["queue_core.TransactionHeldError"]  # then its retry ran first in a group


@pytest.mark.postgres_only  # pg_stat_activity
def test_while_the_call_runs_the_worker_holds_no_transaction(depot: Engine) -> None:
    registry = TaskRegistry()
    calling, answer = threading.Event(), threading.Event()

    @registry.task("book-pickup", commits_alone=True)
    def book_pickup(task: RunningTask, session: Session) -> None:
        with task.short_transaction() as reading:
            reading.scalars(select(Crate).where(Crate.unpack_task_id == task.id)).one()
        with task.outside_transaction():
            calling.set()
            wait_until_set(answer, "the test letting the carrier answer")
        session.scalars(select(Crate).where(Crate.unpack_task_id == task.id)).one().unpack_task_id = None

    _crate_id, task_id = crate_with_task(depot, "book-pickup")
    with running_worker(depot, registry):
        wait_until_set(calling, "the handler calling the carrier")
        pool = depot.pool
        assert isinstance(pool, QueuePool)
        checked_out = pool.checkedout()  # the worker's handlers share this engine's pool
        open_transactions = len(transactions_left_open(depot))
        with depot.connect() as connection:
            row_locks = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
                    " AND l.locktype IN ('tuple', 'transactionid')"
                )
            )
        answer.set()
        wait_for_states(depot, [task_id], TaskState.SUCCEEDED)

    assert (checked_out, open_transactions, row_locks) == (0, 0, 0)  # no connection, transaction or lock
