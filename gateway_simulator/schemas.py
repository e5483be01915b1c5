"""What the simulator accepts, checked with marshmallow; anything else is answered 422 with the reasons.

Every string that reaches the database is checked to be printable, so that no input (a NUL byte, an
unpaired surrogate) can make the database refuse a statement and turn a bad request into a 500.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields
from marshmallow.validate import Length, Range, Regexp

from gateway_simulator.models import KEY_LENGTH

MAX_AMOUNT_CENTS = 99_999_999  # what an eight-digit amount field holds, as at real providers
MAX_LATENCY_MS = 60_000
MAX_HANG_SECONDS = 600.0


def printable(value: str) -> None:
    """Refuse control characters and unpaired surrogates."""
    if not value.isprintable():
        raise ValidationError("Must contain printable characters only.")


def is_valid_key(value: str) -> bool:
    """An idempotency key: 1 to 255 printable characters."""
    return 1 <= len(value) <= KEY_LENGTH and value.isprintable()


class WholeNumber(fields.Integer):
    """An integer given as a JSON integer: not a string, not a fraction, not ``true``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class JsonNumber(fields.Float):
    """A number given as a JSON number: not a string, not ``true``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class ChargeRequestSchema(Schema):
    """``POST /v1/charges``."""

    amount_cents = WholeNumber(required=True, validate=Range(min=1, max=MAX_AMOUNT_CENTS))
    currency = fields.String(
        required=True, validate=Regexp(r"[A-Z]{3}\Z", error="Must be three upper-case letters (ISO 4217).")
    )
    reference = fields.String(required=True, validate=[Length(min=1, max=100), printable])


class RefundRequestSchema(Schema):
    """``POST /v1/refunds``: full refunds only, of the charge made under this idempotency key."""

    charge_idempotency_key = fields.String(required=True, validate=[Length(min=1, max=KEY_LENGTH), printable])


class LedgerQuerySchema(Schema):
    """``GET /v1/ledger?reference=...``."""

    reference = fields.String(validate=[Length(min=1, max=100), printable])


class FailureInjectionSchema(Schema):
    """``PUT /v1/failure-injection``: any subset of the knobs."""

    latency_ms = WholeNumber(validate=Range(min=0, max=MAX_LATENCY_MS))
    transient_error_rate = JsonNumber(validate=Range(min=0.0, max=1.0))
    timeout_rate = JsonNumber(validate=Range(min=0.0, max=1.0))
    decline_rate = JsonNumber(validate=Range(min=0.0, max=1.0))
    hang_seconds = JsonNumber(validate=Range(min=0.0, min_inclusive=False, max=MAX_HANG_SECONDS))
