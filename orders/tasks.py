"""The orders context's task handlers: fraud screening and stock reservation, run in parallel per order.

Both tasks are declared in ``services`` (``place_order`` enqueues them); this module binds their handlers
and imports ``services``, never the reverse. Neither task carries an argument. Each handler finds its
order by its own task ID (``WHERE fraud_check_task_id = :task_id FOR UPDATE``), so it reads the order as
it is now, not as it was when the task was enqueued. If no order points at the task any more (deleted,
cancelled, rejected by the other step), the task ends ``discarded`` after one attempt: there is nothing
to retry for.

The row lock serialises the two handlers of one order. Each records its verdict and clears its own
pointer; the second to commit sees both verdicts and performs the join (``screening.join_if_ready``).

Both pointer columns are registered with repair functions: an order whose screening task died (dead,
expired, cancelled by hand, discarded, or pruned) would otherwise stay ``screening`` forever.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session, lazyload

from orders import fraud, screening, services, stock
from orders.models import Order, OrderState
from queue_core import DanglingReference, Discard, RunningTask, TaskRegistry

registry = TaskRegistry()

FRAUD_STEP = "fraud screening"
STOCK_STEP = "stock reservation"


def _order_pointing_at(session: Session, column: InstrumentedAttribute[Any], task: RunningTask) -> Order:
    """The order whose ``column`` holds this task's ID, locked; ``Discard`` if there is none."""
    # Lines load only if used: the stock reservation does, fraud screening does not.
    locked = select(Order).where(column == task.id).with_for_update().options(lazyload(Order.lines))
    order = session.scalars(locked).one_or_none()
    if order is None:
        raise Discard(f"no order points at task {task.id} any more (deleted, cancelled or rejected)")
    return order


@registry.handles(services.SCREEN_FOR_FRAUD)
def screen_for_fraud(task: RunningTask, session: Session) -> None:
    """Apply the fraud rules to the order's current email, total and country."""
    order = _order_pointing_at(session, Order.fraud_check_task_id, task)
    order.fraud_check_task_id = None
    if order.order_state is not OrderState.SCREENING:
        return  # cannot happen while every path that ends screening clears both pointers; harmless if so
    verdict = fraud.screen(order.customer_email, order.total_cents, order.shipping_country)
    if not verdict.passed:
        screening.reject(session, order, f"{FRAUD_STEP}: {verdict.reason}")
        return
    order.record_fraud_cleared(dt.datetime.now(dt.UTC))
    screening.join_if_ready(session, order)


# Commits alone: the product rows it locks are the hottest in the shop; in a commit group they would stay
# locked through the tasks after it, and two groups reserving in different orders could deadlock.
@registry.handles(services.RESERVE_STOCK, commits_alone=True)
def reserve_stock(task: RunningTask, session: Session) -> None:
    """Reserve every unit of the order's current lines, or none and reject it as out of stock."""
    order = _order_pointing_at(session, Order.stock_reservation_task_id, task)
    if order.order_state is not OrderState.SCREENING:
        order.stock_reservation_task_id = None
        return
    # Reserve before changing the order: its changes then reach the database in one UPDATE, not one
    # flushed before the reservation's savepoint and another after it.
    short_sku = stock.reserve(session, order)
    order.stock_reservation_task_id = None
    if short_sku is not None:
        screening.reject(session, order, f"out of stock: {short_sku}")
        return
    screening.join_if_ready(session, order)


def _repair(
    session: Session, dangling: Sequence[DanglingReference], column: InstrumentedAttribute[Any], step: str
) -> None:
    """Mend orders left pointing at a screening task that will never succeed.

    An order still screening cannot pass without that step: it is rejected with a reason naming the
    step and the task's state, its other step is stopped and its stock released. An order that moved on
    only loses its stale pointer. (``repair_dangling`` hands the rows over locked, still pointing at
    the task, and the task still dead: an order whose task was re-queued meanwhile is not among them.)
    """
    for reference in dangling:
        order = session.get_one(Order, reference.primary_key["id"])
        setattr(order, column.key, None)
        if order.order_state is OrderState.SCREENING:
            task_state = reference.task_state or "missing"
            reason = f"{step} did not complete: task {reference.task_id} is {task_state}"
            screening.reject(session, order, reason)


def repair_fraud_check(session: Session, dangling: Sequence[DanglingReference]) -> None:
    """Repair for ``orders.fraud_check_task_id`` (see ``_repair``)."""
    _repair(session, dangling, Order.fraud_check_task_id, FRAUD_STEP)


def repair_stock_reservation(session: Session, dangling: Sequence[DanglingReference]) -> None:
    """Repair for ``orders.stock_reservation_task_id`` (see ``_repair``)."""
    _repair(session, dangling, Order.stock_reservation_task_id, STOCK_STEP)


registry.track_reference(Order.fraud_check_task_id, repair=repair_fraud_check)
registry.track_reference(Order.stock_reservation_task_id, repair=repair_stock_reservation)
