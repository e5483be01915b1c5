"""What the orders context announces, and how it announces it.

Other contexts learn about orders only through these events. ``publish`` hands an event to the
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
class OrderReadyForPayment:
    """Both screening steps passed: the order can be charged."""

    order_id: uuid.UUID
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class OrderCancelled:
    """The order was cancelled: a pending charge must not happen, a captured one must be refunded."""

    order_id: uuid.UUID


OrderEvent = OrderReadyForPayment | OrderCancelled


def publish(session: Session, event: OrderEvent) -> None:
    """Run the reactions wired for ``event`` in ``session``'s transaction."""
    react = session.info.get(REACTIONS_KEY)
    if react is None:
        raise RuntimeError(f"no reactions are wired into this session to receive {event!r}")
    react(session, event)
