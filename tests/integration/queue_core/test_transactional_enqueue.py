"""Promise 1: a task enqueued in the caller's transaction exists if it commits, vanishes if it rolls
back, and is invisible to other connections (and so to workers) until the commit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from queue_core import TaskSpec, enqueue, enqueue_many
from queue_core._claims import ClaimedTask, claim
from queue_core._enqueue import Lineage, current_lineage
from queue_core._models import task_table as tasks
from tests.support.inprocess import wait_for
from tests.support.queue_handlers import registry


@pytest.fixture
def observer(engine: Engine) -> Iterator[Engine]:
    """A second engine that only reads, as a worker on another host would see the database.

    On SQLite it is a plain engine: the queue's engine opens every transaction with BEGIN IMMEDIATE and
    would wait for the writer; a plain WAL reader sees the last committed state without waiting.
    """
    observer = sqlalchemy.create_engine(engine.url)
    yield observer
    observer.dispose()


def count_tasks(observer: Engine, *ids: uuid.UUID) -> int:
    with observer.connect() as connection:
        query = select(func.count()).select_from(tasks)
        if ids:
            query = query.where(tasks.c.id.in_(ids))
        return int(connection.execute(query).scalar_one())


def claim_all(engine: Engine) -> list[ClaimedTask]:
    return claim(
        engine,
        worker_id=uuid.uuid4(),
        lease_token=uuid.uuid4(),
        queues=registry.queues(),
        options={d.name: d.options for d in registry.definitions},
        limit=100,
    )


def test_uncommitted_task_is_invisible_to_other_connections_until_commit(
    engine: Engine, observer: Engine
) -> None:
    with Session(engine) as session:
        task_id = enqueue(session, "test.record")
        session.flush()
        assert count_tasks(observer, task_id) == 0
        session.commit()
    assert count_tasks(observer, task_id) == 1


@pytest.mark.postgres_only
def test_uncommitted_task_cannot_be_claimed_by_a_worker(database_url: str, engine: Engine) -> None:
    with Session(engine) as session:
        task_id = enqueue(session, "test.record")
        session.flush()
        assert claim_all(engine) == []
        session.commit()
    assert [task.id for task in claim_all(engine)] == [task_id]


def test_enqueue_returns_the_id_before_commit_and_it_is_the_committed_rows_id(
    engine: Engine, observer: Engine
) -> None:
    with Session(engine) as session:
        task_id = enqueue(session, "test.record", args={"order": "CRUNCHY-ARMCHAIR"})
        assert isinstance(task_id, uuid.UUID)
        session.commit()
    with observer.connect() as connection:
        row = connection.execute(select(tasks).where(tasks.c.id == task_id)).one()
    assert (row.id, row.name, row.state, row.attempts) == (task_id, "test.record", "pending", 0)
    assert row.args == {"order": "CRUNCHY-ARMCHAIR"}


def test_rolled_back_enqueue_leaves_no_task(engine: Engine, observer: Engine) -> None:
    with Session(engine) as session:
        task_id = enqueue(session, "test.record")
        session.flush()
        session.rollback()
    assert count_tasks(observer, task_id) == 0
    assert count_tasks(observer) == 0
    assert claim_all(engine) == []


def test_enqueue_many_inserts_every_task_in_the_callers_transaction(engine: Engine, observer: Engine) -> None:
    specs = [TaskSpec(name="test.record", args={"n": n}) for n in range(1000)]
    with Session(engine) as session:
        ids = enqueue_many(session, specs)
        session.flush()
        assert count_tasks(observer) == 0
        session.commit()
    assert ids == [spec.id for spec in specs]
    assert len(set(ids)) == 1000
    assert count_tasks(observer, *ids) == 1000


def test_delayed_task_is_not_claimable_before_its_time(engine: Engine) -> None:
    with Session(engine) as session:
        task_id = enqueue(session, "test.record", delay=1.5)
        session.commit()
    committed = time.monotonic()
    assert claim_all(engine) == []
    claimed = wait_for(lambda: claim_all(engine), timeout=15, what="the delayed task becomes claimable")
    waited = time.monotonic() - committed
    assert [task.id for task in claimed] == [task_id]
    assert waited >= 1.3  # the delay, less the moments between the INSERT and the commit
    with engine.connect() as connection:
        row = connection.execute(
            select(tasks.c.created_at, tasks.c.run_at).where(tasks.c.id == task_id)
        ).one()
    assert (row.run_at - row.created_at).total_seconds() == pytest.approx(1.5, abs=0.05)


def test_enqueue_many_stores_each_task_as_enqueue_alone_would(engine: Engine) -> None:
    """On PostgreSQL many rows go as one INSERT of arrays, one row as a plain INSERT: the rows must match."""
    in_two_days = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    specs = [
        TaskSpec(name="pack-crate", args={"crate": "CRUNCHY-ARMCHAIR", "fragile": True}, priority=3),
        TaskSpec(name="pack-crate", queue="fragile", delay=90, max_attempts=2),
        TaskSpec(name="label-crate", run_at=in_two_days, expires_in=dt.timedelta(hours=2)),
        TaskSpec(name="label-crate", args=None, expires_in=30),
    ]
    lineage = Lineage(parent_id=uuid.uuid4(), root_id=uuid.uuid4())
    token = current_lineage.set(lineage)  # as inside a handler: both forms record where tasks came from
    try:
        with Session(engine) as session, session.begin():
            together = enqueue_many(session, specs)
            alone = [enqueue_many(session, [dataclasses.replace(spec, id=uuid.uuid4())])[0] for spec in specs]
    finally:
        current_lineage.reset(token)

    def stored(task_id: uuid.UUID) -> tuple[object, ...]:
        with engine.connect() as connection:
            row = connection.execute(select(tasks).where(tasks.c.id == task_id)).one()
        return (
            row.name, row.queue, row.state, row.priority, row.args, row.attempts, row.max_attempts,
            row.cancel_requested, row.parent_id, row.root_id,
            round((row.run_at - row.created_at).total_seconds()) if row.run_at - row.created_at
            < dt.timedelta(days=1) else row.run_at,
            None if row.expires_at is None else round((row.expires_at - row.created_at).total_seconds()),
        )  # fmt: skip

    assert [stored(task_id) for task_id in together] == [stored(task_id) for task_id in alone]
    assert stored(together[0])[:5] == (
        "pack-crate",
        "default",
        "pending",
        3,
        {"crate": "CRUNCHY-ARMCHAIR", "fragile": True},
    )
    assert stored(together[1])[-2:] == (90, None) and stored(together[3])[-1] == 30
    assert stored(together[2])[-2:] == (in_two_days, 7200)
    assert stored(together[0])[8:10] == (lineage.parent_id, lineage.root_id)
