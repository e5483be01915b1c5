"""Cancelling an order always stops the money: a pending charge is cancelled through the ID on the payment
and its key voided; a captured one is refunded, once, however often the refund runs."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from psycopg.errors import LockNotAvailable
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from payments.events import PaymentCaptured, PaymentFailed, PaymentRefunded
from payments.gateway_client import ChargeOutcome, Declined, GatewayClient
from payments.models import Payment, PaymentState
from queue_core import RetryPolicy, TaskRegistry, TaskState, requeue
from queue_core._models import task_table
from tests.integration.payments.conftest import GATEWAY_URL, LosesAnswers, PaymentsDesk, state_of_task
from tests.support.gateway_requests import GATEWAY_API_KEY
from tests.support.inprocess import (
    running_worker,
    transactions_left_open,
    wait_for,
    wait_for_state,
    wait_until_set,
)


def test_cancelling_a_pending_payment_cancels_its_charge_task_through_its_id_and_voids_the_key(
    desk: PaymentsDesk,
) -> None:
    requested = desk.request()
    charge_task = requested.processing_task_id

    cancelled = desk.cancel(requested.order_id)

    assert cancelled is not None
    assert state_of_task(desk, charge_task) is TaskState.CANCELLED
    assert (cancelled.payment_state, cancelled.processing_task_id) == (PaymentState.CANCELLED, None)
    void_task = cancelled.refund_task_id
    assert void_task is not None

    desk.work()

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.refund_task_id) == (PaymentState.CANCELLED, None)
    assert payment.gateway_refund_status == "voided"
    assert state_of_task(desk, void_task) is TaskState.SUCCEEDED
    assert desk.gateway.ledger(requested.id)["charges"] == []  # nothing charged, ever
    # A charge attempt that was still on its way with the key arrives late: it is refused, not captured.
    late = desk.client.charge(
        idempotency_key=payment.idempotency_key, amount_cents=4_200, currency="EUR", reference=str(payment.id)
    )
    assert late == Declined(reason="voided")
    assert desk.recorder.events == []  # the order context already knows: it cancelled


def test_cancelling_after_a_timed_out_attempt_refunds_the_charge_that_happened(desk: PaymentsDesk) -> None:
    desk.client = LosesAnswers(desk, losses=1)
    patient = TaskRegistry().include(desk.registry)
    patient.with_options("payments.charge", retry=RetryPolicy(max_attempts=6, base_seconds=3600))
    requested = desk.request()
    desk.work(patient)  # the first attempt captured, its answer was lost; the retry waits an hour
    assert desk.gateway.statuses(requested.id) == ["captured"]
    assert desk.payment(requested.id).payment_state is PaymentState.PENDING

    desk.cancel(requested.order_id)
    desk.work()

    payment = desk.payment(requested.id)
    assert payment.payment_state is PaymentState.CANCELLED
    assert payment.gateway_refund_status == "refunded"
    assert desk.gateway.statuses(requested.id) == ["refunded"]
    assert state_of_task(desk, requested.processing_task_id) is TaskState.CANCELLED
    assert desk.recorder.events == []


class HoldsTheLine(GatewayClient):
    """Forwards the charge to the real simulator, then waits for the test before answering."""

    def __init__(self, desk: PaymentsDesk) -> None:
        super().__init__(GATEWAY_URL, api_key=GATEWAY_API_KEY, transport=desk.gateway.transport)
        self.at_the_gateway = threading.Event()
        self.answer = threading.Event()

    def charge(self, **request: Any) -> ChargeOutcome:
        outcome = super().charge(**request)
        self.at_the_gateway.set()
        wait_until_set(self.answer, "the test letting the gateway answer")
        return outcome


@pytest.mark.postgres_only  # pg_stat_activity, and a lock another session can try
def test_while_the_charge_is_at_the_gateway_no_transaction_or_lock_is_held_and_a_cancellation_is_final(
    desk: PaymentsDesk,
) -> None:
    slow = HoldsTheLine(desk)
    desk.client = slow
    requested = desk.request()
    charge_task = requested.processing_task_id
    assert charge_task is not None

    with running_worker(desk.engine, desk.registry, session_info=desk.session_info()):
        wait_until_set(slow.at_the_gateway, "the charge reaching the gateway")
        # The gateway has captured and is thinking: the worker holds no transaction and no lock meanwhile.
        assert transactions_left_open(desk.engine) == []
        started = time.monotonic()
        cancelled = desk.cancel(requested.order_id)  # FOR UPDATE NOWAIT: it would raise if the row were held
        assert time.monotonic() - started < 0.5, "cancelling must not wait for the gateway"
        assert cancelled is not None and cancelled.payment_state is PaymentState.CANCELLED
        wait_for(
            lambda: desk.payment(requested.id).gateway_refund_status == "refunded",
            what="the void giving back the charge that was in flight",
        )

        slow.answer.set()  # the answer comes back, and finds nobody waiting for it
        assert wait_for_state(desk.engine, charge_task, TaskState.CANCELLED)

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.processing_task_id, payment.refund_task_id) == (
        PaymentState.CANCELLED,
        None,
        None,
    )
    assert desk.gateway.statuses(requested.id) == ["refunded"]  # one capture, given back
    assert desk.recorder.events == []  # the order context already knows: it cancelled


@pytest.mark.postgres_only  # the lock is PostgreSQL's; SQLite has one writer at a time
def test_a_cancellation_meeting_the_answer_being_recorded_is_refused_at_once_not_kept_waiting(
    desk: PaymentsDesk,
) -> None:
    requested = desk.request()
    with Session(desk.engine) as recording, recording.begin():
        # What the charge handler's last phase holds for a few milliseconds: the payment's row lock.
        recording.scalars(select(Payment).where(Payment.id == requested.id).with_for_update()).one()
        started = time.monotonic()
        with pytest.raises(OperationalError) as refused:
            desk.cancel(requested.order_id)
        assert isinstance(refused.value.orig, LockNotAvailable)
        assert time.monotonic() - started < 0.5, "the cancellation holds the order's lock: it must not wait"
    # The API runs the refused transaction again a few milliseconds later (request_session.transaction).
    assert desk.cancel(requested.order_id) is not None
    assert desk.payment(requested.id).payment_state is PaymentState.CANCELLED


def test_cancelling_a_captured_payment_refunds_it_once(desk: PaymentsDesk) -> None:
    requested = desk.request()
    desk.work()
    desk.recorder.events.clear()

    refunding = desk.cancel(requested.order_id)
    assert refunding is not None and refunding.payment_state is PaymentState.REFUNDING
    refund_task = refunding.refund_task_id
    desk.work()

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.refund_task_id) == (PaymentState.REFUNDED, None)
    assert payment.gateway_refund_status == "refunded"
    assert payment.refunded_at is not None
    assert desk.gateway.statuses(requested.id) == ["refunded"]
    assert desk.recorder.events == [PaymentRefunded(order_id=payment.order_id, payment_id=payment.id)]

    # The refund task delivered again finds no payment; cancelling again does nothing.
    assert refund_task is not None
    with Session(desk.engine) as session, session.begin():
        requeue(session, refund_task)
    desk.cancel(requested.order_id)
    desk.work()
    assert state_of_task(desk, refund_task) is TaskState.DISCARDED
    assert desk.gateway.statuses(requested.id) == ["refunded"]
    assert [type(event) for event in desk.recorder.events] == [PaymentRefunded]


def test_a_refund_asked_twice_under_its_key_gives_back_the_money_once(desk: PaymentsDesk) -> None:
    requested = desk.request()
    desk.work()
    desk.cancel(requested.order_id)
    desk.work()
    payment = desk.payment(requested.id)

    replay = desk.client.refund(
        idempotency_key=f"{payment.idempotency_key}-refund", charge_idempotency_key=payment.idempotency_key
    )

    assert replay.status == "refunded"
    assert desk.gateway.ledger(requested.id)["summary"]["refunded"] == 1


@pytest.mark.parametrize("outcome", ["declined", "failed", "cancelled", "refunded"])
def test_cancelling_a_payment_that_holds_no_money_does_nothing(desk: PaymentsDesk, outcome: str) -> None:
    if outcome == "declined":
        desk.gateway.misbehave(decline_rate=1)
    if outcome == "failed":
        desk.gateway.misbehave(transient_error_rate=1)
    requested = desk.request()
    if outcome in ("cancelled", "refunded"):
        if outcome == "refunded":
            desk.work()
        desk.cancel(requested.order_id)
    desk.work()
    before = desk.payment(requested.id)
    tasks_before = count_tasks(desk)

    again = desk.cancel(requested.order_id)

    assert again is not None and again.payment_state is before.payment_state
    assert before.payment_state.value == outcome
    assert (again.processing_task_id, again.refund_task_id) == (None, None)
    assert count_tasks(desk) == tasks_before


def test_cancelling_an_order_without_a_payment_is_not_an_error(desk: PaymentsDesk) -> None:
    assert desk.cancel(uuid.uuid4()) is None


def test_a_captured_payment_is_announced_once_then_refunded_once(desk: PaymentsDesk) -> None:
    requested = desk.request()
    desk.work()
    desk.cancel(requested.order_id)
    desk.work()
    assert [type(event) for event in desk.recorder.events] == [PaymentCaptured, PaymentRefunded]
    assert not desk.recorder.of_type(PaymentFailed)


def count_tasks(desk: PaymentsDesk) -> int:
    with Session(desk.engine) as session:
        return session.execute(select(func.count()).select_from(task_table)).scalar_one()


@pytest.mark.postgres_only  # the worker runs in a thread beside the test's own writes
def test_a_capture_answered_for_a_payment_failed_by_hand_meanwhile_is_voided_not_kept(
    desk: PaymentsDesk,
) -> None:
    slow = HoldsTheLine(desk)
    desk.client = slow
    requested = desk.request()

    with running_worker(desk.engine, desk.registry, session_info=desk.session_info()):
        wait_until_set(slow.at_the_gateway, "the charge reaching the gateway")
        with Session(desk.engine) as session, session.begin():  # an operator gives up on it by hand
            session.get_one(Payment, requested.id).fail("given up by an operator")
        slow.answer.set()  # the gateway captured: that money must go back
        wait_for(
            lambda: desk.payment(requested.id).gateway_refund_status == "refunded",
            what="the void giving back the capture nobody wanted",
        )

    payment = desk.payment(requested.id)
    assert (payment.payment_state, payment.processing_task_id) == (PaymentState.FAILED, None)
    assert desk.gateway.statuses(requested.id) == ["refunded"]
