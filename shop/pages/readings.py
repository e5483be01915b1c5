"""What the pages read of the business: orders with every task that works on them, a task's referencing
rows described, and a task's timeline. Plain queries, each bounded by a limit or an index; nothing is cached.

The contexts own their tables; this module, part of the composition root, reads them the way the API
does (their models, read only) so that one page costs one query per context, not one per row. The queue's
tables are read only through ``queue_core``'s public functions (``states_of``, ``task_details``, and for
the dashboard ``task_counts``, ``throughput``, ``live_workers``, ``find_worker``): this module writes no
SQL against them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import queue_core
from orders import services as orders_services
from orders.models import Order, OrderState
from payments import services as payments_services
from payments.models import Payment
from shipping.models import Shipment


class OrderFilter(enum.StrEnum):
    """The Orders page's filters."""

    ALL = "all"
    BEING_PROCESSED = "being_processed"  # a row of the order points at a task right now
    WAITING_FOR_SHIPPING = "waiting_for_shipping"  # paid: its shipment waits for the next batch
    FAILED = "failed"  # rejected by screening, or its payment failed


@dataclass(frozen=True)
class TaskLink:
    """A task-ID column's value with the task's state now (``None``: the task is gone, e.g. pruned)."""

    label: str  # which column: "fraud check", "charge", "batch", ...
    id: uuid.UUID
    state: str | None


@dataclass(frozen=True)
class OrderRow:
    """One order as the Orders page shows it: the order, its payment and shipment, and their task links."""

    order: Order
    payment: Payment | None
    shipment: Shipment | None
    tasks: list[TaskLink]


def find_orders(session: Session, chosen: OrderFilter, limit: int = 50) -> list[Order]:
    """The newest ``limit`` orders that match ``chosen``.

    "Being processed" is the inverted pattern's direct query, asked of each context: orders pointing at a
    screening task, and orders whose payment points at a charge or refund task (both partial indexes).
    """
    if chosen is OrderFilter.ALL:
        return orders_services.list_orders(session, limit=limit)
    if chosen is OrderFilter.WAITING_FOR_SHIPPING:
        return orders_services.list_orders(session, state=OrderState.PAID, limit=limit)
    if chosen is OrderFilter.FAILED:
        found = [
            *orders_services.list_orders(session, state=OrderState.REJECTED, limit=limit),
            *orders_services.list_orders(session, state=OrderState.PAYMENT_FAILED, limit=limit),
        ]
        return _newest(found, limit)
    screening = orders_services.list_orders(session, being_processed=True, limit=limit)
    charging = payments_services.list_payments(session, being_processed=True, limit=min(limit, 100))
    known = {order.id for order in screening}
    wanted = [payment.order_id for payment in charging if payment.order_id not in known]
    paying = list(session.scalars(select(Order).where(Order.id.in_(wanted)))) if wanted else []
    return _newest([*screening, *paying], limit)


def _newest(found: Iterable[Order], limit: int) -> list[Order]:
    return sorted(found, key=lambda order: order.id, reverse=True)[:limit]


def order_rows(session: Session, orders: Sequence[Order]) -> list[OrderRow]:
    """Each order with its payment, its shipment and every task they point at: four queries in all."""
    ids = [order.id for order in orders]
    payments = {p.order_id: p for p in session.scalars(select(Payment).where(Payment.order_id.in_(ids)))}
    shipments = {s.order_id: s for s in session.scalars(select(Shipment).where(Shipment.order_id.in_(ids)))}
    pointers: list[list[tuple[str, uuid.UUID | None]]] = []
    for order in orders:
        payment, shipment = payments.get(order.id), shipments.get(order.id)
        pointers.append(
            [
                ("fraud check", order.fraud_check_task_id),
                ("stock reservation", order.stock_reservation_task_id),
                ("charge", payment.processing_task_id if payment else None),
                ("refund", payment.refund_task_id if payment else None),
                ("batch", shipment.shipping_task_id if shipment else None),
            ]
        )
    states = queue_core.states_of(session, [task_id for row in pointers for _, task_id in row])
    return [
        OrderRow(
            order=order,
            payment=payments.get(order.id),
            shipment=shipments.get(order.id),
            tasks=[
                TaskLink(label, task_id, _state(states.get(task_id)))
                for label, task_id in row
                if task_id is not None
            ],
        )
        for order, row in zip(orders, pointers, strict=True)
    ]


