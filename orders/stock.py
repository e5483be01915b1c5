"""Holding, giving back and shipping units of stock, with SQL that cannot oversell.

``products.reserved`` counts the units promised to open orders; ``on_hand - reserved`` is what can still
be sold. A reservation is one guarded UPDATE per line::

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


def consume(session: Session, order: Order) -> None:
    """The reserved units left the warehouse: they are neither on hand nor reserved any more."""
    if order.stock_reserved_at is None:
        return
    for sku, quantity in quantities_by_sku(order):
        session.execute(
            update(Product)
            .where(Product.sku == sku)
            .values(on_hand=Product.on_hand - quantity, reserved=Product.reserved - quantity)
            .execution_options(synchronize_session=False)
        )
    order.record_stock_released()
