"""What the shipping context announces, and how it announces it.

``publish`` hands an event to the reactions the composition root wired into this session
(``shop/bootstrap.py``, ``shop/reactions.py``); they run at once, in the same transaction, so the event
and its consequences commit or roll back together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

# The Session.info key this context reads its dispatcher from; shop/bootstrap.py fills it.
REACTIONS_KEY = "reactions"


@dataclass(frozen=True)
class ShipmentDispatched:
    """The carrier took the parcel."""

    order_id: uuid.UUID
    shipment_id: uuid.UUID
    tracking_number: str


ShippingEvent = ShipmentDispatched


def publish(session: Session, event: ShippingEvent) -> None:
    """Run the reactions wired for ``event`` in ``session``'s transaction."""
    react = session.info.get(REACTIONS_KEY)
    if react is None:
        raise RuntimeError(f"no reactions are wired into this session to receive {event!r}")
    react(session, event)
