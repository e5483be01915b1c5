"""The payments context's task handlers: charge, refund (or void), and repair what a dead task left.

Each handler finds its payment by the task's ID, never by a payload, asks the gateway, and hands the
answer to a use case (``services``, which declares both tasks; it never imports this module). Each is
safe to run any number of times. The charge handler sends the gateway the payment's own idempotency key
on every attempt, and the gateway answers a repeated key with the original charge. The handler's writes
and the task's completion commit together (the worker does that), so a crash anywhere, before or after
the gateway answered, means the whole attempt runs again with the same key: the customer is charged
exactly once.

Money that may have moved is never abandoned: a payment that ends without a capture (the retry budget
spent, the request refused, the order cancelled) gets a refund task that voids its key at the gateway.
The void refunds a charge that a timed-out attempt made after all, and stops one that has not arrived yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from payments import services
from payments.gateway_client import GatewayClient, GatewayError, GatewayRejected
from payments.models import Payment, PaymentState
from queue_core import DanglingReference, Discard, RunningTask, TaskRegistry

# The Session.info key the handlers read the gateway client from; shop/bootstrap.py fills it.
GATEWAY_KEY = "payment_gateway"

registry = TaskRegistry()


def gateway(session: Session) -> GatewayClient:
    """The gateway client the composition root wired into this session."""
    client = session.info.get(GATEWAY_KEY)
    if not isinstance(client, GatewayClient):
        raise RuntimeError(
            f"no GatewayClient in session.info[{GATEWAY_KEY!r}]; the composition root puts it there"
        )
    return client


def refund_idempotency_key(payment: Payment) -> str:
    """The key of the one refund (or void) a payment ever asks for: every retry repeats it."""
    return f"{payment.idempotency_key}-refund"


# Each charge and refund commits alone: its row lock is held while the gateway answers, and must hold up
# nothing else (see queue_core's ``commits_alone``).
@registry.handles(services.CHARGE, commits_alone=True)
def charge_payment(task: RunningTask, session: Session) -> None:
    """Charge the payment that points at this task, once, whatever happened to earlier attempts."""
    # The lock is held across the gateway call, on purpose: nobody else may change the payment while its
    # fate is being decided at the gateway. It is never waited for by a web request: a cancellation that
    # arrives meanwhile takes it with NOWAIT, is refused at once (409, Retry-After: 1) and is sent again;
    # by then the capture is recorded, and the cancellation refunds it. (Waiting would deadlock: the
    # cancellation holds the order, which this handler locks next, through PaymentCaptured.)
    payment = session.scalars(
        select(Payment).where(Payment.processing_task_id == task.id).with_for_update()
    ).one_or_none()
    if payment is None:
        raise Discard(f"no payment points at charge task {task.id} (cancelled, or charged by another task)")
    if payment.payment_state is not PaymentState.PENDING:
        payment.processing_task_id = None  # already settled: nothing to ask the gateway
        return
    try:
        outcome = gateway(session).charge(
            idempotency_key=payment.idempotency_key,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            reference=str(payment.id),
        )
    except GatewayError as error:
        if task.attempt < task.max_attempts:
            raise  # the queue retries with backoff, and the retry sends the same key
        reason = f"gateway unreachable after {task.attempt} attempts: {_describe(error)}"
        services.give_up(session, payment, reason)
        return
    except GatewayRejected as error:
        services.give_up(session, payment, f"gateway refused the charge: {_describe(error)}")
        return
    services.record_charge_outcome(session, payment, outcome)


@registry.handles(services.REFUND, commits_alone=True)
def refund_payment(task: RunningTask, session: Session) -> None:
    """Give back a captured charge, or void the key of a payment that ended without one.

    The gateway's refund is idempotent under its own key and its void is a tombstone under the charge's
    key, so running this twice refunds once.
    """
    payment = session.scalars(
        select(Payment).where(Payment.refund_task_id == task.id).with_for_update()
    ).one_or_none()
    if payment is None:
        raise Discard(f"no payment points at refund task {task.id}")
    # A GatewayError is retried with the same key. A GatewayRejected is too, however pointless that looks:
    # our request is wrong, and giving up would leave money with us; the dead task shows the problem.
    outcome = gateway(session).refund(
        idempotency_key=refund_idempotency_key(payment), charge_idempotency_key=payment.idempotency_key
    )
    services.record_refund_outcome(session, payment, outcome)


def repair_charge_references(session: Session, dangling: Sequence[DanglingReference]) -> None:
    """A pending payment whose charge task is dead, cancelled, expired, discarded or gone is failed.

    This is the last-attempt path for attempts that never reached it (the worker was killed on the last
    attempt, the task was cancelled by hand, a bug kept raising): an exhausted retry budget leaves the
    payment visibly failed and its key voided, never stuck. ``repair_dangling`` hands each payment over
    locked, still pointing at the task, and the task still dead.
    """
    for reference in dangling:
        payment = session.get_one(Payment, reference.primary_key["id"])
        if payment.payment_state is PaymentState.PENDING:
            task_state = reference.task_state or "missing"
            reason = f"charge task {reference.task_id} ended {task_state} without an answer"
            services.give_up(session, payment, reason)
        else:
            payment.processing_task_id = None


def repair_refund_references(session: Session, dangling: Sequence[DanglingReference]) -> None:
    """A payment whose refund task died gets a fresh one: a refund (or void) must eventually happen."""
    for reference in dangling:
        session.get_one(Payment, reference.primary_key["id"]).refund_task_id = refund_payment.enqueue(session)


registry.track_reference(Payment.processing_task_id, repair=repair_charge_references)
registry.track_reference(Payment.refund_task_id, repair=repair_refund_references)


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
