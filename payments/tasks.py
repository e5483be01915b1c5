"""The payments context's task handlers: charge, refund (or void), and repair what a dead task left.

Each handler finds its payment by the task's ID, never by a payload, and talks to the gateway in three
atomic phases (docs/architecture.md, "Remote calls in three phases"):

1. a short transaction of its own reads what to send (``services.charge_request``) and ends;
2. the call goes out holding no transaction, no pooled connection and no row lock
   (``task.outside_transaction`` checks it), with the payment's own idempotency key;
3. the answer is recorded in the transaction that completes the task, on the payment locked only now,
   and only if it still waits for this task; the lease fences that commit, so a worker that lost the
   task while the gateway thought cannot record anything.

A crash anywhere means the whole attempt runs again with the same key, and the gateway answers a repeated
key with the original charge: the customer is charged exactly once. A cancellation never waits for the
gateway: it cancels the payment while the charge is out, and the answer, when it comes, finds nobody
waiting for it (the task ends ``cancelled``).

Money that may have moved is never abandoned: a payment that ends without a capture (the retry budget
spent, the request refused, the order cancelled) gets a refund task that voids its key at the gateway.
The void refunds a charge that a timed-out (or cancelled) attempt made after all, and stops one that has
not arrived yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from payments import services
from payments.gateway_client import ChargeOutcome, GatewayClient, GatewayError, GatewayRejected
from payments.models import Payment, PaymentState
from queue_core import Cancelled, DanglingReference, Discard, RunningTask, TaskRegistry

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


# Commits alone: in a commit group, the transaction of the tasks before it would be open across its call.
@registry.handles(services.CHARGE, commits_alone=True)
def charge_payment(task: RunningTask, session: Session) -> None:
    """Charge the payment that points at this task, once, whatever happened to earlier attempts."""
    with task.short_transaction() as reading:
        request = services.charge_request(reading, task.id)
    if request is None:  # nothing to ask the gateway
        settled = services.payment_charged_by(session, task.id)
        if settled is None:
            raise Discard(f"no payment points at charge task {task.id} (deleted, or charged by another task)")
        settled.processing_task_id = None  # settled another way (by an operator): only the pointer goes
        return
    task.raise_if_cancel_requested()

    outcome: ChargeOutcome | None = None
    failure: str | None = None
    try:
        with task.outside_transaction():
            outcome = gateway(session).charge(
                idempotency_key=request.idempotency_key,
                amount_cents=request.amount_cents,
                currency=request.currency,
                reference=str(request.payment_id),
            )
    except GatewayError as error:
        if task.attempt < task.max_attempts:
            raise  # the queue retries with backoff, and the retry sends the same key
        failure = f"gateway unreachable after {task.attempt} attempts: {_describe(error)}"
    except GatewayRejected as error:
        failure = f"gateway refused the charge: {_describe(error)}"

    payment = services.payment_charged_by(session, task.id)
    if payment is None:
        # Cancelled while the gateway answered: the payment's void gives back whatever this charge took.
        raise Cancelled(f"the payment of charge task {task.id} was cancelled while the gateway answered")
    if payment.payment_state is not PaymentState.PENDING:
        services.settled_meanwhile(session, payment, outcome)  # by an operator, while the gateway answered
    elif outcome is not None:
        services.record_charge_outcome(session, payment, outcome)
    else:
        services.give_up(session, payment, failure or "the charge was not made")


@registry.handles(services.REFUND, commits_alone=True)
def refund_payment(task: RunningTask, session: Session) -> None:
    """Give back a captured charge, or void the key of a payment that ended without one.

    The gateway's refund is idempotent under its own key and its void is a tombstone under the charge's
    key, so running this twice refunds once.
    """
    with task.short_transaction() as reading:
        request = services.refund_request(reading, task.id)
    if request is None:
        raise Discard(f"no payment points at refund task {task.id}")
    # A GatewayError is retried with the same key. A GatewayRejected is too, however pointless that looks:
    # our request is wrong, and giving up would leave money with us; the dead task shows the problem.
    with task.outside_transaction():
        outcome = gateway(session).refund(
            idempotency_key=request.idempotency_key, charge_idempotency_key=request.charge_idempotency_key
        )
    payment = services.payment_refunded_by(session, task.id)
    if payment is None:
        raise Discard(f"no payment points at refund task {task.id} any more")
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
