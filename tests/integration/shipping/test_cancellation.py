"""Withdrawing a shipment: possible until the carrier has it; its batch goes on without it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence

import pytest
from psycopg.errors import LockNotAvailable
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from queue_core import TaskRegistry, TaskState, state_of
from shipping import carrier, services
from shipping.events import ShipmentDispatched
from shipping.models import AlreadyDispatched, Shipment, ShipmentState
from shop.bootstrap import session_info
from tests.integration.shipping.conftest import dispatch, load, ready_shipments
from tests.support.domain import EventRecorder, recording_session
from tests.support.inprocess import run_until_idle, running_worker, wait_for, wait_until_set


def cancel_order(engine: Engine, recorder: EventRecorder, shipment_id: uuid.UUID) -> None:
    [shipment] = load(engine, [shipment_id])
    with recording_session(engine, recorder) as session:
        services.cancel_shipment_for_order(session, shipment.order_id)


def test_cancelling_a_ready_shipment_keeps_it_out_of_every_batch(
    engine: Engine, recorder: EventRecorder
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)

    cancel_order(engine, recorder, shipment_id)

    [shipment] = load(engine, [shipment_id])
    assert shipment.shipment_state is ShipmentState.CANCELLED
    assert dispatch(engine, recorder) is None


def test_a_withdrawn_shipment_is_not_sent_while_the_rest_of_its_batch_is(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    armchair, table, lamp = ready_shipments(engine, recorder, 3)
    task_id = dispatch(engine, recorder)

    cancel_order(engine, recorder, table)
    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))

    sent_armchair, withdrawn_table, sent_lamp = load(engine, [armchair, table, lamp])
    assert withdrawn_table.shipment_state is ShipmentState.CANCELLED
    assert withdrawn_table.shipping_task_id is None
    assert withdrawn_table.tracking_number is None
    assert {sent_armchair.shipment_state, sent_lamp.shipment_state} == {ShipmentState.DISPATCHED}
    assert {sent_armchair.shipping_task_id, sent_lamp.shipping_task_id} == {task_id}
    assert {e.shipment_id for e in recorder.of_type(ShipmentDispatched)} == {armchair, lamp}


def test_a_batch_whose_every_shipment_was_withdrawn_ends_quietly_sending_nothing(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 2)
    task_id = dispatch(engine, recorder)
    assert task_id is not None
    for shipment_id in shipment_ids:
        cancel_order(engine, recorder, shipment_id)

    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))

    with engine.connect() as connection:
        assert state_of(connection, task_id) is TaskState.SUCCEEDED
    assert recorder.events == []


def test_a_dispatched_shipment_refuses_to_be_cancelled_and_stays_dispatched(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)
    dispatch(engine, recorder)
    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))

    with pytest.raises(AlreadyDispatched):
        cancel_order(engine, recorder, shipment_id)

    [shipment] = load(engine, [shipment_id])
    assert shipment.shipment_state is ShipmentState.DISPATCHED
    assert shipment.tracking_number is not None


def test_cancelling_twice_or_for_an_order_without_a_shipment_does_nothing(
    engine: Engine, recorder: EventRecorder
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)
    cancel_order(engine, recorder, shipment_id)

    cancel_order(engine, recorder, shipment_id)
    with recording_session(engine, recorder) as session:
        assert services.cancel_shipment_for_order(session, uuid.uuid4()) is None

    [shipment] = load(engine, [shipment_id])
    assert shipment.shipment_state is ShipmentState.CANCELLED


class CarrierOnThePhone:
    """The real carrier's booking, held open until the test lets it answer (a manifest in flight)."""

    def __init__(self) -> None:
        self.booking = threading.Event()
        self.answer = threading.Event()

    def __call__(self, manifest_key: str, parcels: Sequence[carrier.Parcel]) -> carrier.Manifest:
        self.booking.set()
        wait_until_set(self.answer, "the test letting the carrier answer")
        return BOOK_MANIFEST(manifest_key, parcels)


BOOK_MANIFEST = carrier.book_manifest


@pytest.mark.postgres_only  # SQLite has one writer at a time: there the two never overlap
def test_a_shipment_withdrawn_while_its_manifest_is_with_the_carrier_is_left_out_of_the_booking(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_the_phone = CarrierOnThePhone()
    monkeypatch.setattr(carrier, "book_manifest", on_the_phone)
    armchair, table = ready_shipments(engine, recorder, 2)
    task_id = dispatch(engine, recorder)
    assert task_id is not None

    with running_worker(engine, manual_registry, session_info=session_info(react=recorder)):
        wait_until_set(on_the_phone.booking, "the manifest task calling the carrier")
        started = time.monotonic()
        cancel_order(engine, recorder, table)  # FOR UPDATE NOWAIT: it would raise if the row were held
        assert time.monotonic() - started < 0.5, "cancelling must not wait for the carrier"

        on_the_phone.answer.set()
        wait_for(
            lambda: load(engine, [armchair])[0].shipment_state is ShipmentState.DISPATCHED,
            what="the manifest in flight being recorded",
        )
        with engine.connect() as connection:
            assert state_of(connection, task_id) is TaskState.SUCCEEDED

    sent_armchair, withdrawn_table = load(engine, [armchair, table])
    assert sent_armchair.shipping_task_id == task_id
    assert (withdrawn_table.shipment_state, withdrawn_table.tracking_number) == (
        ShipmentState.CANCELLED,
        None,
    )
    assert [e.shipment_id for e in recorder.of_type(ShipmentDispatched)] == [armchair]
    with pytest.raises(AlreadyDispatched):  # the armchair left with the carrier: too late for it
        cancel_order(engine, recorder, armchair)


@pytest.mark.postgres_only  # the lock is PostgreSQL's; SQLite has one writer at a time
def test_a_cancellation_meeting_the_booking_being_recorded_is_refused_at_once_not_kept_waiting(
    engine: Engine, recorder: EventRecorder
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)
    with Session(engine) as recording, recording.begin():
        # What the manifest handler's last phase holds for a few milliseconds: its shipments' row locks.
        recording.get_one(Shipment, shipment_id, with_for_update=True)
        started = time.monotonic()
        with pytest.raises(OperationalError) as refused:
            cancel_order(engine, recorder, shipment_id)
        assert isinstance(refused.value.orig, LockNotAvailable)
        assert time.monotonic() - started < 0.5, "the cancellation holds the order's lock: it must not wait"
    # The API runs the refused transaction again a few milliseconds later (request_session.transaction).
    cancel_order(engine, recorder, shipment_id)
    assert load(engine, [shipment_id])[0].shipment_state is ShipmentState.CANCELLED
