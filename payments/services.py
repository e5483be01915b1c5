"""The payments context's use cases: plain functions taking the caller's session. None of them commits.

``request_payment`` and ``cancel_payment_for_order`` are what the composition root's reactions call;
the rest serve the HTTP API.
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
from payments.models import Payment, PaymentState
from payments.tasks import charge_payment, refund_payment

CURRENCY = re.compile(r"[A-Z]{3}\Z")
MAX_PAGE = 200


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
    existing = payment_for_order(session, order_id)
    if existing is not None:
        return existing
    payment_id = queue_core.uuid7()
    payment = Payment(
        id=payment_id,
        order_id=order_id,
        amount_cents=amount_cents,
        currency=currency,
        idempotency_key=f"payment-{payment_id}",
        state=PaymentState.PENDING.value,
    )
    try:
        # A savepoint: if another transaction created this order's payment meanwhile, the UNIQUE order_id
        # refuses ours, and our payment and its task vanish together.
        with session.begin_nested():
            payment.processing_task_id = charge_payment.enqueue(session)
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
      a refund task voids its key, since an earlier attempt may have reached the gateway (one that timed
      out, or one running right now: a running task only gets a cancellation request);
    - captured: refunding, with a refund task;
    - anything else, or no payment: nothing to do.

    It never waits for the payment's row lock (``FOR UPDATE NOWAIT``). The charge handler holds that lock
    across the gateway call, and the caller (the order's cancellation) already holds the order's lock,
    which the charge handler takes next when the capture is announced: waiting here would be a deadlock.
    While a charge is at the gateway this raises at once (PostgreSQL's ``LockNotAvailable``, wrapped in
    SQLAlchemy's ``OperationalError``); the caller's whole cancellation rolls back, the API answers 409
    with ``Retry-After: 1``, and the cancellation sent again after the charge is recorded refunds it.
    (SQLite ignores NOWAIT; there one writer at a time keeps the two apart.)
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
        payment.start_void(refund_payment.enqueue(session))
    elif payment.payment_state is PaymentState.CAPTURED:
        payment.start_refund(refund_payment.enqueue(session))
    return payment


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
    limit: int = 50,
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
class TaskPointer:
    """A task a payment points at, with its state now (``None``: the task was pruned)."""

    id: uuid.UUID
    state: queue_core.TaskState | None


@dataclass(frozen=True)
class TrackedPayment:
    """A payment with the tasks working on it: what the API shows."""

    payment: Payment
    charge_task: TaskPointer | None
    refund_task: TaskPointer | None


def with_task_states(session: Session, payments: Sequence[Payment]) -> list[TrackedPayment]:
    """Each payment with the current state of its charge and refund tasks, read in one query."""
    states = queue_core.states_of(
        session, [task_id for p in payments for task_id in (p.processing_task_id, p.refund_task_id)]
    )

    def pointer(task_id: uuid.UUID | None) -> TaskPointer | None:
        return None if task_id is None else TaskPointer(task_id, states.get(task_id))

    return [TrackedPayment(p, pointer(p.processing_task_id), pointer(p.refund_task_id)) for p in payments]
