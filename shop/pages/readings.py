"""What the pages read: orders with every task that works on them, a task's referencing rows described,
and the dashboard's numbers. Plain queries, each bounded by a limit or an index; nothing is cached.

The contexts own their tables; this module, part of the composition root, reads them the way the API
does (their models, read only) so that one page costs one query per context, not one per row. The queue is
read through ``queue_core``'s public functions, plus two small queries on its tables that it has no
function for yet (live workers with their in-flight tasks, and per-minute throughput); both go through
partial indexes (``ix_queue_tasks_running``, ``ix_queue_tasks_finished``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import queue_core
from orders import services as orders_services
from orders.models import Order, OrderState
from payments import services as payments_services
from payments.models import Payment
from queue_core._clock import db_now
from queue_core._models import task_table, worker_table
from shipping.models import Shipment

CHART_MINUTES = 10
CHART_ROW_LIMIT = 20_000  # finished tasks read for the chart at most; past that the chart says so


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
class InFlight:
    """A running task, as a worker's row on the dashboard lists it."""

    id: uuid.UUID
    name: str
    started_at: dt.datetime | None
    progress: float | None


@dataclass(frozen=True)
class LiveWorker:
    """A worker whose lease has not run out, with the tasks it holds now."""

    id: uuid.UUID
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: dt.datetime
    heartbeat_age_seconds: float
    in_flight: list[InFlight] = field(default_factory=list)


def live_workers(session: Session) -> list[LiveWorker]:
    """Workers still holding their lease, each with its running tasks (the partial index of running rows)."""
    now = session.execute(select(db_now())).scalar_one()
    workers = [
        LiveWorker(
            id=row.id,
            hostname=row.hostname,
            pid=row.pid,
            queues=list(row.queues or []),
            concurrency=row.concurrency,
            started_at=row.started_at,
            heartbeat_age_seconds=max(0.0, (now - row.heartbeat_at).total_seconds()),
        )
        for row in session.execute(
            select(worker_table)
            .where(worker_table.c.lease_expires_at > db_now())
            .order_by(worker_table.c.started_at)
        )
    ]
    by_id = {worker.id: worker for worker in workers}
    running = session.execute(
        select(
            task_table.c.id,
            task_table.c.name,
            task_table.c.worker_id,
            task_table.c.started_at,
            task_table.c.progress,
        )
        .where(task_table.c.state == queue_core.TaskState.RUNNING.value)
        .limit(500)
    )
    for row in running:
        holder = by_id.get(row.worker_id)
        if holder is not None:
            holder.in_flight.append(InFlight(row.id, row.name, row.started_at, row.progress))
    return workers


@dataclass(frozen=True)
class MinuteBucket:
    """One minute of the chart: tasks that finished in it and their pickup latency."""

    start: dt.datetime
    succeeded: int
    failed: int  # dead, discarded, cancelled or expired
    p50_pickup_ms: float | None


@dataclass(frozen=True)
class Throughput:
    """The last minutes, oldest first; ``truncated`` when more tasks finished than the chart reads."""

    minutes: list[MinuteBucket]
    truncated: bool


def throughput(session: Session, minutes: int = CHART_MINUTES) -> Throughput:
    """Tasks finished per minute over the last ``minutes``, with the median pickup latency of each minute.

    Reads only tasks finished in the window, through the partial index on ``finished_at``, at most
    ``CHART_ROW_LIMIT`` of them: its cost follows the recent throughput, not the length of the history.
    Pickup latency is ``started_at - run_at`` of the last attempt (how long a due task waited for a worker).
    """
    now = session.execute(select(db_now())).scalar_one()
    end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = end - dt.timedelta(minutes=minutes)
    finished = [state.value for state in queue_core.FINISHED_STATES]
    rows = session.execute(
        select(task_table.c.state, task_table.c.finished_at, task_table.c.started_at, task_table.c.run_at)
        .where(task_table.c.state.in_(finished), task_table.c.finished_at >= start)
        .limit(CHART_ROW_LIMIT)
    ).all()
    succeeded = [0] * minutes
    failed = [0] * minutes
    latencies: list[list[float]] = [[] for _ in range(minutes)]
    for state, finished_at, started_at, run_at in rows:
        slot = int((finished_at - start).total_seconds() // 60)
        if not 0 <= slot < minutes:
            continue
        if state == queue_core.TaskState.SUCCEEDED.value:
            succeeded[slot] += 1
        else:
            failed[slot] += 1
        if started_at is not None:
            latencies[slot].append(max(0.0, (started_at - run_at).total_seconds() * 1000.0))
    buckets = [
        MinuteBucket(
            start=start + dt.timedelta(minutes=n),
            succeeded=succeeded[n],
            failed=failed[n],
            p50_pickup_ms=statistics.median(latencies[n]) if latencies[n] else None,
        )
        for n in range(minutes)
    ]
    return Throughput(buckets, truncated=len(rows) >= CHART_ROW_LIMIT)


@dataclass(frozen=True)
class WorkerRecord:
    """The worker that holds (or last held) a task's lease, as far as the queue still remembers it."""

    id: uuid.UUID
    hostname: str
    pid: int
    heartbeat_at: dt.datetime
    alive: bool


def worker_of(session: Session, worker_id: uuid.UUID | None) -> WorkerRecord | None:
    """The worker row with this ID (None when the worker has stopped and deregistered)."""
    if worker_id is None:
        return None
    row = session.execute(
        select(
            worker_table.c.id,
            worker_table.c.hostname,
            worker_table.c.pid,
            worker_table.c.heartbeat_at,
            (worker_table.c.lease_expires_at > db_now()).label("alive"),
        ).where(worker_table.c.id == worker_id)
    ).first()
    if row is None:
        return None
    return WorkerRecord(row.id, row.hostname, row.pid, row.heartbeat_at, bool(row.alive))


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
