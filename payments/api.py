"""The payments context's HTTP API (a flask-smorest blueprint): load with marshmallow -> service -> dump.

Read-only: payments are requested and cancelled by reactions to the orders context's events, never by
a client. Unknown IDs, and IDs that are not UUIDs, are answered 404.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from payments import services
from payments.models import Payment
from payments.schemas import PaymentListQuerySchema, PaymentPageSchema, PaymentSchema
from request_session import db

blp = Blueprint("payments", __name__, url_prefix="/api", description="payments")


@blp.get("/payments/<uuid:payment_id>")
@blp.response(200, PaymentSchema)
@blp.alt_response(404, description="No payment has this ID.")
def get_payment(payment_id: uuid.UUID) -> services.TrackedPayment:
    """A payment, with the state of the tasks charging or refunding it."""
    return _tracked(services.get_payment(db(), payment_id), f"no payment {payment_id}")


@blp.get("/orders/<uuid:order_id>/payment")
@blp.response(200, PaymentSchema)
@blp.alt_response(404, description="No payment was requested for this order (or no such order).")
def get_order_payment(order_id: uuid.UUID) -> services.TrackedPayment:
    """The payment of an order, once the order passed screening and its payment was requested."""
    return _tracked(services.payment_for_order(db(), order_id), f"no payment for order {order_id}")


@blp.get("/payments")
@blp.arguments(PaymentListQuerySchema(), location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, PaymentPageSchema)
def list_payments(**query: Any) -> dict[str, Any]:
    """Payments, newest first; ``being_processed=true`` keeps those with a charge or refund task open."""
    session = db()
    payments = services.list_payments(session, **query)
    full_page = len(payments) == query["limit"]
    return {
        "payments": services.with_task_states(session, payments),
        "next_before": payments[-1].id if full_page else None,
    }


def _tracked(payment: Payment | None, missing: str) -> services.TrackedPayment:
    if payment is None:
        _not_found(missing)
    [tracked] = services.with_task_states(db(), [payment])
    return tracked


def _not_found(message: str) -> NoReturn:
    abort(404, message=message)
    raise AssertionError("unreachable: flask_smorest.abort raises (it is untyped, so mypy cannot know)")
