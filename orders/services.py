"""The orders context's use cases: plain functions taking a ``Session`` first. None of them commits.

The caller commits: a web view after the service returns, or the worker with the task that ran a
reaction. Functions that change an order lock its row first (``SELECT ... FOR UPDATE``), so they
serialise with the screening handlers and with each other.

The two screening tasks ``place_order`` enqueues are declared here, with what enqueueing them needs;
their handlers (``tasks``) import this module and bind to them, and this module never imports ``tasks``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, lazyload

import queue_core
from orders import events, screening, stock
from orders.events import OrderCancelled
from orders.models import Order, OrderState, Product
from queue_core import RetryPolicy, TaskDefinition

CURRENCY = "EUR"
DEFAULT_PAGE = 50
MAX_PAGE = 100

# Both screening steps are short database work; a failure is a lock timeout or a lost connection, which a
# few quick retries outlast. Repair rejects the order if they do not.
SCREENING_RETRY = RetryPolicy(max_attempts=5, base_seconds=0.5, cap_seconds=30.0)
SCREEN_FOR_FRAUD = TaskDefinition.declare("orders.screen_for_fraud", queue="orders", retry=SCREENING_RETRY)
RESERVE_STOCK = TaskDefinition.declare("orders.reserve_stock", queue="orders", retry=SCREENING_RETRY)


class OrderNotFound(LookupError):  # noqa: N818 - reads as the problem it names
    """No order has this ID (answered 404 by the API)."""


class UnknownProducts(ValueError):  # noqa: N818
    """Some ordered SKUs are not in the catalogue (answered 422 naming the field ``lines``)."""

    def __init__(self, skus: Sequence[str]) -> None:
        self.skus = sorted(skus)
        super().__init__(f"unknown products: {', '.join(self.skus)}")


class IdempotencyKeyReused(ValueError):  # noqa: N818
    """The key was first used for a different request (answered 422 naming the ``Idempotency-Key`` header)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__("this Idempotency-Key was already used for a different order")


@dataclass(frozen=True)
class PlacedOrder:
    """The order a placement produced; ``replayed`` when an earlier request with the same key made it."""

    order: Order
    replayed: bool


