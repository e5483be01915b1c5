"""The orders context's HTTP API (a flask-smorest blueprint): load with marshmallow -> service -> dump.

Placing an order answers 202 Accepted: the order exists and its screening runs in the background; the
``Location`` header says where to watch it, and the body shows each screening task's state
while the order still points at it, and the order's ``access_token``: the customer's key to it
(``orders.access_tokens``). Who may call what is decided by the composition root (``shop.access``).
IDs in paths use Flask's ``uuid`` converter, so a malformed ID is a 404 like an unknown one.
``InvalidTransition`` becomes 409 in the composition root (``shop/web/api.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flask_smorest import Blueprint, abort
from marshmallow import RAISE
from sqlalchemy.orm import Session

from orders import services
from orders.access_tokens import access_token, app_secret_keys
from orders.models import Order, Product
from orders.schemas import (
    PLACE_ORDER_EXAMPLE,
    IdempotencyKeyIn,
    OrderListIn,
    OrderOut,
    OrderPageOut,
    PlacedOrderOut,
    PlaceOrderIn,
    ProductOut,
)
from request_session import db, transaction

T = TypeVar("T")

blp = Blueprint("orders", __name__, url_prefix="/api", description="orders")


# Schemas are given as instances, built once: given a class, webargs builds a new schema on every request.
@blp.post("/orders")
@blp.arguments(PlaceOrderIn(), example=PLACE_ORDER_EXAMPLE)
@blp.arguments(IdempotencyKeyIn(), location="headers")
@blp.response(202, PlacedOrderOut, description="Accepted: screening runs in the background.")
@blp.alt_response(422, description="A field is invalid, a product is unknown, or the key was reused.")
def place_order(body: dict[str, Any], headers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Place an order; with an ``Idempotency-Key``, sending the same request again returns the same order.

    Keep the answer's ``access_token``: sent as ``Authorization: Bearer <token>``, it lets you read, cancel
    or delete this order (and only this one). The same order always has the same token.
    """
    key: str | None = headers.get("idempotency_key")

    def place(session: Session) -> tuple[services.PlacedOrder, dict[str, Any]]:
        try:
            placed = services.place_order(
                session,
                customer_email=body["customer_email"],
                shipping_country=body["shipping_country"],
                lines=[(line["sku"], line["quantity"]) for line in body["lines"]],
                idempotency_key=key,
            )
        except services.UnknownProducts as error:
            abort(422, message=str(error), errors={"json": {"lines": [str(error)]}})
        except services.IdempotencyKeyReused as error:
            abort(422, message=str(error), errors={"headers": {"Idempotency-Key": [str(error)]}})
        # Built inside the transaction that placed it, without reading the new tasks back: they are
        # pending (a replayed order's tasks are read).
        return placed, _shown(services.placed_with_task_states(session, placed))

    placed, presented = transaction(place)
    response_headers = {"Location": f"/api/orders/{placed.order.id}"}
    if placed.replayed:
        response_headers["Idempotent-Replayed"] = "true"
    presented["access_token"] = access_token(placed.order.id, app_secret_keys())
    return presented, response_headers


@blp.get("/orders")
@blp.arguments(OrderListIn(), location="query", unknown=RAISE)
@blp.response(200, OrderPageOut)
def list_orders(query: dict[str, Any]) -> dict[str, Any]:
    """Newest first. ``being_processed=true``: the orders pointing at a screening task right now."""
    session = db()
    found = services.list_orders(
        session,
        state=query["state"],
        being_processed=query["being_processed"],
        limit=query["limit"],
        before=query["before"],
    )
    full_page = len(found) == query["limit"]
    return {"orders": _present(session, found), "next_before": found[-1].id if full_page else None}


@blp.get("/orders/<uuid:order_id>")
@blp.response(200, OrderOut)
@blp.alt_response(404, description="No such order.")
def get_order(order_id: uuid.UUID) -> dict[str, Any]:
    """One order with its lines and the state of each screening task it points at."""
    session = db()
    return _present_one(session, _found(lambda: services.get_order(session, order_id)))


@blp.post("/orders/<uuid:order_id>/cancel")
@blp.response(200, OrderOut)
@blp.alt_response(404, description="No such order.")
@blp.alt_response(409, description="The order is shipped, rejected or its payment failed.")
def cancel_order(order_id: uuid.UUID) -> dict[str, Any]:
    """Cancel the order (cancelling a cancelled order changes nothing).

    The answer is final: a charge or a manifest in flight does not make the cancellation wait or bounce.
    A charge at the gateway is voided, or refunded once its answer is recorded; a parcel being booked
    with the carrier is withdrawn. Only a shipped order answers 409 (too late).
    """

    def cancel(session: Session) -> dict[str, Any]:
        order = _found(lambda: services.cancel_order(session, order_id))
        return _present_one(session, order)  # in the same transaction, as for placing

    return transaction(cancel)


@blp.delete("/orders/<uuid:order_id>")
@blp.response(204)
@blp.alt_response(404, description="No such order.")
@blp.alt_response(
    409,
    description="The order reached payment (awaiting payment, paid, shipped, payment failed or cancelled): "
    "money is or may have been involved, so the order and its Idempotency-Key stay.",
)
def delete_order(order_id: uuid.UUID) -> None:
    """Erase an order still screening or rejected (it never reached payment); its tasks will find nothing."""
    transaction(lambda session: _found(lambda: services.delete_order(session, order_id)))


@blp.get("/products")
@blp.response(200, ProductOut(many=True))
def list_products() -> list[dict[str, Any]]:
    """The catalogue, with the units still available to order."""
    return [_present_product(product) for product in services.list_products(db())]


def _found(call: Callable[[], T]) -> T:
    """Run a service call; an unknown order is answered 404."""
    try:
        return call()
    except services.OrderNotFound as error:
        abort(404, message=str(error))
        raise  # never reached: abort raises (flask_smorest has no type hints to tell mypy so)


def _present_one(session: Session, order: Order) -> dict[str, Any]:
    [presented] = _present(session, [order])
    return presented


def _present(session: Session, orders: Sequence[Order]) -> list[dict[str, Any]]:
    """Orders as the API shows them; every task state on the page comes from one query."""
    return [_shown(tracked) for tracked in services.with_task_states(session, orders)]


def _shown(tracked: services.TrackedOrder) -> dict[str, Any]:
    order = tracked.order
    return {
        "id": order.id,
        "state": order.state,
        "failure_reason": order.failure_reason,
        "customer_email": order.customer_email,
        "shipping_country": order.shipping_country,
        "currency": order.currency,
        "total_cents": order.total_cents,
        "lines": order.lines,
        "fraud_check_task": tracked.fraud_check_task,
        "stock_reservation_task": tracked.stock_reservation_task,
        "fraud_cleared_at": order.fraud_cleared_at,
        "stock_reserved_at": order.stock_reserved_at,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def _present_product(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "unit_price_cents": product.unit_price_cents,
        "currency": services.CURRENCY,
        "on_hand": product.on_hand,
        "reserved": product.reserved,
        "available": product.on_hand - product.reserved,
    }
