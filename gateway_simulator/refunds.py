"""Full refunds under their own idempotency key, and the tombstone that stops a late charge.

A refund request first claims its key (``INSERT ... ON CONFLICT DO NOTHING``): a second request with the
key waits for the first to commit and is answered what the first was. Then, for the charge key it names:

- captured: the charge becomes ``refunded`` (a conditional UPDATE, so only one refund ever wins);
- refunded already: the answer is the original refund;
- no charge yet: a ``voided`` charge is written under that key, a tombstone, so a charge request that
  arrives late (a retry of a timed-out charge the merchant gave up on) is refused, never captured;
- declined or voided: there is nothing to refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gateway_simulator.charges import CAPTURED, REFUNDED, VOIDED, IdempotencyKeyReused, new_id, timestamp
from gateway_simulator.database import insert_unless_present
from gateway_simulator.models import Charge, RefundRequest, utc_now

NOTHING_TO_REFUND = "nothing_to_refund"
PENDING = "pending"  # only ever seen inside the transaction that claims the key


@dataclass(frozen=True)
class RefundAnswer:
    """A refund request, the charge it names, and whether an earlier request had recorded the answer."""

    request: RefundRequest
    charge: Charge
    replayed: bool

    @property
    def performed_the_refund(self) -> bool:
        """True for the request whose key refunded the charge (answered 201; the others 200)."""
        return self.request.status == REFUNDED and (
            self.charge.refund_idempotency_key == self.request.idempotency_key
        )


def refund(engine: Engine, idempotency_key: str, charge_idempotency_key: str) -> RefundAnswer:
    """Refund the charge made under ``charge_idempotency_key`` in full, or void it before it happens."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        claimed = insert_unless_present(
            session,
            RefundRequest,
            {
                "idempotency_key": idempotency_key,
                "charge_idempotency_key": charge_idempotency_key,
                "status": PENDING,
                "created_at": utc_now(),
            },
            "idempotency_key",
        )
        request = session.get_one(RefundRequest, idempotency_key)
        if not claimed:
            if request.charge_idempotency_key != charge_idempotency_key:
                raise IdempotencyKeyReused(idempotency_key)
            return RefundAnswer(request, _charge_under(session, charge_idempotency_key), replayed=True)
        request.status = _refund_or_void(session, idempotency_key, charge_idempotency_key)
        session.flush()
        return RefundAnswer(request, _charge_under(session, charge_idempotency_key), replayed=False)


def describe_refund(answer: RefundAnswer) -> dict[str, Any]:
    """The refund request's answer as the API shows it; ``id`` is the refund's, when there is one."""
    refunded = answer.request.status == REFUNDED
    return {
        "id": answer.charge.refund_id if refunded else None,
        "status": answer.request.status,
        "idempotency_key": answer.request.idempotency_key,
        "charge_idempotency_key": answer.request.charge_idempotency_key,
        "charge_id": answer.charge.id,
        "amount_cents": answer.charge.amount_cents if refunded else None,
        "currency": answer.charge.currency if refunded else None,
        "created_at": timestamp(answer.request.created_at),
    }


def _refund_or_void(session: Session, idempotency_key: str, charge_idempotency_key: str) -> str:
    tombstone = {
        "id": new_id("ch"),
        "idempotency_key": charge_idempotency_key,
        "status": VOIDED,
        "created_at": utc_now(),
    }
    if insert_unless_present(session, Charge, tombstone, "idempotency_key"):
        return VOIDED
    refunded = session.execute(
        update(Charge)
        .where(Charge.idempotency_key == charge_idempotency_key, Charge.status == CAPTURED)
        .values(
            status=REFUNDED,
            refund_id=new_id("re"),
            refund_idempotency_key=idempotency_key,
            refunded_at=utc_now(),
        )
        .returning(Charge.id)
        .execution_options(synchronize_session=False)
    ).first()
    if refunded is not None:
        return REFUNDED
    charge = _charge_under(session, charge_idempotency_key)
    return REFUNDED if charge.status == REFUNDED else NOTHING_TO_REFUND


def _charge_under(session: Session, idempotency_key: str) -> Charge:
    # populate_existing: the UPDATE above went around the identity map.
    statement = select(Charge).where(Charge.idempotency_key == idempotency_key)
    return session.scalars(statement.execution_options(populate_existing=True)).one()
