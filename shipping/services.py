"""The shipping context's use cases: plain functions taking the caller's session. None of them commits.

The batch is the point of this context. ``dispatch_ready_shipments`` gathers every ready shipment and
points them all at ONE new ``send_manifest`` task, in the caller's transaction: the shipments and their
task commit together or not at all, and the task carries no arguments (its handler finds its shipments
by its own ID, books them with the carrier and hands the manifest to ``record_manifest``).

The manifest task is declared here (``SEND_MANIFEST``), with what enqueueing it needs; its handler
(``tasks``) imports this module and binds to it, and this module never imports ``tasks``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import queue_core
from queue_core import RetryPolicy, TaskDefinition
from shipping import carrier, events
from shipping.models import AlreadyDispatched, InvalidTransition, Shipment, ShipmentState

__all__ = [
    "AlreadyDispatched",
    "InvalidTransition",
    "TrackedShipment",
    "batch",
    "cancel_shipment_for_order",
    "create_shipment",
    "dispatch_ready_shipments",
    "get_shipment",
    "list_shipments",
    "parcels_in_batch",
    "record_manifest",
    "shipment_for_order",
    "with_task_states",
]

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_BATCH_SIZE = 200  # parcels on one manifest; the rest wait for the next tick

SEND_MANIFEST = TaskDefinition.declare(
    "shipping.send_manifest", queue="shipping", retry=RetryPolicy(max_attempts=8, base_seconds=2.0)
)


def create_shipment(session: Session, *, order_id: uuid.UUID, destination_country: str) -> Shipment:
    """The order's shipment, ``ready`` for the next batch; a second call returns the existing one.

    ``order_id`` is UNIQUE, so two concurrent calls cannot both create one: the loser's INSERT fails
    inside a savepoint, and it returns the winner's row instead.
    """
    shipment = Shipment.for_order(order_id, destination_country)
    try:
        # Insert first, in a savepoint: if this order has a shipment already (an earlier call, or another
        # transaction's just now), the UNIQUE order_id refuses ours and the existing one is returned; no
        # lookup beforehand for the common first call. (Its pointer stays empty until a dispatch batches it.)
        with session.begin_nested():
            session.add(shipment)
            session.flush()
    except IntegrityError:
        winner = shipment_for_order(session, order_id)
        if winner is None:  # the failure was about something else
            raise
        return winner
    return shipment


def cancel_shipment_for_order(session: Session, order_id: uuid.UUID) -> Shipment | None:
    """Withdraw the order's shipment if the carrier does not have it yet; returns it (None if none).

    A ready or batched shipment becomes ``cancelled`` and leaves its batch (the manifest is sent without
    it). A dispatched one raises ``AlreadyDispatched`` (answered 409: too late), so the caller's whole
    cancellation rolls back. A cancelled one is left as it is.

    The row is taken with ``FOR UPDATE NOWAIT``: this never waits for a manifest task. That task locks
    its shipments only once the carrier has answered, while it records the booking, and then (through
    ``ShipmentDispatched``) locks their orders, which the caller already holds: waiting here could
    deadlock. In that moment this raises at once with PostgreSQL's ``LockNotAvailable`` (a SQLAlchemy
    ``OperationalError``); the caller rolls back and runs its whole transaction again a few milliseconds
    later (``request_session.transaction`` does that for the API), and then finds the shipment dispatched
    (too late) or still withdrawable. While the carrier is booking, the shipment is not locked: it is
    withdrawn, and the booking, when recorded, leaves it out. (SQLite ignores NOWAIT; there one writer at
    a time keeps the two apart.)
    """
    shipment = session.scalars(
        select(Shipment).where(Shipment.order_id == order_id).with_for_update(nowait=True)
    ).one_or_none()
    if shipment is None or shipment.shipment_state is ShipmentState.CANCELLED:
        return shipment
    shipment.cancel()
    return shipment


def dispatch_ready_shipments(session: Session, *, limit: int = MAX_BATCH_SIZE) -> uuid.UUID | None:
    """Point up to ``limit`` ready shipments, oldest first, at one new manifest task; returns its ID.

    ``FOR UPDATE SKIP LOCKED`` makes concurrent dispatchers take disjoint sets: rows another dispatcher
    has selected (and not yet committed) are skipped, never waited for or taken twice. When nothing is
    ready, no task is enqueued and None is returned: there are no empty manifests. (SQLite ignores the
    clause; there one writer at a time gives the same guarantee.)
    """
    ready = session.scalars(
        select(Shipment)
        .where(Shipment.state == ShipmentState.READY.value)
        .order_by(Shipment.created_at, Shipment.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ready:
        return None
    task_id = SEND_MANIFEST.enqueue(session)
    for shipment in ready:
        shipment.join_batch(task_id)
    return task_id


def parcels_in_batch(session: Session, task_id: uuid.UUID) -> list[carrier.Parcel]:
    """The parcels manifest task ``task_id`` is to book: its batch's shipments still waiting, oldest first."""
    waiting = session.scalars(
        select(Shipment)
        .where(Shipment.shipping_task_id == task_id, Shipment.state == ShipmentState.IN_BATCH.value)
        .order_by(Shipment.id)
    )
    return [carrier.Parcel(shipment.id, shipment.destination_country) for shipment in waiting]


