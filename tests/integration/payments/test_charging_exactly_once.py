"""The customer is charged exactly once, whatever happens between us and the gateway.

Each test drives a real worker and the real gateway simulator, and asserts on the simulator's ledger
(``GET /v1/ledger?reference=<payment id>``): one captured charge, never two, and none at all when the
payment ended without one.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from payments import services, tasks
from payments.events import PaymentCaptured, PaymentFailed
from payments.models import Payment, PaymentState
from queue_core import TaskState, requeue
from tests.integration.payments.conftest import LosesAnswers, PaymentsDesk, running_task, state_of_task
from tests.support.inprocess import error_rows, task_row


def assert_captured_once(desk: PaymentsDesk, payment_id: uuid.UUID) -> Payment:
    payment = desk.payment(payment_id)
    assert payment.payment_state is PaymentState.CAPTURED
    assert payment.processing_task_id is None
    [charge] = desk.gateway.ledger(payment_id)["charges"]
    assert charge["status"] == "captured"
    assert charge["idempotency_key"] == payment.idempotency_key
    assert payment.gateway_charge_id == charge["id"]
    assert desk.recorder.events == [PaymentCaptured(order_id=payment.order_id, payment_id=payment.id)]
    return payment


def test_a_payment_is_captured_once_and_announced(desk: PaymentsDesk) -> None:
    requested = desk.request(amount_cents=12_999, currency="GBP")
    assert requested.idempotency_key == f"payment-{requested.id}"
    assert requested.processing_task_id is not None

    desk.work()

    payment = assert_captured_once(desk, requested.id)
    assert payment.captured_at is not None
    assert state_of_task(desk, requested.processing_task_id) is TaskState.SUCCEEDED
    assert desk.gateway.ledger(requested.id)["summary"]["captured_amount_cents"] == 12_999


def test_a_retry_after_a_transient_error_charges_exactly_once(desk: PaymentsDesk) -> None:
    desk.gateway.misbehave(transient_error_rate=0.5)
    desk.gateway.rolls.script = [0.1]  # the first charge request meets a 503; the rest go through
    requested = desk.request()

    result = desk.drain(tasks.registry, advance=services.CHARGE_RETRY.cap_seconds)  # the production backoff

    assert_captured_once(desk, requested.id)
    assert [run.outcome for run in result.runs] == ["retrying", "succeeded"]
    assert "GatewayUnavailable: POST /v1/charges answered 503" in str(result.failures[0].error)


def test_a_timeout_after_the_charge_happened_is_retried_with_the_same_key_and_finds_it(
    desk: PaymentsDesk,
) -> None:
    lossy = LosesAnswers(desk, losses=1)
    desk.client = lossy
    requested = desk.request()

    desk.work()

    assert lossy.charges_sent == 2  # the retry asked again, and the gateway replayed the original charge
    assert_captured_once(desk, requested.id)
    assert requested.processing_task_id is not None
    [error] = error_rows(desk.engine, requested.processing_task_id)
    assert error["error_type"] == "payments.gateway_client.GatewayTimeout"


def test_a_timeout_before_the_charge_happened_is_retried_and_charges_once(desk: PaymentsDesk) -> None:
    desk.gateway.misbehave(timeout_rate=0.5)
    # First request: no transient error, a timeout, and its coin says nothing was recorded (a real 504).
    desk.gateway.rolls.script = [0.99, 0.1, 0.75]
    requested = desk.request()

    desk.work()

    assert_captured_once(desk, requested.id)
    assert requested.processing_task_id is not None
    [error] = error_rows(desk.engine, requested.processing_task_id)
    assert error["error_type"] == "payments.gateway_client.GatewayTimeout"
    assert "504" in error["message"]


def test_a_duplicate_delivery_of_a_finished_charge_task_charges_nothing_more(desk: PaymentsDesk) -> None:
    requested = desk.request()
    desk.work()
    charge_task = requested.processing_task_id
    assert charge_task is not None
    first = assert_captured_once(desk, requested.id)

    with Session(desk.engine) as session, session.begin():
        requeue(session, charge_task)  # the same task delivered again
    desk.work()

    assert state_of_task(desk, charge_task) is TaskState.DISCARDED  # no payment points at it any more
    again = assert_captured_once(desk, requested.id)
    assert again.gateway_charge_id == first.gateway_charge_id


def test_a_crash_between_the_gateways_answer_and_the_commit_is_retried_into_one_charge(
    desk: PaymentsDesk,
) -> None:
    requested = desk.request()
    charge_task = requested.processing_task_id
    assert charge_task is not None

    # The first run reaches the gateway, which captures; then the process dies before the commit.
    with Session(desk.engine, info=desk.session_info()) as session:
        session.begin()
        tasks.charge_payment.handler(running_task(desk.engine, charge_task), session)
        session.rollback()
    assert desk.gateway.statuses(requested.id) == ["captured"]
    unchanged = desk.payment(requested.id)
    assert (unchanged.payment_state, unchanged.processing_task_id) == (PaymentState.PENDING, charge_task)
    desk.recorder.events.clear()  # announced in the transaction that rolled back: never delivered

    desk.work()  # the real retry, with the same key

    assert_captured_once(desk, requested.id)
    assert state_of_task(desk, charge_task) is TaskState.SUCCEEDED


def test_a_declined_charge_fails_the_payment_with_the_gateways_reason(desk: PaymentsDesk) -> None:
    desk.gateway.misbehave(decline_rate=1)
    requested = desk.request()

    desk.work()

    payment = desk.payment(requested.id)
    assert payment.payment_state is PaymentState.DECLINED
    assert payment.failure_reason == "declined: insufficient_funds"
    assert (payment.processing_task_id, payment.refund_task_id) == (None, None)  # a decline is final
    assert desk.recorder.events == [
        PaymentFailed(order_id=payment.order_id, payment_id=payment.id, reason="declined: insufficient_funds")
    ]
    assert desk.gateway.statuses(requested.id) == ["declined"]


def test_an_exhausted_retry_budget_fails_the_payment_visibly_and_voids_its_key(desk: PaymentsDesk) -> None:
    desk.gateway.misbehave(transient_error_rate=1)
    requested = desk.request()
    charge_task = requested.processing_task_id
    assert charge_task is not None

    result = desk.drain(tasks.registry, advance=services.CHARGE_RETRY.cap_seconds)  # the production backoff

    payment = desk.payment(requested.id)
    assert payment.payment_state is PaymentState.FAILED
    assert payment.failure_reason is not None
    assert payment.failure_reason.startswith("gateway unreachable after 6 attempts: GatewayUnavailable")
    assert payment.processing_task_id is None
    # The last attempt recorded the failure and so succeeded: the task is not left dead and dangling.
    assert [run.outcome for run in result.of(charge_task)] == ["retrying"] * 5 + ["succeeded"]
    assert (payment.refund_task_id, payment.gateway_refund_status) == (None, "voided")
    assert desk.gateway.charge_under(payment.idempotency_key) is not None  # the tombstone
    assert desk.gateway.ledger(requested.id)["summary"]["captured"] == 0
    assert desk.recorder.events == [
        PaymentFailed(order_id=payment.order_id, payment_id=payment.id, reason=payment.failure_reason)
    ]


def test_a_charge_that_happened_behind_timeouts_is_refunded_when_the_budget_is_spent(
    desk: PaymentsDesk,
) -> None:
    desk.client = LosesAnswers(desk, losses=6)  # every answer lost, though the first one captured
    requested = desk.request()

    desk.work()

    payment = desk.payment(requested.id)
    assert payment.payment_state is PaymentState.FAILED
    assert payment.failure_reason is not None and "6 attempts: GatewayTimeout" in payment.failure_reason
    assert payment.gateway_refund_status == "refunded"
    assert desk.gateway.statuses(requested.id) == ["refunded"]
    assert [type(event) for event in desk.recorder.events] == [PaymentFailed]


def test_a_charge_the_gateway_refuses_fails_at_once_without_retrying(desk: PaymentsDesk) -> None:
    requested = desk.request(amount_cents=100_000_000)  # more than the gateway's amount field holds
    charge_task = requested.processing_task_id
    assert charge_task is not None

    desk.work()

    payment = desk.payment(requested.id)
    assert payment.payment_state is PaymentState.FAILED
    assert payment.failure_reason is not None
    assert payment.failure_reason.startswith("gateway refused the charge: GatewayRejected")
    assert task_row(desk.engine, charge_task)["attempts"] == 1
    assert payment.gateway_refund_status == "voided"
    assert [type(event) for event in desk.recorder.events] == [PaymentFailed]


def test_a_payment_settled_before_its_charge_task_ran_is_not_charged(desk: PaymentsDesk) -> None:
    requested = desk.request()
    with Session(desk.engine) as session, session.begin():
        payment = session.get_one(Payment, requested.id)
        payment.capture("ch_SETTLED_BY_HAND")  # e.g. reconciled by an operator; the pointer is still set

    desk.work()

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.processing_task_id) == (PaymentState.CAPTURED, None)
    assert desk.gateway.ledger(requested.id)["charges"] == []
    assert desk.recorder.events == []
