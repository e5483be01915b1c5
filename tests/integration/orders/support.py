"""Helpers for the orders context's integration tests: placing orders, holding tasks back, reading rows.

Orders are placed through ``services.place_order`` in a ``recording_session`` (so published events land
in an ``EventRecorder``) and worked on by a real worker running ``orders.tasks.registry``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from orders import services
from orders.models import Order, Product
from orders.tasks import registry
from queue_core import WorkerSettings
from queue_core._models import task_table
from shop.bootstrap import session_info
from tests.support.domain import EventRecorder, recording_session
from tests.support.inprocess import FAST, run_until_idle

ARMCHAIR = ("CRUNCHY-ARMCHAIR", 1)  # 24,900 cents each


def place(
    engine: Engine,
    recorder: EventRecorder,
    *,
    customer_email: str = "ada@example.com",
    shipping_country: str = "DE",
    lines: Sequence[tuple[str, int]] = (ARMCHAIR,),
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """Place an order and commit; returns its ID."""
    with recording_session(engine, recorder) as session:
        placed = services.place_order(
            session,
            customer_email=customer_email,
            shipping_country=shipping_country,
            lines=lines,
            idempotency_key=idempotency_key,
        )
        return placed.order.id


def work(engine: Engine, recorder: EventRecorder, settings: WorkerSettings = FAST) -> None:
    """Run the orders tasks until none is left to run."""
    run_until_idle(engine, registry, settings, session_info=session_info(react=recorder))


def load(engine: Engine, order_id: uuid.UUID) -> Order:
    """The order as committed (detached, lines loaded)."""
    with Session(engine, expire_on_commit=False) as session:
        order = session.get(Order, order_id)
        assert order is not None, f"order {order_id} is gone"
        return order


def order_exists(engine: Engine, order_id: uuid.UUID) -> bool:
    with Session(engine) as session:
        return session.get(Order, order_id) is not None


def stock_of(engine: Engine, sku: str) -> tuple[int, int]:
    """(on_hand, reserved) of a product."""
    with Session(engine) as session:
        product = session.get(Product, sku)
        assert product is not None
        return product.on_hand, product.reserved


def set_stock(engine: Engine, sku: str, on_hand: int, reserved: int = 0) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(Product).where(Product.sku == sku).values(on_hand=on_hand, reserved=reserved))


def change_order(engine: Engine, order_id: uuid.UUID, **values: Any) -> None:
    """Change an order's row behind the services' back (what an operator or a later request might do)."""
    with Session(engine) as session, session.begin():
        session.execute(update(Order).where(Order.id == order_id).values(**values))


def hold_back(engine: Engine, task_id: uuid.UUID) -> None:
    """Make a pending task wait an hour, so a worker runs the other step first."""
    _set_run_at(engine, task_id, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))


def let_go(engine: Engine, task_id: uuid.UUID) -> None:
    """Make a held-back task due now."""
    _set_run_at(engine, task_id, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))


def _set_run_at(engine: Engine, task_id: uuid.UUID, run_at: dt.datetime) -> None:
    with engine.begin() as connection:
        changed = connection.execute(
            task_table.update().where(task_table.c.id == task_id).values(run_at=run_at)
        ).rowcount
    assert changed == 1


def tasks_named(engine: Engine, *names: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(task_table).where(task_table.c.name.in_(names)).order_by(task_table.c.id)
        )
        return [dict(row._mapping) for row in rows]


ALL_ORDER_TASKS = ("orders.screen_for_fraud", "orders.reserve_stock")
