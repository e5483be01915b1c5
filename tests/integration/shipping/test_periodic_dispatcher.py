"""The dispatcher runs on a schedule: one dispatcher task per tick however many workers run, and every
ready shipment leaves in a batch without anyone asking."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from queue_core._models import task_table
from shipping.events import ShipmentDispatched
from shipping.models import ShipmentState
from shipping.tasks import DISPATCH_EVERY_SECONDS, registry
from shop.bootstrap import session_info
from shop.database import create_engine_from_url
from tests.integration.shipping.conftest import load, ready_shipments
from tests.support.domain import EventRecorder
from tests.support.inprocess import running_workers, scheduled_ticks, wait_for

TICKS_TO_WATCH = 3


@pytest.fixture
def two_engines(database_url: str) -> Iterator[list[Engine]]:
    """One engine per worker, as two worker processes would have."""
    engines = [create_engine_from_url(database_url) for _ in range(2)]
    yield engines
    for each in engines:
        each.dispose()


def test_two_workers_enqueue_one_dispatcher_per_tick_and_ship_every_ready_shipment(
    two_engines: list[Engine], recorder: EventRecorder
) -> None:
    observer = two_engines[0]
    early = ready_shipments(observer, recorder, 3)

    with running_workers(two_engines, registry, session_info=session_info(react=recorder)):
        wait_for(
            lambda: {s.shipment_state for s in load(observer, early)} == {ShipmentState.DISPATCHED},
            what="the early shipments being dispatched",
        )
        late = ready_shipments(observer, recorder, 2)
        wait_for(
            lambda: {s.shipment_state for s in load(observer, late)} == {ShipmentState.DISPATCHED},
            what="the late shipments being dispatched",
        )
        wait_for(
            lambda: len(scheduled_ticks(observer, "shipping.dispatch_shipments")) >= TICKS_TO_WATCH,
            what=f"{TICKS_TO_WATCH} ticks of the dispatcher",
        )

    ticks = [t["tick_at"] for t in scheduled_ticks(observer, "shipping.dispatch_shipments")]
    assert len(ticks) == len(set(ticks))  # no tick enqueued twice, whichever worker won it
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert all(gap == dt.timedelta(seconds=DISPATCH_EVERY_SECONDS) for gap in gaps), gaps

    shipments = load(observer, early + late)
    with observer.connect() as connection:
        manifests = set(
            connection.execute(
                select(task_table.c.id).where(task_table.c.name == "shipping.send_manifest")
            ).scalars()
        )
    assert manifests == {s.shipping_task_id for s in shipments}  # no empty manifest task
    assert {s.shipping_task_id for s in load(observer, early)}.isdisjoint(
        {s.shipping_task_id for s in load(observer, late)}
    )
    dispatched = recorder.of_type(ShipmentDispatched)
    assert sorted(e.shipment_id for e in dispatched) == sorted(early + late)
