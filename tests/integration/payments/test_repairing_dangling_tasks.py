"""Nothing stays stuck: a payment pointing at a task that will never succeed is repaired.

A pending payment whose charge task is dead, cancelled or gone is failed like the last attempt fails it
(key voided, PaymentFailed announced); a payment whose refund task died gets a fresh one, since a refund
must eventually happen. The queue finds the rows (``find_dangling``), the payments context mends them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.orm import Session

from payments.events import PaymentFailed, PaymentRefunded
from payments.gateway_client import ChargeOutcome, GatewayClient, RefundOutcome
from payments.models import Payment, PaymentState
from queue_core import DanglingReference, TaskState, cancel, find_dangling, repair_dangling, requeue
from queue_core._models import task_table
from tests.integration.payments.conftest import GATEWAY_URL, PaymentsDesk, state_of_task
from tests.support.domain import recording_session
from tests.support.gateway_requests import GATEWAY_API_KEY


class CardReaderOnFireError(Exception):
    """A bug, not a gateway answer: retried like any failure until the task is dead."""


class BrokenUntilFixed(GatewayClient):
    """Reaches the real simulator only once ``fixed``; until then every call raises a bug's error."""

    def __init__(self, desk: PaymentsDesk) -> None:
        super().__init__(GATEWAY_URL, api_key=GATEWAY_API_KEY, transport=desk.gateway.transport)
        self.fixed = False

    def charge(self, **request: Any) -> ChargeOutcome:
        if not self.fixed:
            raise CardReaderOnFireError("the charge form crashed before reaching the gateway")
        return super().charge(**request)

    def refund(self, **request: Any) -> RefundOutcome:
        if not self.fixed:
            raise CardReaderOnFireError("the refund form crashed before reaching the gateway")
        return super().refund(**request)


def repair(desk: PaymentsDesk) -> list[DanglingReference]:
    """One pass of the periodic repair, in a session wired like the application's; returns the leftovers."""
    with recording_session(desk.engine, desk.recorder, **desk.session_info()) as session:
        return repair_dangling(session, desk.registry.references)


def dangling(desk: PaymentsDesk) -> list[DanglingReference]:
    with Session(desk.engine) as session:
        return find_dangling(session, desk.registry.references)


def test_a_pending_payment_whose_charge_task_died_is_failed_and_its_key_voided(desk: PaymentsDesk) -> None:
    broken = BrokenUntilFixed(desk)
    desk.client = broken
    requested = desk.request()
    desk.work()
    assert state_of_task(desk, requested.processing_task_id) is TaskState.DEAD
    assert desk.payment(requested.id).payment_state is PaymentState.PENDING  # stuck, until repaired
    assert [ref.task_state for ref in dangling(desk)] == ["dead"]

    assert repair(desk) == []

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.processing_task_id) == (PaymentState.FAILED, None)
    assert payment.failure_reason == (
        f"charge task {requested.processing_task_id} ended dead without an answer"
    )
    assert payment.refund_task_id is not None
    assert desk.recorder.events == [
        PaymentFailed(order_id=payment.order_id, payment_id=payment.id, reason=payment.failure_reason)
    ]
    broken.fixed = True
    desk.work()
    assert desk.payment(requested.id).gateway_refund_status == "voided"
    assert desk.gateway.ledger(requested.id)["summary"]["captured"] == 0
    assert dangling(desk) == []


@pytest.mark.parametrize("fate", ["cancelled", "missing"])
def test_a_pending_payment_whose_charge_task_was_cancelled_or_pruned_by_hand_is_failed(
    desk: PaymentsDesk, fate: str
) -> None:
    requested = desk.request()
    charge_task = requested.processing_task_id
    assert charge_task is not None
    with Session(desk.engine) as session, session.begin():
        if fate == "cancelled":
            cancel(session, charge_task)  # an operator, with `shop queue cancel`
        else:
            session.execute(delete(task_table).where(task_table.c.id == charge_task))

    repair(desk)
    desk.work()

    payment = desk.payment(requested.id)
    assert payment.payment_state is PaymentState.FAILED
    assert payment.failure_reason == f"charge task {charge_task} ended {fate} without an answer"
    assert (payment.processing_task_id, payment.refund_task_id) == (None, None)
    assert payment.gateway_refund_status == "voided"
    assert [type(event) for event in desk.recorder.events] == [PaymentFailed]


