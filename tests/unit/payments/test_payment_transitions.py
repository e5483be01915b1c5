"""A payment's state changes are guarded by the model: each is allowed from the right states only."""

from __future__ import annotations

import uuid

import pytest

from payments.models import REASON_LENGTH, InvalidTransition, Payment, PaymentState


def payment_in(state: PaymentState) -> Payment:
    payment_id = uuid.uuid4()
    return Payment(
        id=payment_id,
        order_id=uuid.uuid4(),
        state=state.value,
        amount_cents=4_200,
        currency="EUR",
        idempotency_key=f"payment-{payment_id}",
    )


ALL_BUT_PENDING = [state for state in PaymentState if state is not PaymentState.PENDING]


def test_a_pending_payment_is_captured_with_the_gateways_charge_id_and_time() -> None:
    payment = payment_in(PaymentState.PENDING)
    payment.capture("ch_CRUNCHY_ARMCHAIR")
    assert payment.payment_state is PaymentState.CAPTURED
    assert payment.gateway_charge_id == "ch_CRUNCHY_ARMCHAIR"
    assert payment.captured_at is not None and payment.captured_at.tzinfo is not None


def test_a_declined_payment_keeps_the_gateways_reason() -> None:
    payment = payment_in(PaymentState.PENDING)
    payment.decline("insufficient_funds")
    assert payment.payment_state is PaymentState.DECLINED
    assert payment.failure_reason == "declined: insufficient_funds"


def test_a_failure_reason_too_long_for_its_column_is_clipped() -> None:
    payment = payment_in(PaymentState.PENDING)
    payment.fail("the gateway said " + "no " * 400)
    assert payment.payment_state is PaymentState.FAILED
    assert payment.failure_reason is not None and len(payment.failure_reason) == REASON_LENGTH


@pytest.mark.parametrize("state", ALL_BUT_PENDING, ids=str)
@pytest.mark.parametrize("change", ["capture", "decline", "fail", "cancel"])
def test_only_a_pending_payment_can_be_captured_declined_failed_or_cancelled(
    state: PaymentState, change: str
) -> None:
    payment = payment_in(state)
    with pytest.raises(InvalidTransition, match=f"is {state.value}"):
        if change == "cancel":
            payment.cancel()
        else:
            getattr(payment, change)("ch_TWICE")
    assert payment.payment_state is state


def test_a_captured_payment_starts_refunding_with_its_refund_task() -> None:
    payment = payment_in(PaymentState.CAPTURED)
    refund_task = uuid.uuid4()
    payment.start_refund(refund_task)
    assert payment.payment_state is PaymentState.REFUNDING
    assert payment.refund_task_id == refund_task
    assert payment.is_being_processed


@pytest.mark.parametrize("state", [s for s in PaymentState if s is not PaymentState.CAPTURED], ids=str)
def test_only_a_captured_payment_can_start_a_refund(state: PaymentState) -> None:
    payment = payment_in(state)
    with pytest.raises(InvalidTransition):
        payment.start_refund(uuid.uuid4())
    assert payment.refund_task_id is None


@pytest.mark.parametrize("state", [PaymentState.FAILED, PaymentState.CANCELLED], ids=str)
def test_a_failed_or_cancelled_payment_gets_a_void_and_keeps_its_state(state: PaymentState) -> None:
    payment = payment_in(state)
    void_task = uuid.uuid4()
    payment.start_void(void_task)
    assert payment.payment_state is state
    assert payment.refund_task_id == void_task


@pytest.mark.parametrize(
    "state",
    [PaymentState.PENDING, PaymentState.CAPTURED, PaymentState.DECLINED, PaymentState.REFUNDED],
    ids=str,
)
def test_a_payment_that_may_hold_money_or_never_reached_the_gateway_is_not_voided(
    state: PaymentState,
) -> None:
    payment = payment_in(state)
    with pytest.raises(InvalidTransition):
        payment.start_void(uuid.uuid4())


def test_a_payment_never_has_two_refund_tasks() -> None:
    payment = payment_in(PaymentState.CANCELLED)
    first = uuid.uuid4()
    payment.start_void(first)
    with pytest.raises(InvalidTransition, match="already has refund task"):
        payment.start_void(uuid.uuid4())
    assert payment.refund_task_id == first


def test_finishing_a_refund_makes_a_refunding_payment_refunded() -> None:
    payment = payment_in(PaymentState.REFUNDING)
    payment.finish_refund("refunded")
    assert payment.payment_state is PaymentState.REFUNDED
    assert payment.gateway_refund_status == "refunded"
    assert payment.refunded_at is not None


@pytest.mark.parametrize("state", [PaymentState.FAILED, PaymentState.CANCELLED], ids=str)
def test_finishing_a_void_records_the_gateways_answer_and_keeps_the_state(state: PaymentState) -> None:
    payment = payment_in(state)
    payment.finish_refund("voided")
    assert payment.payment_state is state
    assert payment.gateway_refund_status == "voided"
    assert payment.refunded_at is None


@pytest.mark.parametrize(
    "state",
    [PaymentState.PENDING, PaymentState.CAPTURED, PaymentState.DECLINED, PaymentState.REFUNDED],
    ids=str,
)
def test_a_refund_cannot_finish_where_none_was_started(state: PaymentState) -> None:
    payment = payment_in(state)
    with pytest.raises(InvalidTransition, match="no refund to finish"):
        payment.finish_refund("refunded")
    assert payment.payment_state is state
