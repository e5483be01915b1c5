"""How the simulated provider misbehaves: latency, transient errors, ambiguous timeouts and declines.

The settings live in the gateway's database (one row), so every server process and thread reads the same
ones and a test can change them while the server runs. Each new charge's fate is decided by independent
random rolls in a fixed order: a transient error (``transient_error_rate``), else a timeout
(``timeout_rate``: the request hangs for ``hang_seconds``), else a decline (``decline_rate``), else a
capture. A rate of 0 never fires and a rate
of 1 always does, so tests that use only 0 and 1 are deterministic, except for the timeout's coin: a
timeout captures the charge before hanging or records nothing, half the time each.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gateway_simulator.database import insert_unless_present
from gateway_simulator.models import FailureInjection

SETTINGS_ROW_ID = 1
DECLINE_REASONS = ("insufficient_funds", "card_declined", "expired_card", "do_not_honor")


@dataclass(frozen=True)
class FailureSettings:
    """The knobs, with the defaults of a well-behaved provider (a timeout, when asked for, hangs 10 s).

    ``hang_seconds`` is the simulator's own: how long the provider stays silent. How long a client waits
    is the client's (the shop's ``GATEWAY_TIMEOUT_SECONDS``); a test of timeouts keeps the hang longer.
    """

    latency_ms: int = 0
    transient_error_rate: float = 0.0
    timeout_rate: float = 0.0
    decline_rate: float = 0.0
    hang_seconds: float = 10.0

    def as_dict(self) -> dict[str, int | float]:
        """The settings as the API shows them."""
        return dataclasses.asdict(self)


class Fate(enum.Enum):
    """What happens to a charge request with a new idempotency key."""

    TRANSIENT_ERROR = "transient_error"  # answered 503, nothing recorded
    TIMEOUT_AFTER_CAPTURE = "timeout_after_capture"  # captured and committed, then the hang
    TIMEOUT_BEFORE_CHARGE = "timeout_before_charge"  # nothing recorded, then the hang
    DECLINE = "decline"
    CAPTURE = "capture"


def ensure_settings_row(session: Session) -> None:
    """Create the settings row with the defaults unless it exists (safe to race)."""
    values = {"id": SETTINGS_ROW_ID, **FailureSettings().as_dict()}
    insert_unless_present(session, FailureInjection, values, "id")


def current_settings(session: Session) -> FailureSettings:
    """The settings every process shares right now."""
    row = session.get(FailureInjection, SETTINGS_ROW_ID)
    if row is None:
        return FailureSettings()
    return FailureSettings(
        latency_ms=row.latency_ms,
        transient_error_rate=row.transient_error_rate,
        timeout_rate=row.timeout_rate,
        decline_rate=row.decline_rate,
        hang_seconds=row.hang_seconds,
    )


def update_settings(session: Session, changes: Mapping[str, int | float]) -> FailureSettings:
    """Change the given settings (already validated), keep the others; returns the new settings."""
    ensure_settings_row(session)
    row = session.get_one(FailureInjection, SETTINGS_ROW_ID, with_for_update=True)
    for name, value in changes.items():
        setattr(row, name, value)
    session.flush()
    return current_settings(session)


def decide_fate(settings: FailureSettings, rng: random.Random) -> Fate:
    """Roll for a new charge, in the order the module docstring gives."""
    if rng.random() < settings.transient_error_rate:
        return Fate.TRANSIENT_ERROR
    if rng.random() < settings.timeout_rate:
        return Fate.TIMEOUT_AFTER_CAPTURE if rng.random() < 0.5 else Fate.TIMEOUT_BEFORE_CHARGE
    if rng.random() < settings.decline_rate:
        return Fate.DECLINE
    return Fate.CAPTURE


def decline_reason(rng: random.Random) -> str:
    """Why the card's issuer said no."""
    return rng.choice(DECLINE_REASONS)