def record_manifest(session: Session, task_id: uuid.UUID, manifest: carrier.Manifest) -> list[Shipment]:
    """The carrier booked the batch of ``task_id``: each shipment still in it is dispatched, and says so.

    The batch's rows are locked now, in ID order, once the carrier has answered. A shipment withdrawn
    while the carrier was booking (its order cancelled) left the batch meanwhile and is not among them:
    its label goes unused and the parcel is never handed over. A shipment in the batch that the carrier
    did not book cannot happen (nothing joins a batch after its dispatch); if it did, the task fails and
    its retry books the batch again, under the same key.
    """
    shipments = session.scalars(
        select(Shipment)
        .where(Shipment.shipping_task_id == task_id, Shipment.state == ShipmentState.IN_BATCH.value)
        .order_by(Shipment.id)
        .with_for_update()
    ).all()
    unbooked = [shipment.id for shipment in shipments if shipment.id not in manifest.tracking_numbers]
    if unbooked:
        raise RuntimeError(f"manifest {manifest.manifest_number} does not book shipments {unbooked}")
    now = dt.datetime.now(dt.UTC)
    for shipment in shipments:
        tracking_number = manifest.tracking_numbers[shipment.id]
        shipment.dispatch(manifest.manifest_number, tracking_number, now)
        events.publish(
            session,
            events.ShipmentDispatched(
                order_id=shipment.order_id, shipment_id=shipment.id, tracking_number=tracking_number
            ),
        )
    return list(shipments)


def get_shipment(session: Session, shipment_id: uuid.UUID) -> Shipment | None:
    """The shipment with this ID, or None."""
    return session.get(Shipment, shipment_id)


def shipment_for_order(session: Session, order_id: uuid.UUID) -> Shipment | None:
    """The order's shipment, or None (orders that were never paid have none)."""
    return session.scalars(select(Shipment).where(Shipment.order_id == order_id)).one_or_none()


def list_shipments(
    session: Session,
    *,
    state: ShipmentState | None = None,
    shipping_task_id: uuid.UUID | None = None,
    limit: int = DEFAULT_PAGE,
    before: uuid.UUID | None = None,
) -> list[Shipment]:
    """Shipments, newest first, optionally of one state or one batch.

    Pages by keyset: ``before`` is the ID of the last shipment of the previous page. IDs are UUIDv7, so
    their order is the order of creation.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    query = select(Shipment).order_by(Shipment.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Shipment.state == state.value)
    if shipping_task_id is not None:
        query = query.where(Shipment.shipping_task_id == shipping_task_id)
    if before is not None:
        query = query.where(Shipment.id < before)
    return list(session.scalars(query))


def batch(session: Session, task_id: uuid.UUID) -> list[Shipment]:
    """Every shipment pointing at manifest task ``task_id``, oldest first (an indexed equality lookup)."""
    query = select(Shipment).where(Shipment.shipping_task_id == task_id).order_by(Shipment.id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class TrackedShipment:
    """A shipment with its batch's manifest task: what the API shows."""

    shipment: Shipment
    batch_task: queue_core.TaskPointer | None


def with_task_states(session: Session, shipments: Sequence[Shipment]) -> list[TrackedShipment]:
    """Each shipment with the current state of its batch's task, read in one query for all of them."""
    pointer = queue_core.task_pointers(session, [s.shipping_task_id for s in shipments])
    return [TrackedShipment(s, pointer(s.shipping_task_id)) for s in shipments]
