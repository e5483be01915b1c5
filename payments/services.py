"""The payments context's use cases: plain functions taking the caller's session. None of them commits.

``request_payment`` and ``cancel_payment_for_order`` are what the composition root's reactions call.
The task handlers call the gateway in three atomic phases (docs/architecture.md, "Remote calls"):
``charge_request`` and ``refund_request`` read what to send, in a short transaction of their own; then,
in the transaction that completes the task, ``payment_charged_by`` and ``payment_refunded_by`` lock the
payment still waiting for that answer, and ``record_charge_outcome``, ``give_up`` and
``record_refund_outcome`` record it. The rest serve the HTTP API.

The two tasks these use cases enqueue are declared here, with what enqueueing them needs; their handlers
(``tasks``) import this module and bind to them, and this module never imports ``tasks``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import queue_core
from payments import events
from payments.gateway_client import Captured, ChargeOutcome, RefundOutcome
from payments.models import VOIDABLE_STATES, Payment, PaymentState
from queue_core import RetryPolicy, TaskDefinition

CURRENCY = re.compile(r"[A-Z]{3}\Z")
DEFAULT_PAGE = 50
MAX_PAGE = 200

# Gateway outages of a few seconds to a minute are ridden out; a longer one fails the payment (and voids
# its key) rather than leave the customer's order waiting without an answer.
CHARGE_RETRY = RetryPolicy(max_attempts=6, base_seconds=0.5, cap_seconds=30)
# A refund must happen however long the gateway is away: a long budget, and the repair function enqueues
# a fresh task if even that is spent.
REFUND_RETRY = RetryPolicy(max_attempts=20, base_seconds=1, cap_seconds=300)
CHARGE = TaskDefinition.declare("payments.charge", queue="payments", retry=CHARGE_RETRY)
REFUND = TaskDefinition.declare("payments.refund", queue="payments", retry=REFUND_RETRY)


def request_payment(session: Session, *, order_id: uuid.UUID, amount_cents: int, currency: str) -> Payment:
    """A pending payment for ``order_id`` with its charge task enqueued; idempotent per order.

    The payment, its idempotency key and its charge task are written in one transaction, so the task
    exists exactly when the payment does. A second call for the same order (a redelivered event, two
    racing reactions) returns the payment the first one made, whatever amount it names.
    """
    if amount_cents <= 0:
        raise ValueError(f"a payment needs a positive amount, not {amount_cents} cents")
    if not CURRENCY.match(currency):
        raise ValueError(f"not an ISO 4217 currency code: {currency!r}")
    payment = Payment.for_order(order_id, amount_cents, currency)
    try:
        # Insert first, in a savepoint: if this order has a payment already (an earlier call, or another
        # transaction's just now), the UNIQUE order_id refuses ours, and our payment and its task vanish
        # together. No lookup beforehand: the first call, by far the common one, costs no extra query.
        with session.begin_nested():
            payment.processing_task_id = CHARGE.enqueue(session)
            session.add(payment)
            session.flush()
    except IntegrityError:
        winner = payment_for_order(session, order_id)
        if winner is None:
            raise
        return winner
    return payment


def cancel_payment_for_order(session: Session, order_id: uuid.UUID) -> Payment | None:
    """Stop the money for a cancelled order, whatever state the payment is in.

    - pending: the charge task is cancelled through the ID on the payment, the payment is cancelled, and
      a refund task voids its key. This holds even while the charge is at the gateway: its answer, when
      it comes, finds no payment waiting for it, and the void gives back what the charge took (or makes
      the gateway refuse it, if the void gets there first);
    - captured: refunding, with a refund task;
    - anything else, or no payment: nothing to do.

    It never waits for the payment's row lock (``FOR UPDATE NOWAIT``). A handler holds that lock only
    while it records the gateway's answer, and then takes the order's lock (through ``PaymentCaptured``),
    which the caller already holds: waiting here could deadlock. In that moment this raises at once
    (PostgreSQL's ``LockNotAvailable``, wrapped in SQLAlchemy's ``OperationalError``); the caller rolls
    its whole transaction back and runs it again a few milliseconds later (``request_session.transaction``
    does that for the API), when the answer is recorded. (SQLite ignores NOWAIT; there one writer at a
    time keeps the two apart.)
    """
    payment = session.scalars(
        select(Payment).where(Payment.order_id == order_id).with_for_update(nowait=True)
    ).one_or_none()
    if payment is None:
        return None
    if payment.payment_state is PaymentState.PENDING:
        if payment.processing_task_id is not None:
            queue_core.cancel(session, payment.processing_task_id)
            payment.processing_task_id = None
        payment.cancel()
        payment.start_void(REFUND.enqueue(session))
    elif payment.payment_state is PaymentState.CAPTURED:
        payment.start_refund(REFUND.enqueue(session))
    return payment


@dataclass(frozen=True)
class ChargeRequest:
    """What the gateway is asked to charge: read in one short transaction, sent outside any."""

    payment_id: uuid.UUID
    idempotency_key: str
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class RefundRequest:
    """What the gateway is asked to give back: the refund's own key and the key of the charge it undoes."""

    idempotency_key: str
    charge_idempotency_key: str


def charge_request(session: Session, task_id: uuid.UUID) -> ChargeRequest | None:
    """What charge task ``task_id`` is to send, or None if no pending payment points at it any more."""
    payment = session.scalars(select(Payment).where(Payment.processing_task_id == task_id)).one_or_none()
    if payment is None or payment.payment_state is not PaymentState.PENDING:
        return None
    return ChargeRequest(payment.id, payment.idempotency_key, payment.amount_cents, payment.currency)


