"""Dispatchers running at once never put a shipment in two batches, and never create an empty manifest.

On PostgreSQL the batch query takes its rows ``FOR UPDATE SKIP LOCKED``: a second dispatcher that selects
while the first has not committed skips the first one's shipments instead of waiting for them or taking
them again. (SQLite takes one writer at a time, so there is no "at once" to test there.)
"""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from queue_core._models import task_table
from shipping import services
from shipping.models import Shipment, ShipmentState
from tests.integration.shipping.conftest import load, ready_shipments
from tests.support.domain import EventRecorder
from tests.support.inprocess import DEADLINE_SECONDS

pytestmark = pytest.mark.postgres_only


def manifest_task_ids(engine: Engine) -> set[uuid.UUID]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(task_table.c.id).where(task_table.c.name == "shipping.send_manifest")
            ).scalars()
        )


def shipments_per_task(engine: Engine) -> dict[uuid.UUID, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Shipment.shipping_task_id, func.count())
            .where(Shipment.shipping_task_id.is_not(None))
            .group_by(Shipment.shipping_task_id)
        ).all()
    return {task_id: count for task_id, count in rows if task_id is not None}


def test_a_second_dispatcher_selecting_before_the_first_commits_takes_nothing_and_enqueues_nothing(
    engine: Engine, recorder: EventRecorder
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 4)

    with Session(engine) as first, Session(engine) as second:
        first_batch = services.dispatch_ready_shipments(first)
        # first's rows are locked: skipped
        second_batch = services.dispatch_ready_shipments(second)
        first.commit()
        second.commit()

    assert first_batch is not None
    assert second_batch is None
    assert manifest_task_ids(engine) == {first_batch}
    assert {s.shipping_task_id for s in load(engine, shipment_ids)} == {first_batch}


def test_two_dispatchers_at_once_take_disjoint_batches(engine: Engine, recorder: EventRecorder) -> None:
    shipment_ids = ready_shipments(engine, recorder, 4)

    with Session(engine) as first, Session(engine) as second:
        first_batch = services.dispatch_ready_shipments(first, limit=2)
        second_batch = services.dispatch_ready_shipments(second, limit=2)
        second.commit()
        first.commit()

    shipments = load(engine, shipment_ids)
    assert [s.shipping_task_id for s in shipments] == [first_batch, first_batch, second_batch, second_batch]
    assert manifest_task_ids(engine) == {first_batch, second_batch}


def test_dispatchers_in_many_threads_never_share_a_shipment_or_leave_an_empty_task(
    engine: Engine, recorder: EventRecorder
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 25)
    dispatchers = 4
    # Every dispatcher selects and enqueues, then waits for all the others to have done so too, and only
    # then commits: each round, all of them select before any of them commits. A dispatcher that waited
    # for another's locks instead of skipping them would never reach the barrier (BrokenBarrierError).
    barrier = threading.Barrier(dispatchers, timeout=DEADLINE_SECONDS)
    formed: list[uuid.UUID | None] = []
    failures: list[BaseException] = []

    def dispatcher() -> None:
        try:
            for _ in range(4):
                with Session(engine) as session:
                    formed.append(services.dispatch_ready_shipments(session, limit=3))
                    barrier.wait()
                    session.commit()
                barrier.wait()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=dispatcher) for _ in range(dispatchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS * 2)
    assert not failures, failures

    batches = [task_id for task_id in formed if task_id is not None]
    per_task = shipments_per_task(engine)
    assert len(batches) == len(set(batches))
    assert manifest_task_ids(engine) == set(batches) == set(per_task)  # no task without shipments
    assert all(1 <= count <= 3 for count in per_task.values())
    assert sum(per_task.values()) == 25
    assert {s.shipment_state for s in load(engine, shipment_ids)} == {ShipmentState.IN_BATCH}
