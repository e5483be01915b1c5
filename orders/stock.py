"""Holding and giving back units of stock, with SQL that cannot oversell.

``products.on_hand`` counts the units the warehouse received; ``products.reserved`` counts the units sold,
promised to an open order or already shipped; ``on_hand - reserved`` is what can still be sold. Shipping
changes neither: a shipped unit stays counted in both, so what is available is the same before and after
the carrier takes it. That keeps the manifest task (which marks many orders shipped at once) off the
``products`` rows: it would lock them in shipment order while reservations lock them in SKU order, and
the two would deadlock. A unit leaves ``reserved`` only when its order ends without shipping (rejected,
payment failed, cancelled, deleted). A reservation is one guarded UPDATE per line::

    UPDATE products SET reserved = reserved + :q WHERE sku = :sku AND on_hand - reserved >= :q

The condition and the increment are one statement, so two orders racing for the last armchair cannot
both get it: the second UPDATE waits for the first's row lock, re-reads the row and matches nothing.
Lines are taken in SKU order, so two orders sharing products lock those rows in the same order and
never deadlock each other. All lines are reserved inside one savepoint: an order gets all of its units
or none. The CHECK constraint ``reserved <= on_hand`` is the last line of defence.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import update
from sqlalchemy.orm import Session

from orders.models import Order, Product


def quantities_by_sku(order: Order) -> list[tuple[str, int]]:
    """The order's units per product, in SKU order (the order every lock is taken in)."""
    counts: Counter[str] = Counter()
    for line in order.lines:
        counts[line.sku] += line.quantity
    return sorted(counts.items())


def reserve(session: Session, order: Order) -> str | None:
    """Reserve every unit of ``order``; returns None, or the first SKU short of stock (nothing reserved)."""
    savepoint = session.begin_nested()
    for sku, quantity in quantities_by_sku(order):
        result = session.execute(
            update(Product)
            .where(Product.sku == sku, Product.on_hand - Product.reserved >= quantity)
            .values(reserved=Product.reserved + quantity)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            savepoint.rollback()
            return sku
    savepoint.commit()
    order.record_stock_reserved(dt.datetime.now(dt.UTC))
    return None


def release(session: Session, order: Order) -> None:
    """Give the order's reserved units back; does nothing if none are reserved (so it is safe to repeat)."""
    if order.stock_reserved_at is None:
        return
    for sku, quantity in quantities_by_sku(order):
        session.execute(
            update(Product)
            .where(Product.sku == sku)
            .values(reserved=Product.reserved - quantity)
            .execution_options(synchronize_session=False)
        )
    order.record_stock_released()
