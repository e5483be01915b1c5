"""What the shipping API shows and accepts, as marshmallow schemas.

A shipment is shown with its batch (``batch_task``: the manifest task's ID and current state), so a
client sees whether its parcel's manifest is queued, being sent or sent, without asking the queue.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from queue_core import TaskState
from shipping.models import ShipmentState
from shipping.services import DEFAULT_PAGE, MAX_PAGE


class ShipmentTaskPointerOut(Schema):
    """A task a shipment points at (its batch's manifest task), and its state now: null once pruned."""

    id = fields.UUID(required=True)
    state = fields.Enum(TaskState, by_value=True, allow_none=True)


class ShipmentSchema(Schema):
    """One shipment (dumped from a ``services.TrackedShipment``)."""

    id = fields.UUID(attribute="shipment.id")
    order_id = fields.UUID(attribute="shipment.order_id")
    state = fields.String(attribute="shipment.state", metadata={"enum": [s.value for s in ShipmentState]})
    destination_country = fields.String(attribute="shipment.destination_country")
    batch_task = fields.Nested(ShipmentTaskPointerOut, allow_none=True)
    manifest_number = fields.String(attribute="shipment.manifest_number", allow_none=True)
    tracking_number = fields.String(attribute="shipment.tracking_number", allow_none=True)
    created_at = fields.AwareDateTime(attribute="shipment.created_at")
    dispatched_at = fields.AwareDateTime(attribute="shipment.dispatched_at", allow_none=True)


class ShipmentPageSchema(Schema):
    """A page of shipments, newest first; pass ``next_before`` as ``before`` for the next page."""

    shipments = fields.List(fields.Nested(ShipmentSchema))
    next_before = fields.UUID(allow_none=True)


class ShipmentListQuerySchema(Schema):
    """``GET /api/shipments`` filters; unknown parameters are refused (422)."""

    state = fields.Enum(ShipmentState, by_value=True, load_default=None)
    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(min=1, max=MAX_PAGE))
    before = fields.UUID(load_default=None)


class BatchSchema(Schema):
    """A batch: its manifest task, and every shipment that points at it (the withdrawn ones no longer do)."""

    task = fields.Nested(ShipmentTaskPointerOut, required=True)
    shipments = fields.List(fields.Nested(ShipmentSchema))
