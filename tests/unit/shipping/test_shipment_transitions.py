"""Shipment's guarded transitions: each change is allowed only from the states the batch flow expects."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from shipping.models import AlreadyDispatched, InvalidTransition, Shipment, ShipmentState

MANIFEST_TASK = uuid.UUID("01900000-0000-7000-8000-00000000f00d")
NOON = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def ready_shipment() -> Shipment:
    return Shipment.for_order(uuid.uuid4(), "NL")


def batched_shipment() -> Shipment:
    shipment = ready_shipment()
    shipment.join_batch(MANIFEST_TASK)
    return shipment


def dispatched_shipment() -> Shipment:
    shipment = batched_shipment()
    shipment.dispatch("MF-CRUNCHY-ARMCHAIR", "NL0001", NOON)
    return shipment


def test_a_new_shipment_is_ready_and_in_no_batch() -> None:
    shipment = ready_shipment()

    assert shipment.shipment_state is ShipmentState.READY
    assert shipment.shipping_task_id is None
    assert shipment.id is not None


def test_a_ready_shipment_joins_a_batch_by_pointing_at_its_task() -> None:
    shipment = batched_shipment()

    assert shipment.shipment_state is ShipmentState.IN_BATCH
    assert shipment.shipping_task_id == MANIFEST_TASK


def test_a_batched_shipment_cannot_join_a_second_batch() -> None:
    shipment = batched_shipment()

    with pytest.raises(InvalidTransition):
        shipment.join_batch(uuid.uuid4())
    assert shipment.shipping_task_id == MANIFEST_TASK


def test_dispatch_records_the_manifest_and_keeps_the_batch_pointer() -> None:
    shipment = dispatched_shipment()

    assert shipment.shipment_state is ShipmentState.DISPATCHED
    assert shipment.manifest_number == "MF-CRUNCHY-ARMCHAIR"
    assert shipment.tracking_number == "NL0001"
    assert shipment.dispatched_at == NOON
    assert shipment.shipping_task_id == MANIFEST_TASK


def test_only_a_batched_shipment_can_be_dispatched() -> None:
    for shipment in (ready_shipment(), dispatched_shipment()):
        with pytest.raises(InvalidTransition):
            shipment.dispatch("MF-WOBBLY-TABLE", "NL0002", NOON)


@pytest.mark.parametrize("make", [ready_shipment, batched_shipment], ids=["ready", "in_batch"])
def test_cancelling_an_undispatched_shipment_takes_it_out_of_its_batch(make) -> None:
    shipment = make()

    shipment.cancel()

    assert shipment.shipment_state is ShipmentState.CANCELLED
    assert shipment.shipping_task_id is None


def test_a_dispatched_shipment_cannot_be_cancelled() -> None:
    shipment = dispatched_shipment()

    with pytest.raises(AlreadyDispatched):
        shipment.cancel()
    assert shipment.shipment_state is ShipmentState.DISPATCHED


def test_already_dispatched_is_an_invalid_transition() -> None:
    assert issubclass(AlreadyDispatched, InvalidTransition)


def test_a_cancelled_shipment_cannot_be_cancelled_again_or_batched() -> None:
    shipment = ready_shipment()
    shipment.cancel()

    with pytest.raises(InvalidTransition):
        shipment.cancel()
    with pytest.raises(InvalidTransition):
        shipment.join_batch(MANIFEST_TASK)


def test_a_batched_shipment_returns_to_ready_without_its_pointer() -> None:
    shipment = batched_shipment()

    shipment.return_to_ready()

    assert shipment.shipment_state is ShipmentState.READY
    assert shipment.shipping_task_id is None


@pytest.mark.parametrize("make", [ready_shipment, dispatched_shipment], ids=["ready", "dispatched"])
def test_only_a_batched_shipment_returns_to_ready(make) -> None:
    with pytest.raises(InvalidTransition):
        make().return_to_ready()


def test_a_dispatched_shipment_may_forget_its_batch_but_a_batched_one_may_not() -> None:
    dispatched = dispatched_shipment()
    dispatched.forget_batch()
    assert dispatched.shipping_task_id is None
    assert dispatched.shipment_state is ShipmentState.DISPATCHED

    batched = batched_shipment()
    with pytest.raises(InvalidTransition):
        batched.forget_batch()
    assert batched.shipping_task_id == MANIFEST_TASK
