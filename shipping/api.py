"""The shipping context's HTTP API (a flask-smorest blueprint): load with marshmallow -> service -> dump.

Read-only: shipments are created and withdrawn by reactions to the other contexts' events, and batched
by the periodic dispatcher, never by a client. Unknown IDs, and IDs that are not UUIDs, are answered 404.
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from flask_smorest import Blueprint, abort
from marshmallow import RAISE

from queue_core import TaskNotFoundError, TaskPointer, state_of
from request_session import db
from shipping import services
from shipping.models import Shipment
from shipping.schemas import BatchSchema, ShipmentListQuerySchema, ShipmentPageSchema, ShipmentSchema

blp = Blueprint("shipping", __name__, url_prefix="/api", description="shipping")


@blp.get("/shipments")
# unknown=RAISE: webargs drops unknown query parameters by default; a typo should be a 422, not ignored.
@blp.arguments(ShipmentListQuerySchema(), location="query", as_kwargs=True, unknown=RAISE)
@blp.response(200, ShipmentPageSchema)
def list_shipments(**query: Any) -> dict[str, Any]:
    """Shipments, newest first, optionally in one state, each with its batch's task state."""
    session = db()
    shipments = services.list_shipments(session, **query)
    full_page = len(shipments) == query["limit"]
    return {
        "shipments": services.with_task_states(session, shipments),
        "next_before": shipments[-1].id if full_page else None,
    }


@blp.get("/shipments/<uuid:shipment_id>")
@blp.response(200, ShipmentSchema)
@blp.alt_response(404, description="No shipment has this ID.")
def get_shipment(shipment_id: uuid.UUID) -> services.TrackedShipment:
    """A shipment, with the state of its batch's manifest task."""
    return _tracked(services.get_shipment(db(), shipment_id), f"no shipment {shipment_id}")


@blp.get("/orders/<uuid:order_id>/shipment")
@blp.response(200, ShipmentSchema)
@blp.alt_response(404, description="The order has no shipment (not paid yet, or no such order).")
def get_order_shipment(order_id: uuid.UUID) -> services.TrackedShipment:
    """The shipment of an order, once the order was paid."""
    return _tracked(services.shipment_for_order(db(), order_id), f"no shipment for order {order_id}")


@blp.get("/shipping/batches/<uuid:task_id>")
@blp.response(200, BatchSchema)
@blp.alt_response(404, description="No shipment points at this task and no such task exists.")
def get_batch(task_id: uuid.UUID) -> dict[str, Any]:
    """A batch: its manifest task and every shipment pointing at it (an indexed equality lookup).

    A batch whose shipments were all withdrawn is shown empty while its task exists; a task that was
    pruned is shown with state null while shipments still point at it.
    """
    session = db()
    shipments = services.batch(session, task_id)
    try:
        state = state_of(session, task_id)
    except TaskNotFoundError:
        if not shipments:
            _not_found(f"no batch {task_id}")
        state = None
    return {
        "task": TaskPointer(task_id, state),
        "shipments": services.with_task_states(session, shipments),
    }


def _tracked(shipment: Shipment | None, missing: str) -> services.TrackedShipment:
    if shipment is None:
        _not_found(missing)
    [tracked] = services.with_task_states(db(), [shipment])
    return tracked


def _not_found(message: str) -> NoReturn:
    abort(404, message=message)
    raise AssertionError("unreachable: flask_smorest.abort raises (it is untyped, so mypy cannot know)")
