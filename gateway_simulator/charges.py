"""Charging under an idempotency key, the way Stripe does it.

A key seen before is answered from the ledger: the original outcome (same charge, same status), whatever
the failure injection says now, unless the request body differs, which is refused. A new key gets a fate
from the failure injection. Two requests racing with one new key both try ``INSERT ... ON CONFLICT DO
NOTHING`` on the UNIQUE key and then read the row that won, so they end with one charge and one answer.

A timeout is ambiguous on purpose, like a real provider's: the request hangs for ``hang_seconds``
and the charge may or may not have happened. When it did, it was committed before the hang began, so
the ledger is final by the time the client gives up and a retry with the same key finds the charge.
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gateway_simulator.database import insert_unless_present
from gateway_simulator.failure_injection import FailureSettings, Fate, decide_fate, decline_reason
from gateway_simulator.models import Charge, utc_now

CAPTURED = "captured"
DECLINED = "declined"
REFUNDED = "refunded"
VOIDED = "voided"


@dataclass(frozen=True)
class ChargeRequest:
    """A validated ``POST /v1/charges``."""

    idempotency_key: str
    amount_cents: int
    currency: str
    reference: str


@dataclass(frozen=True)
class Answered:
    """The request was answered from this charge; ``replayed`` if an earlier request had recorded it."""

    charge: Charge
    replayed: bool


@dataclass(frozen=True)
class Unavailable:
    """A transient error: nothing was recorded, the key is still unused."""


@dataclass(frozen=True)
class TimedOut:
    """The request hung and nothing was recorded; only a retry with the same key can tell."""


ChargeResult = Answered | Unavailable | TimedOut


class IdempotencyKeyReused(Exception):  # noqa: N818 - says what happened
    """The key was used before for a request with another body."""


def new_id(prefix: str) -> str:
    """An object ID in the provider's style: ``ch_...``, ``re_...``."""
    return f"{prefix}_{secrets.token_hex(12)}"


def charge(
    engine: Engine, request: ChargeRequest, settings: FailureSettings, rng: random.Random
) -> ChargeResult:
    """Answer a charge request: from the ledger for a known key, by the failure injection for a new one."""
    existing = find_charge(engine, request.idempotency_key)
    if existing is not None:
        return _replay(existing, request)
    fate = decide_fate(settings, rng)
    if fate is Fate.TRANSIENT_ERROR:
        return Unavailable()
    if fate is Fate.TIMEOUT_BEFORE_CHARGE:
        time.sleep(settings.hang_seconds)
        return TimedOut()
    result = _record(engine, request, fate, rng)
    if fate is Fate.TIMEOUT_AFTER_CAPTURE:
        time.sleep(settings.hang_seconds)  # the capture is committed: _record's transaction has ended
    return result


def find_charge(engine: Engine, idempotency_key: str) -> Charge | None:
    """The charge recorded under ``idempotency_key``, if any."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        return _charge_under(session, idempotency_key)


def original_status(charge: Charge) -> str:
    """What the charge request was answered: a charge refunded since was captured then."""
    return CAPTURED if charge.status == REFUNDED else charge.status


def describe_charge(charge: Charge, *, as_answered: bool = False) -> dict[str, Any]:
    """The charge as the API shows it; ``as_answered`` gives the charge request's original answer."""
    description: dict[str, Any] = {
        "id": charge.id,
        "status": original_status(charge) if as_answered else charge.status,
        "amount_cents": charge.amount_cents,
        "currency": charge.currency,
        "reference": charge.reference,
        "idempotency_key": charge.idempotency_key,
        "decline_reason": charge.decline_reason,
        "created_at": timestamp(charge.created_at),
    }
    if not as_answered:
        description["refund_id"] = charge.refund_id
        description["refunded_at"] = timestamp(charge.refunded_at)
    return description


def timestamp(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which were stored in UTC."""
    if moment is None:
        return None
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat().replace("+00:00", "Z")


def _record(engine: Engine, request: ChargeRequest, fate: Fate, rng: random.Random) -> ChargeResult:
    declined = fate is Fate.DECLINE
    values = {
        "id": new_id("ch"),
        "idempotency_key": request.idempotency_key,
        "status": DECLINED if declined else CAPTURED,
        "amount_cents": request.amount_cents,
        "currency": request.currency,
        "reference": request.reference,
        "decline_reason": decline_reason(rng) if declined else None,
        "created_at": utc_now(),
    }
    with Session(engine, expire_on_commit=False) as session, session.begin():
        inserted = insert_unless_present(session, Charge, values, "idempotency_key")
        recorded = _charge_under(session, request.idempotency_key)
    if recorded is None:  # pragma: no cover - the row was either inserted or already there
        raise RuntimeError(f"no charge under {request.idempotency_key!r} after inserting one")
    return Answered(recorded, replayed=False) if inserted else _replay(recorded, request)


def _replay(charge: Charge, request: ChargeRequest) -> Answered:
    # A voided tombstone has no body to compare: whatever the late request says, it is not captured.
    if charge.status != VOIDED and (charge.amount_cents, charge.currency, charge.reference) != (
        request.amount_cents,
        request.currency,
        request.reference,
    ):
        raise IdempotencyKeyReused(request.idempotency_key)
    return Answered(charge, replayed=True)


def _charge_under(session: Session, idempotency_key: str) -> Charge | None:
    return session.scalars(select(Charge).where(Charge.idempotency_key == idempotency_key)).one_or_none()
