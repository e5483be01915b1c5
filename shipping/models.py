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

# The queue's naming convention everywhere: the same constraint names make migrations readable.
from queue_core import NAMING_CONVENTION, UtcDateTime, uuid7


class ShippingBase(DeclarativeBase):
    """Declarative base of the shipping context; its metadata holds only this context's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ShipmentState(enum.StrEnum):
    READY = "ready"  # waiting for the dispatcher
    IN_BATCH = "in_batch"  # in a carrier manifest that is queued or being sent
    DISPATCHED = "dispatched"
    CANCELLED = "cancelled"


_STATE_LIST = ", ".join(f"'{state.value}'" for state in ShipmentState)


class InvalidTransition(Exception):  # noqa: N818 - reads as the problem it names
    """The shipment is not in a state that allows this change."""


class AlreadyDispatched(InvalidTransition):
    """The carrier already has the parcel: it is too late to withdraw the shipment (answered 409)."""


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

    @classmethod
    def for_order(cls, order_id: uuid.UUID, destination_country: str) -> Shipment:
        """A new shipment, ``ready`` for the next batch."""
        return cls(
            id=uuid7(),
            order_id=order_id,
            destination_country=destination_country,
            state=ShipmentState.READY.value,
        )

    @property
    def shipment_state(self) -> ShipmentState:
        return ShipmentState(self.state)

    def _move(self, allowed_from: set[ShipmentState], to: ShipmentState) -> None:
        if self.shipment_state not in allowed_from:
            raise InvalidTransition(f"shipment {self.id} is {self.state}; it cannot become {to.value}")
        self.state = to.value

    def join_batch(self, task_id: uuid.UUID) -> None:
        """Put a ready shipment into the manifest that task ``task_id`` will send."""
        self._move({ShipmentState.READY}, ShipmentState.IN_BATCH)
        self.shipping_task_id = task_id

    def dispatch(self, manifest_number: str, tracking_number: str, at: dt.datetime) -> None:
        """The carrier booked the parcel. The batch pointer stays: the record of who left together."""
        self._move({ShipmentState.IN_BATCH}, ShipmentState.DISPATCHED)
        self.manifest_number = manifest_number
        self.tracking_number = tracking_number
        self.dispatched_at = at

    def cancel(self) -> None:
        """Withdraw a shipment the carrier does not have yet; its batch goes on without it."""
        if self.shipment_state is ShipmentState.DISPATCHED:
            raise AlreadyDispatched(f"shipment {self.id} was dispatched; it can no longer be withdrawn")
        self._move({ShipmentState.READY, ShipmentState.IN_BATCH}, ShipmentState.CANCELLED)
        self.shipping_task_id = None

    def return_to_ready(self) -> None:
        """Take the shipment out of a batch that will never be sent, so that the next batch takes it."""
        self._move({ShipmentState.IN_BATCH}, ShipmentState.READY)
        self.shipping_task_id = None

    def forget_batch(self) -> None:
        """Drop the record of a finished shipment's batch whose task is gone or failed (repair only).

        An ``in_batch`` shipment cannot forget its batch (``return_to_ready`` is the way out): the
        pointer is what its manifest task finds it by.
        """
        if self.shipment_state not in {ShipmentState.DISPATCHED, ShipmentState.CANCELLED}:
            raise InvalidTransition(f"shipment {self.id} is {self.state}; its batch pointer is still in use")
        self.shipping_task_id = None
