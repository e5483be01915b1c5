"""The provider's books, as a merchant's reconciliation (or an end-to-end test) reads them.

"Exactly one successful charge per paid order" is checked here: filter by the merchant's payment
reference and count the captured charges. ``captured_amount_cents`` is the money still captured: a
refunded charge no longer counts.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway_simulator.charges import CAPTURED, DECLINED, REFUNDED, VOIDED, describe_charge
from gateway_simulator.models import Charge

STATUSES = (CAPTURED, REFUNDED, DECLINED, VOIDED)


def ledger(engine: Engine, reference: str | None = None) -> dict[str, Any]:
    """Every charge (or those with ``reference``), oldest first, and their totals."""
    statement = select(Charge).order_by(Charge.created_at, Charge.id)
    if reference is not None:
        statement = statement.where(Charge.reference == reference)
    with Session(engine) as session, session.begin():
        charges = list(session.scalars(statement))
        summary: dict[str, int] = {status: 0 for status in STATUSES}
        for charge in charges:
            summary[charge.status] += 1
        summary["captured_amount_cents"] = sum(c.amount_cents or 0 for c in charges if c.status == CAPTURED)
        return {"charges": [describe_charge(charge) for charge in charges], "summary": summary}
