"""A manifest task that fails: a retry books the same manifest; a dead one's batch goes out with the next."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from queue_core import (
    TaskRegistry,
    TaskState,
    cancel,
    find_dangling,
    prune,
    repair_dangling,
    requeue,
)
from queue_core.testing import drain
from shipping.events import ShipmentDispatched
from shipping.models import ShipmentState
from shipping.tasks import registry as shipping_registry
from shop.bootstrap import session_info
from tests.integration.shipping.conftest import dispatch, load, ready_shipments
from tests.support.domain import EventRecorder
from tests.support.inprocess import backdate_finished, task_exists

RETENTION_SECONDS = 3600.0


class TruckBreaksDownError(Exception):
    """What a reaction raises to make a manifest task fail after the carrier booked it."""


class FailingReactions(EventRecorder):
    """Records every event, and refuses the first ``failures`` calls (after recording them)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def __call__(self, session: Session, event: Any) -> None:
        super().__call__(session, event)
        if self.failures > 0:
            self.failures -= 1
            raise TruckBreaksDownError("the van would not start")


# Longer than the manifest task's own longest backoff (2 s doubling over eight attempts: 128 s), so a
# drain runs every retry of its real policy at once.
ALL_RETRIES = 300.0


def repair(engine: Engine, registry: TaskRegistry) -> None:
    with Session(engine) as session, session.begin():
        assert repair_dangling(session, registry.references) == []


def test_a_retried_manifest_task_books_the_same_manifest_and_tracking_numbers(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 3)
    task_id = dispatch(engine, recorder)
    reactions = FailingReactions(failures=1)
    assert task_id is not None

    result = drain(engine, manual_registry, advance=ALL_RETRIES, session_info=session_info(react=reactions))

    assert [run.outcome for run in result.of(task_id)] == ["retrying", "succeeded"]
    first_attempt, *retried = reactions.of_type(ShipmentDispatched)
    assert len(retried) == 3  # the first attempt rolled back after its first event
    shipments = load(engine, shipment_ids)
    assert {s.shipment_state for s in shipments} == {ShipmentState.DISPATCHED}
    booked_first = {s.id: s.tracking_number for s in shipments}
    assert booked_first[first_attempt.shipment_id] == first_attempt.tracking_number
    assert {e.shipment_id: e.tracking_number for e in retried} == booked_first


def test_a_dead_manifest_tasks_shipments_are_repaired_to_ready_and_shipped_by_the_next_batch(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 3)
    dead_task = dispatch(engine, recorder)
    assert dead_task is not None
    failing = FailingReactions(failures=8)  # one for each attempt the task has
    result = drain(engine, manual_registry, advance=ALL_RETRIES, session_info=session_info(react=failing))
    assert [run.outcome for run in result.of(dead_task)] == ["retrying"] * 7 + ["dead"]
    assert {s.shipment_state for s in load(engine, shipment_ids)} == {ShipmentState.IN_BATCH}

    repair(engine, manual_registry)

    repaired = load(engine, shipment_ids)
    assert {s.shipment_state for s in repaired} == {ShipmentState.READY}
    assert {s.shipping_task_id for s in repaired} == {None}

    next_batch = dispatch(engine, recorder)
    drain(engine, manual_registry, session_info=session_info(react=recorder))

    shipped = load(engine, shipment_ids)
    assert {s.shipment_state for s in shipped} == {ShipmentState.DISPATCHED}
    assert {s.shipping_task_id for s in shipped} == {next_batch}
    assert {e.shipment_id for e in recorder.of_type(ShipmentDispatched)} == set(shipment_ids)


def test_a_cancelled_manifest_tasks_shipments_return_to_ready(
    engine: Engine, recorder: EventRecorder
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 2)
    task_id = dispatch(engine, recorder)
    assert task_id is not None
    with engine.begin() as connection:
        assert cancel(connection, task_id) is TaskState.CANCELLED

    repair(engine, shipping_registry)

    assert {s.shipment_state for s in load(engine, shipment_ids)} == {ShipmentState.READY}


def test_repair_only_forgets_the_batch_of_a_dispatched_shipment_whose_task_is_gone(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 2)
    task_id = dispatch(engine, recorder)
    assert task_id is not None
    drain(engine, manual_registry, session_info=session_info(react=recorder))
    backdate_finished(engine, [task_id], RETENTION_SECONDS * 2)
    with engine.begin() as connection:  # pruned by something that did not know the column: a dangling row
        assert prune(connection, [], older_than_seconds=RETENTION_SECONDS).deleted == 1

    repair(engine, manual_registry)

    repaired = load(engine, shipment_ids)
    assert {s.shipment_state for s in repaired} == {ShipmentState.DISPATCHED}
    assert {s.shipping_task_id for s in repaired} == {None}
    assert all(s.tracking_number for s in repaired)


def test_repair_leaves_a_batch_whose_dead_task_was_requeued_in_the_meantime(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 2)
    task_id = dispatch(engine, recorder)
    assert task_id is not None
    with engine.begin() as connection:
        cancel(connection, task_id)
    with Session(engine) as session:
        reported = find_dangling(session, manual_registry.references)
    assert len(reported) == 2
    with engine.begin() as connection:
        requeue(connection, task_id)

    with Session(engine) as session, session.begin():
        repair_dangling(session, manual_registry.references, reported)

    assert {s.shipment_state for s in load(engine, shipment_ids)} == {ShipmentState.IN_BATCH}
    assert {s.shipping_task_id for s in load(engine, shipment_ids)} == {task_id}


def test_pruning_a_sent_manifest_task_nulls_the_batch_pointer_and_keeps_the_shipments(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 3)
    task_id = dispatch(engine, recorder)
    assert task_id is not None
    drain(engine, manual_registry, session_info=session_info(react=recorder))

    with engine.begin() as connection:  # still within retention: nothing to prune
        assert (
            prune(connection, manual_registry.references, older_than_seconds=RETENTION_SECONDS).deleted == 0
        )
    backdate_finished(engine, [task_id], RETENTION_SECONDS * 2)
    with engine.begin() as connection:
        result = prune(connection, manual_registry.references, older_than_seconds=RETENTION_SECONDS)

    assert (result.deleted, result.nulled_references) == (1, 3)
    assert not task_exists(engine, task_id)
    pruned = load(engine, shipment_ids)
    assert {s.shipping_task_id for s in pruned} == {None}
    assert {s.shipment_state for s in pruned} == {ShipmentState.DISPATCHED}
    assert len({s.manifest_number for s in pruned}) == 1


def test_pruning_keeps_a_dead_manifest_task_while_its_shipments_still_wait_for_repair(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry
) -> None:
    shipment_ids = ready_shipments(engine, recorder, 1)
    task_id = dispatch(engine, recorder)
    assert task_id is not None
    with engine.begin() as connection:
        cancel(connection, task_id)
    backdate_finished(engine, [task_id], RETENTION_SECONDS * 2)

    with engine.begin() as connection:
        assert (
            prune(connection, manual_registry.references, older_than_seconds=RETENTION_SECONDS).deleted == 0
        )

    assert task_exists(engine, task_id)
    assert [s.shipping_task_id for s in load(engine, shipment_ids)] == [task_id]
