"""What happens to an order when a screening step ends: the join, the rejection, stopping the other step.

Used by the task handlers, the repair functions and the services. Every function expects the order's
row to be locked by the caller (``SELECT ... FOR UPDATE``): that lock is what makes the join happen
exactly once, because the second handler to finish reads the row only after the first committed.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

import queue_core
from orders import events, stock
from orders.events import OrderReadyForPayment
from orders.models import Order, OrderState


def join_if_ready(session: Session, order: Order) -> bool:
    """If both steps passed and the order still screens, move it on and announce it; True if it did."""
    if not (order.screening_passed and order.order_state is OrderState.SCREENING):
        return False
    order.await_payment()
    events.publish(session, OrderReadyForPayment(order.id, order.total_cents, order.currency))
    return True


def reject(session: Session, order: Order, reason: str) -> None:
    """A step failed: the order is rejected, the other step stopped, reserved stock given back."""
    order.reject(reason)
    stop_screening_tasks(session, order)
    stock.release(session, order)


def stop_screening_tasks(session: Session, order: Order) -> None:
    """Cancel each screening task the order still points at, through that ID, and clear the pointer.

    A pending task is cancelled at once. A running one is asked to stop; whether or not it does, when it
    reaches the order's row it finds no order pointing at it and ends ``discarded``.
    """
    if order.fraud_check_task_id is not None:
        queue_core.cancel(session, order.fraud_check_task_id)
        order.fraud_check_task_id = None
    if order.stock_reservation_task_id is not None:
        queue_core.cancel(session, order.stock_reservation_task_id)
        order.stock_reservation_task_id = None