def request_fingerprint(customer_email: str, shipping_country: str, lines: Sequence[tuple[str, int]]) -> str:
    """SHA-256 of the canonical request: email lower-cased, country, lines sorted by SKU."""
    canonical = {
        "customer_email": customer_email.strip().lower(),
        "shipping_country": shipping_country,
        "lines": sorted([sku, quantity] for sku, quantity in lines),
    }
    encoded = json.dumps(canonical, separators=(",", ":"), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


def place_order(
    session: Session,
    *,
    customer_email: str,
    shipping_country: str,
    lines: Sequence[tuple[str, int]],
    idempotency_key: str | None = None,
) -> PlacedOrder:
    """Create an order priced from the catalogue, with its two screening tasks enqueued and pointed at.

    Prices come from ``products`` (a client never sets one); ``UnknownProducts`` names SKUs that are not
    there. With an ``idempotency_key``, the same key and the same request give back the first order
    (``replayed=True``); the same key with a different request raises ``IdempotencyKeyReused``.

    A keyed request is inserted first and looked up only if the key is taken: almost every key is new,
    so asking first would cost every placement a query that only a retry needs. The row goes in inside
    a savepoint; the UNIQUE key refuses a repeat (on PostgreSQL a concurrent twin waits on the index for
    the first transaction, then is refused), its savepoint (tasks included) is rolled back, and the
    first order is read instead.
    """
    if not lines:
        raise ValueError("an order needs at least one line")
    fingerprint = request_fingerprint(customer_email, shipping_country, lines)
    try:
        order = _priced_order(session, customer_email, shipping_country, lines, idempotency_key, fingerprint)
        if idempotency_key is None:
            _insert_with_its_tasks(session, order)  # a fresh UUIDv7: nothing to collide with
            return PlacedOrder(order, replayed=False)
        with session.begin_nested():
            _insert_with_its_tasks(session, order)
    except IntegrityError:
        if idempotency_key is None:
            raise
        earlier = _order_with_key(session, idempotency_key)
        if earlier is None:
            raise
        return _replay(earlier, idempotency_key, fingerprint)
    return PlacedOrder(order, replayed=False)


def _priced_order(
    session: Session,
    customer_email: str,
    shipping_country: str,
    lines: Sequence[tuple[str, int]],
    idempotency_key: str | None,
    fingerprint: str,
) -> Order:
    prices = _prices_of(session, {sku for sku, _ in lines})
    return Order.for_customer(
        customer_email.strip(),
        shipping_country,
        CURRENCY,
        [(sku, quantity, prices[sku]) for sku, quantity in lines],
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
    )


def _insert_with_its_tasks(session: Session, order: Order) -> None:
    """Enqueue both screening tasks (one INSERT) and write their IDs in the same INSERT as the order:
    the tasks exist exactly when it does."""
    fraud_check, stock_reservation = queue_core.enqueue_many(
        session, [SCREEN_FOR_FRAUD.spec(), RESERVE_STOCK.spec()]
    )
    order.fraud_check_task_id, order.stock_reservation_task_id = fraud_check, stock_reservation
    session.add(order)
    session.flush()


def cancel_order(session: Session, order_id: uuid.UUID) -> Order:
    """Cancel the order: stop its screening tasks through their IDs, release its stock, announce it.

    Cancelling a cancelled order returns it unchanged and announces nothing. A shipped, rejected or
    payment-failed order raises ``InvalidTransition``.
    """
    order = _locked(session, order_id)
    if order.order_state is OrderState.CANCELLED:
        return order
    order.cancel()
    screening.stop_screening_tasks(session, order)
    stock.release(session, order)
    events.publish(session, OrderCancelled(order.id))
    return order


def delete_order(session: Session, order_id: uuid.UUID) -> None:
    """Erase an order that never reached payment (screening or rejected); its stock is released.

    Any later order stays: a payment may have been asked for (see ``DELETABLE_ORDER_STATES``).

    Its screening tasks are deliberately left alone: when they run they find no order pointing at them
    and end ``discarded`` after one attempt. That is the inverted pattern's answer to "the object was
    deleted before its task ran".
    """
    order = _locked(session, order_id)
    order.check_deletable()
    stock.release(session, order)
    session.delete(order)
    session.flush()


def mark_paid(session: Session, order_id: uuid.UUID) -> Order:
    """Reaction to the payment being captured."""
    order = _locked(session, order_id)
    order.mark_paid()
    return order


def mark_payment_failed(session: Session, order_id: uuid.UUID, reason: str) -> Order:
    """Reaction to the charge failing for good: the order ends and its stock goes back on the shelf."""
    order = _locked(session, order_id)
    order.mark_payment_failed(reason)
    stock.release(session, order)
    return order


def mark_shipped(session: Session, order_id: uuid.UUID) -> Order:
    """Reaction to the carrier taking the parcel; locks the order only, never a ``products`` row.

    The order's units were counted as sold when they were reserved, and stay so (see ``orders.stock``):
    shipping changes what is available by nothing. This runs inside the manifest task for a whole batch
    of orders; touching stock here would lock products in shipment order and deadlock with reservations.
    """
    order = _locked(session, order_id)
    order.mark_shipped()
    return order


def destination_of(session: Session, order_id: uuid.UUID) -> str:
    """The country the order ships to (what shipping needs to know, and no more).

    Read from the session's copy when the transaction has the order loaded already (marking it paid did),
    so the reaction that creates its shipment costs no query."""
    order = session.get(Order, order_id, options=[lazyload(Order.lines)])
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order.shipping_country


def get_order(session: Session, order_id: uuid.UUID) -> Order:
    """The order with its lines, in one query (a join); raises ``OrderNotFound``."""
    order = session.get(Order, order_id, options=[joinedload(Order.lines)])
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order


def list_orders(
    session: Session,
    *,
    state: OrderState | str | None = None,
    being_processed: bool = False,
    limit: int = DEFAULT_PAGE,
    before: uuid.UUID | None = None,
) -> list[Order]:
    """Newest first, ``limit`` at a time; pass the last ID seen as ``before`` for the next page.

    ``being_processed`` is the inverted pattern's direct query: an order is being worked on exactly when
    it points at a task, ``fraud_check_task_id IS NOT NULL OR stock_reservation_task_id IS NOT NULL``,
    answered from the two partial unique indexes that hold only such rows. IDs are UUIDv7, so ordering
    by ID is ordering by creation.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    query = select(Order).order_by(Order.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Order.state == OrderState(state).value)
    if being_processed:
        query = query.where(
            or_(Order.fraud_check_task_id.is_not(None), Order.stock_reservation_task_id.is_not(None))
        )
    if before is not None:
        query = query.where(Order.id < before)
    return list(session.scalars(query))


def list_products(session: Session) -> list[Product]:
    """The catalogue, by SKU."""
    return list(session.scalars(select(Product).order_by(Product.sku)))


@dataclass(frozen=True)
class TrackedOrder:
    """An order with the screening tasks working on it: what the API shows."""

    order: Order
    fraud_check_task: queue_core.TaskPointer | None
    stock_reservation_task: queue_core.TaskPointer | None


def placed_with_task_states(session: Session, placed: PlacedOrder) -> TrackedOrder:
    """What placing answers: a new order's two tasks are ``pending`` by construction (enqueued in this
    very transaction, so no worker has seen them), and only a replayed order's states are read."""
    if placed.replayed:
        [tracked] = with_task_states(session, [placed.order])
        return tracked
    order = placed.order
    pending = queue_core.TaskState.PENDING
    fraud_check, stock_reservation = order.fraud_check_task_id, order.stock_reservation_task_id
    assert fraud_check is not None and stock_reservation is not None  # place_order set both
    return TrackedOrder(
        order,
        queue_core.TaskPointer(fraud_check, pending),
        queue_core.TaskPointer(stock_reservation, pending),
    )


def with_task_states(session: Session, orders: Sequence[Order]) -> list[TrackedOrder]:
    """Each order with the current state of its two screening tasks, read in one query for all of them."""
    pointer = queue_core.task_pointers(
        session, [task_id for o in orders for task_id in (o.fraud_check_task_id, o.stock_reservation_task_id)]
    )
    return [
        TrackedOrder(o, pointer(o.fraud_check_task_id), pointer(o.stock_reservation_task_id)) for o in orders
    ]


def _locked(session: Session, order_id: uuid.UUID) -> Order:
    # Lines load only if used (a reservation or release does): marking paid or shipped needs none.
    order = session.get(
        Order, order_id, with_for_update=True, populate_existing=True, options=[lazyload(Order.lines)]
    )
    if order is None:
        raise OrderNotFound(f"no order {order_id}")
    return order


def _order_with_key(session: Session, key: str) -> Order | None:
    return session.scalars(select(Order).where(Order.idempotency_key == key)).one_or_none()


def _replay(order: Order, key: str, fingerprint: str) -> PlacedOrder:
    if order.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    return PlacedOrder(order, replayed=True)


def _prices_of(session: Session, skus: set[str]) -> dict[str, int]:
    rows = session.execute(select(Product.sku, Product.unit_price_cents).where(Product.sku.in_(skus)))
    prices = {sku: price for sku, price in rows}
    unknown = skus - prices.keys()
    if unknown:
        raise UnknownProducts(sorted(unknown))
    return prices