def test_a_settled_payment_left_pointing_at_a_dead_task_only_lets_go_of_it(desk: PaymentsDesk) -> None:
    requested = desk.request()
    charge_task = requested.processing_task_id
    assert charge_task is not None
    with Session(desk.engine) as session, session.begin():
        session.get_one(Payment, requested.id).capture("ch_SETTLED_BY_HAND")
        cancel(session, charge_task)

    repair(desk)

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.processing_task_id) == (PaymentState.CAPTURED, None)
    assert payment.refund_task_id is None
    assert desk.recorder.events == []


def test_a_repair_leaves_alone_a_payment_that_moved_on_since_it_was_found(desk: PaymentsDesk) -> None:
    requested = desk.request()
    stale = DanglingReference(
        "payments", "processing_task_id", {"id": requested.id}, uuid.uuid4(), task_state="dead"
    )

    with recording_session(desk.engine, desk.recorder, **desk.session_info()) as session:
        repair_dangling(session, desk.registry.references, [stale])

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.processing_task_id) == (
        PaymentState.PENDING,
        requested.processing_task_id,
    )


def test_a_refund_whose_task_died_gets_a_fresh_task_and_happens(desk: PaymentsDesk) -> None:
    requested = desk.request()
    desk.work()
    desk.recorder.events.clear()
    broken = BrokenUntilFixed(desk)
    desk.client = broken
    refunding = desk.cancel(requested.order_id)
    assert refunding is not None
    dead_refund = refunding.refund_task_id
    desk.work()
    assert state_of_task(desk, dead_refund) is TaskState.DEAD
    assert desk.payment(requested.id).payment_state is PaymentState.REFUNDING

    repair(desk)

    fresh_refund = desk.payment(requested.id).refund_task_id
    assert fresh_refund is not None and fresh_refund != dead_refund
    assert state_of_task(desk, fresh_refund) is TaskState.PENDING
    broken.fixed = True
    desk.work()
    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.refund_task_id) == (PaymentState.REFUNDED, None)
    assert desk.gateway.statuses(requested.id) == ["refunded"]
    assert desk.recorder.events == [PaymentRefunded(order_id=payment.order_id, payment_id=payment.id)]


def test_a_repair_leaves_alone_a_payment_whose_dead_charge_task_an_operator_requeued_since_it_was_found(
    desk: PaymentsDesk,
) -> None:
    broken = BrokenUntilFixed(desk)
    desk.client = broken
    requested = desk.request()
    desk.work()
    found = dangling(desk)  # the repair's search...
    assert [ref.task_state for ref in found] == ["dead"]
    with Session(desk.engine) as session, session.begin():  # ...then an operator re-queues the task
        assert requeue(session, found[0].task_id) is TaskState.PENDING

    with recording_session(desk.engine, desk.recorder, **desk.session_info()) as session:
        repair_dangling(session, desk.registry.references, found)  # ...then the repair locks the row

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.processing_task_id, payment.refund_task_id) == (
        PaymentState.PENDING,
        requested.processing_task_id,
        None,
    )
    assert desk.recorder.events == []
    broken.fixed = True
    desk.work()  # the re-queued task charges, as the operator meant
    assert desk.payment(requested.id).payment_state is PaymentState.CAPTURED
    assert desk.gateway.statuses(requested.id) == ["captured"]


def test_a_repair_gives_no_fresh_refund_task_to_a_payment_whose_dead_one_was_requeued_since_it_was_found(
    desk: PaymentsDesk,
) -> None:
    requested = desk.request()
    desk.work()
    broken = BrokenUntilFixed(desk)
    desk.client = broken
    refunding = desk.cancel(requested.order_id)
    assert refunding is not None
    desk.work()
    found = dangling(desk)
    assert [(ref.column, ref.task_state) for ref in found] == [("refund_task_id", "dead")]
    with Session(desk.engine) as session, session.begin():
        requeue(session, found[0].task_id)

    with recording_session(desk.engine, desk.recorder, **desk.session_info()) as session:
        repair_dangling(session, desk.registry.references, found)

    assert desk.payment(requested.id).refund_task_id == refunding.refund_task_id  # no second refund task
    broken.fixed = True
    desk.work()
    assert desk.payment(requested.id).payment_state is PaymentState.REFUNDED
    assert desk.gateway.statuses(requested.id) == ["refunded"]
