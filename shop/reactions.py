"""The one table of cross-context reactions: when a context announces an event, who reacts.

Bounded contexts never call each other. Each publishes plain events (``<context>/events.py``); this
module, the composition root, decides who reacts. Reactions run at once, in the publisher's
transaction: an event and everything it causes commit together or not at all. A reaction that refuses
(raises a domain error, e.g. a dispatched shipment cannot be withdrawn) rolls the whole change back.

The dispatcher reaches the contexts through their sessions: ``shop.bootstrap.session_info`` puts it under
each context's ``events.REACTIONS_KEY``, for every web request, task handler and command that opens one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from orders import services as orders
from orders.events import OrderCancelled, OrderReadyForPayment
from payments import services as payments
from payments.events import PaymentCaptured, PaymentFailed, PaymentRefunded
from shipping import services as shipping
from shipping.events import ShipmentDispatched

Reaction = Callable[[Session, Any], None]


def charge_the_order(session: Session, event: OrderReadyForPayment) -> None:
    payments.request_payment(
        session, order_id=event.order_id, amount_cents=event.amount_cents, currency=event.currency
    )


def stop_the_money(session: Session, event: OrderCancelled) -> None:
    payments.cancel_payment_for_order(session, event.order_id)


def withdraw_the_shipment(session: Session, event: OrderCancelled) -> None:
    shipping.cancel_shipment_for_order(session, event.order_id)


def mark_the_order_paid(session: Session, event: PaymentCaptured) -> None:
    orders.mark_paid(session, event.order_id)


def ship_the_order(session: Session, event: PaymentCaptured) -> None:
    destination = orders.destination_of(session, event.order_id)
    shipping.create_shipment(session, order_id=event.order_id, destination_country=destination)


def fail_the_order(session: Session, event: PaymentFailed) -> None:
    orders.mark_payment_failed(session, event.order_id, event.reason)


def mark_the_order_shipped(session: Session, event: ShipmentDispatched) -> None:
    orders.mark_shipped(session, event.order_id)


REACTIONS: Mapping[type, Sequence[Reaction]] = {
    OrderReadyForPayment: [charge_the_order],
    OrderCancelled: [stop_the_money, withdraw_the_shipment],
    PaymentCaptured: [mark_the_order_paid, ship_the_order],
    PaymentFailed: [fail_the_order],
    PaymentRefunded: [],  # the order was cancelled already; nothing else changes
    ShipmentDispatched: [mark_the_order_shipped],
}


def dispatch(session: Session, event: object) -> None:
    """Run every reaction to ``event`` in ``session``'s transaction, in the table's order."""
    try:
        reactions = REACTIONS[type(event)]
    except KeyError:
        raise LookupError(
            f"no reactions are declared for {type(event).__name__}; add it to REACTIONS"
        ) from None
    for reaction in reactions:
        reaction(session, event)