def refund_request(session: Session, task_id: uuid.UUID) -> RefundRequest | None:
    """What refund task ``task_id`` is to send, or None if no payment points at it."""
    payment = session.scalars(select(Payment).where(Payment.refund_task_id == task_id)).one_or_none()
    if payment is None:
        return None
    return RefundRequest(refund_idempotency_key(payment), payment.idempotency_key)


def refund_idempotency_key(payment: Payment) -> str:
    """The key of the one refund (or void) a payment ever asks for: every retry repeats it."""
    return f"{payment.idempotency_key}-refund"


def payment_charged_by(session: Session, task_id: uuid.UUID) -> Payment | None:
    """The payment still waiting for charge task ``task_id``'s answer, locked; None once it was cancelled."""
    return session.scalars(
        select(Payment).where(Payment.processing_task_id == task_id).with_for_update()
    ).one_or_none()


def payment_refunded_by(session: Session, task_id: uuid.UUID) -> Payment | None:
    """The payment waiting for refund task ``task_id``'s answer, locked, or None."""
    return session.scalars(
        select(Payment).where(Payment.refund_task_id == task_id).with_for_update()
    ).one_or_none()


def record_charge_outcome(session: Session, payment: Payment, outcome: ChargeOutcome) -> None:
    """The gateway answered the charge: the payment is captured or declined, and says so (an event)."""
    payment.processing_task_id = None
    if isinstance(outcome, Captured):
        payment.capture(outcome.charge_id)
        events.publish(session, events.PaymentCaptured(order_id=payment.order_id, payment_id=payment.id))
    else:
        payment.decline(outcome.reason)
        events.publish(session, _failed(payment))


def settled_meanwhile(session: Session, payment: Payment, outcome: ChargeOutcome | None) -> None:
    """The gateway answered for a payment that was settled another way meanwhile (by an operator).

    The pointer goes. A capture for a payment that ended without one (failed or cancelled by hand) is
    money the shop must not keep: its key is voided, which refunds it, unless a void is already under
    way. A captured payment needs nothing: the same key, the same charge.
    """
    payment.processing_task_id = None
    ended_without_capture = payment.payment_state in VOIDABLE_STATES and payment.refund_task_id is None
    if isinstance(outcome, Captured) and ended_without_capture:
        payment.start_void(REFUND.enqueue(session))


def give_up(session: Session, payment: Payment, reason: str) -> None:
    """Fail a pending payment for good: clear its charge pointer, void its key, announce PaymentFailed.

    The void is a refund task: a charge that an attempt made after all (it timed out on our side) is given
    back, and one that has not reached the gateway yet is refused when it does.
    """
    payment.processing_task_id = None
    payment.fail(reason)
    payment.start_void(REFUND.enqueue(session))
    events.publish(session, _failed(payment))


def record_refund_outcome(session: Session, payment: Payment, outcome: RefundOutcome) -> None:
    """The gateway refunded the charge (or voided the key): the payment is settled; a refund announced."""
    was_refunding = payment.payment_state is PaymentState.REFUNDING
    payment.refund_task_id = None
    payment.finish_refund(outcome.status)
    if was_refunding:
        events.publish(session, events.PaymentRefunded(order_id=payment.order_id, payment_id=payment.id))


def get_payment(session: Session, payment_id: uuid.UUID) -> Payment | None:
    """The payment with this ID, if any."""
    return session.get(Payment, payment_id)


def payment_for_order(session: Session, order_id: uuid.UUID) -> Payment | None:
    """The payment of ``order_id``, if one was requested."""
    return session.scalars(select(Payment).where(Payment.order_id == order_id)).one_or_none()


def list_payments(
    session: Session,
    *,
    state: PaymentState | None = None,
    being_processed: bool = False,
    limit: int = DEFAULT_PAGE,
    before: uuid.UUID | None = None,
) -> list[Payment]:
    """Payments, newest first by ID, ``limit`` at most (UUIDv7: creation order, to the millisecond).

    ``before`` pages on: the payments created before the one with that ID. ``being_processed`` keeps
    those whose charge or refund task is queued or running: the direct query on the pointers,
    ``processing_task_id IS NOT NULL OR refund_task_id IS NOT NULL``, served by their partial indexes.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    query = select(Payment).order_by(Payment.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Payment.state == state.value)
    if being_processed:
        query = query.where(or_(Payment.processing_task_id.is_not(None), Payment.refund_task_id.is_not(None)))
    if before is not None:
        query = query.where(Payment.id < before)
    return list(session.scalars(query))


@dataclass(frozen=True)
class TrackedPayment:
    """A payment with the tasks working on it: what the API shows."""

    payment: Payment
    charge_task: queue_core.TaskPointer | None
    refund_task: queue_core.TaskPointer | None


def with_task_states(session: Session, payments: Sequence[Payment]) -> list[TrackedPayment]:
    """Each payment with the current state of its charge and refund tasks, read in one query."""
    pointer = queue_core.task_pointers(
        session, [task_id for p in payments for task_id in (p.processing_task_id, p.refund_task_id)]
    )
    return [TrackedPayment(p, pointer(p.processing_task_id), pointer(p.refund_task_id)) for p in payments]


def _failed(payment: Payment) -> events.PaymentFailed:
    return events.PaymentFailed(
        order_id=payment.order_id, payment_id=payment.id, reason=payment.failure_reason or payment.state
    )
