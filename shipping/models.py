"""The shipping context's table: one shipment per paid order, sent to the carrier in batches.

``shipping_task_id`` is the batch cardinality: a periodic dispatcher gathers the ready shipments and
points all of them at one new manifest task, in one transaction. The column is indexed, not unique.
Unlike the other contexts' pointers it is kept after the batch is sent: it is the record of which
shipments left together (pruning the task nulls it, see ``OnPrune.SET_NULL``), while ``state`` says
whether the batch went out.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, Index, MetaData, String, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from queue_core import uuid7
from queue_core.clock import UtcDateTime
from queue_core.models import NAMING  # the same constraint names everywhere make migrations readable


class ShippingBase(DeclarativeBase):
    """Declarative base of the shipping context; its metadata holds only this context's tables."""

    metadata = MetaData(naming_convention=NAMING)


class ShipmentState(enum.StrEnum):
    READY = "ready"  # waiting for the dispatcher
    IN_BATCH = "in_batch"  # in a carrier manifest that is queued or being sent
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


_STATE_LIST = ", ".join(f"'{state.value}'" for state in ShipmentState)


class InvalidTransition(Exception):  # noqa: N818 - reads as the problem it names
    """The shipment is not in a state that allows this change."""


class Shipment(ShippingBase):
    """The parcel for one order (referred to by ID only: orders are another context's)."""

    __tablename__ = "shipments"
    __table_args__ = (
        CheckConstraint(f"state IN ({_STATE_LIST})", name="known_state"),
        CheckConstraint("state <> 'in_batch' OR shipping_task_id IS NOT NULL", name="batch_has_task"),
        Index("ix_shipments_state_created_at", "state", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    state: Mapped[str] = mapped_column(String(20), default=ShipmentState.READY.value)
    destination_country: Mapped[str] = mapped_column(String(2))
    # Batch cardinality: many shipments, one task. Indexed, deliberately not unique.
    shipping_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    manifest_number: Mapped[str | None] = mapped_column(String(64))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    @property
    def shipment_state(self) -> ShipmentState:
        return ShipmentState(self.state)

    def _move(self, allowed_from: set[ShipmentState], to: ShipmentState) -> None:
        if self.shipment_state not in allowed_from:
            raise InvalidTransition(f"shipment {self.id} is {self.state}; it cannot become {to.value}")
        self.state = to.value