def _state(state: queue_core.TaskState | None) -> str | None:
    return None if state is None else state.value


@dataclass(frozen=True)
class Referrer:
    """A business row pointing at a task, described for people: what it is, its state, its order."""

    table: str
    column: str
    primary_key: dict[str, Any]
    state: str | None = None
    order_id: uuid.UUID | None = None
    detail: str = ""
    order_state: str | None = None  # the order's own state, for a payment's or a shipment's row too
    customer_email: str | None = None  # an order's; the page masks it for all but operators


def describe_referrers(session: Session, rows: Sequence[queue_core.ReferencingRow]) -> list[Referrer]:
    """The rows ``referencing_rows`` found, each with its state and the order it belongs to.

    One query per table that has rows, and one for the orders they belong to; a table this module does
    not know is shown by its key alone.
    """
    by_table: dict[str, list[queue_core.ReferencingRow]] = {}
    for row in rows:
        by_table.setdefault(row.table, []).append(row)
    described: list[Referrer] = []
    for table, found in by_table.items():
        ids = [row.primary_key.get("id") for row in found]
        loaded: dict[Any, Any] = {}
        if table == Order.__tablename__:
            loaded = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(ids)))}
        elif table == Payment.__tablename__:
            loaded = {p.id: p for p in session.scalars(select(Payment).where(Payment.id.in_(ids)))}
        elif table == Shipment.__tablename__:
            loaded = {s.id: s for s in session.scalars(select(Shipment).where(Shipment.id.in_(ids)))}
        for row in found:
            thing = loaded.get(row.primary_key.get("id"))
            described.append(_referrer(row, thing))
    order_ids = {referrer.order_id for referrer in described if referrer.order_id is not None}
    owners = session.execute(select(Order.id, Order.state).where(Order.id.in_(order_ids)))
    states: dict[uuid.UUID | None, str] = {order_id: state for order_id, state in owners}
    return [dataclasses.replace(r, order_state=states.get(r.order_id)) for r in described]


def _referrer(row: queue_core.ReferencingRow, thing: Any) -> Referrer:
    if isinstance(thing, Order):
        detail = f"{thing.total_cents / 100:.2f} {thing.currency}"
        order = Referrer(row.table, row.column, row.primary_key, thing.state, thing.id, detail)
        return dataclasses.replace(order, customer_email=thing.customer_email)
    if isinstance(thing, Payment):
        detail = f"{thing.amount_cents / 100:.2f} {thing.currency}"
        return Referrer(row.table, row.column, row.primary_key, thing.state, thing.order_id, detail)
    if isinstance(thing, Shipment):
        detail = f"to {thing.destination_country}" + (
            f", manifest {thing.manifest_number}" if thing.manifest_number else ""
        )
        return Referrer(row.table, row.column, row.primary_key, thing.state, thing.order_id, detail)
    return Referrer(row.table, row.column, row.primary_key)


@dataclass(frozen=True)
class Moment:
    """One line of a task's timeline."""

    at: dt.datetime
    text: str
    kind: str  # "ok", "bad", "run" or "" (the timeline's dot colour)


def timeline(details: queue_core.TaskDetails) -> list[Moment]:
    """A task's life from its row and its errors, oldest first.

    The row keeps the latest attempt's start and end only (a re-queue clears them); each failed attempt
    left its error with the time it failed, so together they tell the whole story.
    """
    task = details.task
    moments = [Moment(task["created_at"], "enqueued", "")]
    if task["run_at"] is not None and (task["run_at"] - task["created_at"]).total_seconds() > 0.5:
        moments.append(Moment(task["run_at"], "due (delayed, retrying or re-queued)", ""))
    for error in details.errors:
        text = f"attempt {error.attempt} failed: {error.error_type}: {error.message}"
        moments.append(Moment(error.failed_at, text, "bad"))
    if task["started_at"] is not None:
        moments.append(Moment(task["started_at"], f"attempt {task['attempts']} started", "run"))
    if task["finished_at"] is not None:
        state = task["state"]
        moments.append(Moment(task["finished_at"], state, "ok" if state == "succeeded" else "bad"))
    return sorted(moments, key=lambda moment: moment.at)
