"""What the payments API shows and accepts, as marshmallow schemas.

A payment is shown with the tasks working on it (``charge_task``, ``refund_task``: ID and current
state), so a client sees what is being processed without asking the queue. The idempotency key is shown
as it is (``payment-<payment id>``): it holds nothing secret, and it is what the gateway's ledger lists.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from payments.models import PaymentState
from payments.services import DEFAULT_PAGE, MAX_PAGE
from queue_core import TaskState


class PaymentTaskPointerOut(Schema):
    """A task a payment points at (its charge or its refund), and its state now: null once pruned."""

    id = fields.UUID(required=True)
    state = fields.Enum(TaskState, by_value=True, allow_none=True)


class PaymentSchema(Schema):
    """One payment (dumped from a ``services.TrackedPayment``)."""

    id = fields.UUID(attribute="payment.id")
    order_id = fields.UUID(attribute="payment.order_id")
    state = fields.String(attribute="payment.state", metadata={"enum": [s.value for s in PaymentState]})
    amount_cents = fields.Integer(attribute="payment.amount_cents")
    currency = fields.String(attribute="payment.currency")
    idempotency_key = fields.String(attribute="payment.idempotency_key")
    being_processed = fields.Boolean(attribute="payment.is_being_processed")
    charge_task = fields.Nested(PaymentTaskPointerOut, allow_none=True)
    refund_task = fields.Nested(PaymentTaskPointerOut, allow_none=True)
    gateway_charge_id = fields.String(attribute="payment.gateway_charge_id", allow_none=True)
    gateway_refund_status = fields.String(attribute="payment.gateway_refund_status", allow_none=True)
    failure_reason = fields.String(attribute="payment.failure_reason", allow_none=True)
    captured_at = fields.AwareDateTime(attribute="payment.captured_at", allow_none=True)
    refunded_at = fields.AwareDateTime(attribute="payment.refunded_at", allow_none=True)
    created_at = fields.AwareDateTime(attribute="payment.created_at")
    updated_at = fields.AwareDateTime(attribute="payment.updated_at")


class PaymentPageSchema(Schema):
    """A page of payments, newest first; pass ``next_before`` as ``before`` for the next page."""

    payments = fields.List(fields.Nested(PaymentSchema))
    next_before = fields.UUID(allow_none=True)


class PaymentListQuerySchema(Schema):
    """``GET /api/payments`` filters; unknown parameters are refused (422)."""

    state = fields.Enum(PaymentState, by_value=True, load_default=None)
    being_processed = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    before = fields.UUID(load_default=None)
