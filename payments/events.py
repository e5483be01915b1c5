"""What the payments context announces, and how it announces it.

Other contexts learn about payments only through these events. ``publish`` hands an event to the
reactions the composition root wired into this session (``shop/bootstrap.py``, ``shop/reactions.py``);
they run at once, in the same transaction, so the event and its consequences commit or roll back together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

# The Session.info key this context reads its dispatcher from; shop/bootstrap.py fills it.
REACTIONS_KEY = "reactions"


@dataclass(frozen=True)
class PaymentCaptured:
    """The customer was charged (exactly once, whatever happened on the way)."""

    order_id: uuid.UUID
    payment_id: uuid.UUID


@dataclass(frozen=True)
class PaymentFailed:
    """The charge will not happen: declined, or the gateway stayed unreachable. ``reason`` says which."""

    order_id: uuid.UUID
    payment_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class PaymentRefunded:
    """A captured charge was given back."""

    order_id: uuid.UUID
    payment_id: uuid.UUID


PaymentEvent = PaymentCaptured | PaymentFailed | PaymentRefunded


def publish(session: Session, event: PaymentEvent) -> None:
    """Run the reactions wired for ``event`` in ``session``'s transaction."""
    react = session.info.get(REACTIONS_KEY)
    if react is None:
        raise RuntimeError(f"no reactions are wired into this session to receive {event!r}")
    react(session, event)
