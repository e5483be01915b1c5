"""Fixtures and helpers for the shipping context's tests: shipments made through its own services.

Most tests run workers on ``manual_registry``: shipping's tasks and its batch reference without the
periodic dispatcher, so that a test decides when a batch is formed. The periodic schedule has a test of
its own, on the real ``shipping.tasks.registry``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import TaskRegistry
from shipping import services
from shipping.models import Shipment
from shipping.tasks import registry as shipping_registry
from tests.support.domain import EventRecorder, recording_session

COUNTRIES = ("NL", "DE", "FR", "BE", "GB")


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def manual_registry() -> TaskRegistry:
    """Shipping's tasks and references, without the dispatcher's schedule."""
    return without_schedules(shipping_registry)


def without_schedules(source: TaskRegistry) -> TaskRegistry:
    registry = TaskRegistry()
    for definition in source.definitions:
        registry.add(definition)
    for reference in source.references:
        registry.track_reference(reference.column, on_prune=reference.on_prune, repair=reference.repair)
    return registry


def ready_shipments(engine: Engine, recorder: EventRecorder, count: int) -> list[uuid.UUID]:
    """Create ``count`` ready shipments for new orders, committed, one transaction each (oldest first).

    Each a few milliseconds after the previous one: IDs (UUIDv7) order by the millisecond only, and
    SQLite's ``created_at`` by the second, so "oldest first" needs the creations a millisecond apart.
    """
    ids = []
    for n in range(count):
        time.sleep(0.002)
        with recording_session(engine, recorder) as session:
            shipment = services.create_shipment(
                session, order_id=uuid.uuid4(), destination_country=COUNTRIES[n % len(COUNTRIES)]
            )
            session.flush()
            ids.append(shipment.id)
    return ids


def dispatch(
    engine: Engine, recorder: EventRecorder, *, limit: int = services.MAX_BATCH_SIZE
) -> uuid.UUID | None:
    """Form one batch and commit it; returns its manifest task's ID."""
    with recording_session(engine, recorder) as session:
        return services.dispatch_ready_shipments(session, limit=limit)


def load(engine: Engine, shipment_ids: Sequence[uuid.UUID]) -> list[Shipment]:
    """The shipments as committed now, in the order of ``shipment_ids``."""
    with Session(engine, expire_on_commit=False) as session:
        found = {s.id: s for s in session.scalars(select(Shipment).where(Shipment.id.in_(shipment_ids)))}
        session.expunge_all()
    return [found[shipment_id] for shipment_id in shipment_ids]
