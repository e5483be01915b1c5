"""The batch: every ready shipment points at ONE manifest task, which sends them all under one manifest."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from queue_core import TaskRegistry, TaskState, state_of
from queue_core._models import task_table
from shipping import services
from shipping.events import ShipmentDispatched
from shipping.models import Shipment, ShipmentState
from shop.bootstrap import session_info
from tests.integration.shipping.conftest import dispatch, load, ready_shipments
from tests.support.domain import EventRecorder, recording_session
from tests.support.inprocess import run_until_idle, task_row


def manifest_tasks(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(task_table)
                .where(task_table.c.name == "shipping.send_manifest")
            ).scalar_one()
        )


def test_ready_shipments_all_point_at_one_manifest_task_that_carries_no_args(
    engine: Engine, recorder: EventRecorder
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 5)

    task_id = dispatch(engine, recorder)

    assert task_id is not None
    assert manifest_tasks(engine) == 1
    task = task_row(engine, task_id)
    assert task["name"] == "shipping.send_manifest"
    assert task["queue"] == "shipping"
    assert task["args"] is None
    shipments = load(engine, shipment_ids)
    assert {s.shipping_task_id for s in shipments} == {task_id}
    assert {s.shipment_state for s in shipments} == {ShipmentState.IN_BATCH}


def test_nothing_ready_enqueues_no_empty_manifest_task(engine: Engine, recorder: EventRecorder) -> None:
    assert dispatch(engine, recorder) is None
    assert manifest_tasks(engine) == 0


def test_the_manifest_task_dispatches_its_whole_batch_under_one_manifest_number(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 4)
    task_id = dispatch(engine, recorder)
    assert task_id is not None

    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))

    with engine.connect() as connection:
        assert state_of(connection, task_id) is TaskState.SUCCEEDED
    shipments = load(engine, shipment_ids)
    assert {s.shipment_state for s in shipments} == {ShipmentState.DISPATCHED}
    assert len({s.manifest_number for s in shipments}) == 1
    assert shipments[0].manifest_number is not None
    assert len({s.tracking_number for s in shipments}) == 4
    assert all(s.dispatched_at is not None for s in shipments)
    # The batch pointer is kept: the record of which shipments left together.
    assert {s.shipping_task_id for s in shipments} == {task_id}
    dispatched = recorder.of_type(ShipmentDispatched)
    assert sorted(dispatched, key=lambda e: e.shipment_id) == sorted(
        (ShipmentDispatched(s.order_id, s.id, s.tracking_number or "") for s in shipments),
        key=lambda e: e.shipment_id,
    )


def test_shipments_created_while_a_batch_is_pending_go_into_the_next_batch(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    first_wave = ready_shipments(engine, recorder, 3)
    first_batch = dispatch(engine, recorder)
    latecomers = ready_shipments(engine, recorder, 2)

    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))

    assert {s.shipment_state for s in load(engine, first_wave)} == {ShipmentState.DISPATCHED}
    assert {s.shipment_state for s in load(engine, latecomers)} == {ShipmentState.READY}
    assert {s.shipping_task_id for s in load(engine, latecomers)} == {None}

    second_batch = dispatch(engine, recorder)
    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))

    assert second_batch not in (None, first_batch)
    late = load(engine, latecomers)
    assert {s.shipment_state for s in late} == {ShipmentState.DISPATCHED}
    assert {s.shipping_task_id for s in late} == {second_batch}
    assert len(recorder.of_type(ShipmentDispatched)) == 5


def test_a_batch_takes_the_oldest_ready_shipments_up_to_its_limit(
    engine: Engine, recorder: EventRecorder
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 5)

    first = dispatch(engine, recorder, limit=3)
    second = dispatch(engine, recorder, limit=3)

    shipments = load(engine, shipment_ids)
    assert [s.shipping_task_id for s in shipments] == [first, first, first, second, second]
    assert dispatch(engine, recorder, limit=3) is None


def test_creating_a_shipment_twice_for_one_order_returns_the_first(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = uuid.uuid4()
    with recording_session(engine, recorder) as session:
        first = services.create_shipment(session, order_id=order_id, destination_country="NL")
        session.flush()
        first_id = first.id
    with recording_session(engine, recorder) as session:
        again = services.create_shipment(session, order_id=order_id, destination_country="DE")
        assert again.id == first_id
        assert again.destination_country == "NL"
        assert again.shipment_state is ShipmentState.READY

    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Shipment)) == 1


def test_a_batch_lists_every_shipment_pointing_at_its_task(engine: Engine, recorder: EventRecorder) -> None:
    shipment_ids = ready_shipments(engine, recorder, 3)
    task_id = dispatch(engine, recorder)
    stragglers = ready_shipments(engine, recorder, 1)

    with Session(engine) as session:
        assert task_id is not None
        assert [s.id for s in services.batch(session, task_id)] == shipment_ids
        assert services.batch(session, uuid.uuid4()) == []
        in_batch = services.list_shipments(session, state=ShipmentState.IN_BATCH)
        assert [s.id for s in in_batch] == list(reversed(shipment_ids))
        assert [s.id for s in services.list_shipments(session, state=ShipmentState.READY)] == stragglers
        newest_two = services.list_shipments(session, limit=2)
        older = services.list_shipments(session, limit=2, before=newest_two[-1].id)
        assert [s.id for s in newest_two + older] == list(reversed(shipment_ids + stragglers))
        by_task = services.list_shipments(session, shipping_task_id=task_id)
        assert {s.id for s in by_task} == set(shipment_ids)
