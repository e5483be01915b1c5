"""The orders API's marshmallow schemas: what a client may send (checked field by field) and what it gets.

Input schemas refuse unknown fields and say, per field, what is wrong; flask-smorest answers 422 with
those messages. Prices never appear in input: they come from the catalogue.

Every string that reaches the database is checked for characters it cannot store or that have no place
in the field: PostgreSQL refuses a NUL in text, and a lone surrogate (JSON allows ``"\ud800"``) cannot be
encoded as UTF-8. Either would otherwise be a 500; here it is a 422 naming the field. SKUs, countries
and idempotency keys are held to a pattern; an email, which may hold any letter, to no control
character and no surrogate.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, cast

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from orders.models import OrderState
from orders.services import DEFAULT_PAGE, MAX_PAGE
from queue_core import TaskState

MAX_LINES = 20
MAX_QUANTITY = 100
# Written as both engines read them: ``^...$`` is anchored in JSON Schema and JavaScript too, where Python's
# ``\Z`` would be a literal "Z". ``FullMatch`` keeps Python's ``$`` from accepting a trailing newline.
SKU_PATTERN = r"^[A-Z0-9-]{1,40}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"  # visible ASCII: what a header carries without surprises
# The request body the OpenAPI document offers: products of the seeded catalogue, so Swagger UI's
# "Try it out" places an order as it stands.
PLACE_ORDER_EXAMPLE = {
    "customer_email": "ada@example.com",
    "shipping_country": "DE",
    "lines": [{"sku": "CRUNCHY-ARMCHAIR", "quantity": 1}, {"sku": "SHINY-LAMP", "quantity": 2}],
}


class FullMatch(validate.Regexp):
    """A ``Regexp`` that must match the whole value, as JSON Schema's ``pattern`` does in clients.

    Still a ``Regexp``, so the OpenAPI document carries the pattern; but ``re.fullmatch`` rather than
    ``re.match``, since Python's ``$`` also matches before a final newline (``"DE\\n"``).
    """

    def __call__(self, value: str) -> str:  # type: ignore[override]
        if cast("re.Pattern[str]", self.regex).fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def _storable_text(value: str) -> None:
    """Refuse control characters (NUL included) and lone surrogates: text the database cannot hold."""
    if any(unicodedata.category(character) in ("Cc", "Cs") for character in value):
        raise ValidationError("Must not contain control characters or unpaired surrogates.")


class LineIn(Schema):
    class Meta:
        unknown = RAISE

    sku = fields.String(
        required=True,
        validate=FullMatch(
            SKU_PATTERN, error="Must be 1 to 40 upper-case letters, digits or hyphens, like CRUNCHY-ARMCHAIR."
        ),
    )
    quantity = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_QUANTITY, error=f"Must be between 1 and {MAX_QUANTITY}."),
    )


class PlaceOrderIn(Schema):
    """The body of ``POST /api/orders``."""

    class Meta:
        unknown = RAISE

    customer_email = fields.Email(required=True, validate=[validate.Length(max=254), _storable_text])
    shipping_country = fields.String(
        required=True,
        validate=FullMatch(COUNTRY_PATTERN, error="Must be two upper-case letters (ISO 3166), like DE."),
    )
    lines = fields.List(
        fields.Nested(LineIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES, error=f"Must have between 1 and {MAX_LINES} lines."),
    )

    @validates_schema
    def _no_duplicate_skus(self, data: dict[str, Any], **_kwargs: Any) -> None:
        skus = [line["sku"] for line in data.get("lines", [])]
        repeated = sorted({sku for sku in skus if skus.count(sku) > 1})
        if repeated:
            raise ValidationError(
                f"Each product may appear once; repeated: {', '.join(repeated)}.", field_name="lines"
            )


class IdempotencyKeyIn(Schema):
    """The optional ``Idempotency-Key`` header: the same key and body give back the first order."""

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        load_default=None,
        validate=FullMatch(
            IDEMPOTENCY_KEY_PATTERN,
            error="Must be 1 to 255 visible ASCII characters (no spaces or control characters), like a UUID.",
        ),
    )


class OrderListIn(Schema):
    """The query of ``GET /api/orders``: newest first; pass the last ID seen as ``before`` for more."""

    class Meta:
        unknown = RAISE

    state = fields.String(validate=validate.OneOf([state.value for state in OrderState]), load_default=None)
    being_processed = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    before = fields.UUID(load_default=None)


class LineOut(Schema):
    line_number = fields.Integer()
    sku = fields.String()
    quantity = fields.Integer()
    unit_price_cents = fields.Integer()


class OrderTaskPointerOut(Schema):
    """A task an order points at (one of its screening steps), and its state now: null once pruned."""

    id = fields.UUID(required=True)
    state = fields.Enum(TaskState, by_value=True, allow_none=True)


class OrderOut(Schema):
    id = fields.UUID()
    state = fields.String()
    failure_reason = fields.String(allow_none=True)
    customer_email = fields.String()
    shipping_country = fields.String()
    currency = fields.String()
    total_cents = fields.Integer()
    lines = fields.List(fields.Nested(LineOut))
    fraud_check_task = fields.Nested(OrderTaskPointerOut, allow_none=True)
    stock_reservation_task = fields.Nested(OrderTaskPointerOut, allow_none=True)
    fraud_cleared_at = fields.DateTime(allow_none=True)
    stock_reserved_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class PlacedOrderOut(OrderOut):
    """The 202 of ``POST /api/orders``: the order, and the customer's key to it."""

    access_token = fields.String(
        metadata={
            "description": "Send as 'Authorization: Bearer <access_token>' to read, cancel or delete this "
            "order. The same order always has the same token; keep it secret."
        }
    )


class OrderPageOut(Schema):
    """A page of orders, newest first; pass ``next_before`` as ``before`` for the next page."""

    orders = fields.List(fields.Nested(OrderOut))
    next_before = fields.UUID(allow_none=True)


class ProductOut(Schema):
    sku = fields.String()
    name = fields.String()
    unit_price_cents = fields.Integer()
    currency = fields.String()
    on_hand = fields.Integer()
    reserved = fields.Integer()
    available = fields.Integer()
