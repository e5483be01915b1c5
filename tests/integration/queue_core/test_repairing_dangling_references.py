"""Promise 7, the hand-over: a repair function gets rows that are locked and still dangling, nothing else.

Between the search for dangling rows and their repair, anything may happen to a row: its handler moves it
on, a person re-queues its task, another transaction holds it. ``repair_dangling`` locks each row and
checks it again, so the business's repair function only decides what to do with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from queue_core import (
    DanglingReference,
    RunningTask,
    TaskRegistry,
    TaskState,
    cancel,
    find_dangling,
    repair_dangling,
    requeue,
)
from tests.support.inprocess import Crate, record_run


class CrateRepairs:
    """The depot's repair function: records what it was handed, and which label each crate had then."""

    def __init__(self) -> None:
        self.handed: list[DanglingReference] = []
        self.labels_seen: list[str] = []

    def __call__(self, session: Session, dangling: Sequence[DanglingReference]) -> None:
        for reference in dangling:
            self.handed.append(reference)
            crate = session.get_one(Crate, reference.primary_key["id"])
            self.labels_seen.append(crate.label)
            crate.unpack_task_id = None


def depot_registry(repairs: CrateRepairs) -> TaskRegistry:
    registry = TaskRegistry()
    registry.track_reference(Crate.unpack_task_id, repair=repairs)

    @registry.task("unpack-crate")
    def unpack_crate(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "unpack-crate")

    return registry


def crate_with_a_cancelled_task(depot: Engine, registry: TaskRegistry, number: int, label: str) -> uuid.UUID:
    with Session(depot) as session, session.begin():
        task_id = registry.get("unpack-crate").enqueue(session, delay=3600)
        session.add(Crate(id=number, label=label, unpack_task_id=task_id))
        cancel(session, task_id)
    return task_id


def found(depot: Engine, registry: TaskRegistry) -> list[DanglingReference]:
    with Session(depot) as session:
        return find_dangling(session, registry.references)


def test_a_row_pointed_at_a_live_task_between_the_search_and_the_repair_is_not_handed_over(
    depot: Engine,
) -> None:
    repairs = CrateRepairs()
    registry = depot_registry(repairs)
    crate_with_a_cancelled_task(depot, registry, 1, "CRUNCHY-ARMCHAIR")
    crate_with_a_cancelled_task(depot, registry, 2, "SHINY-LAMP")
    reported = found(depot, registry)
    assert len(reported) == 2
    with Session(depot) as session, session.begin():  # its handler's retry points crate 1 at a new task
        live_task = registry.get("unpack-crate").enqueue(session, delay=3600)
        session.get_one(Crate, 1).unpack_task_id = live_task

    with Session(depot) as session, session.begin():
        repair_dangling(session, registry.references, reported)

    assert [(d.primary_key, d.task_state) for d in repairs.handed] == [({"id": 2}, "cancelled")]
    with Session(depot) as session:
        assert session.get_one(Crate, 1).unpack_task_id == live_task


def test_a_row_whose_task_was_requeued_between_the_search_and_the_repair_is_not_handed_over(
    depot: Engine,
) -> None:
    repairs = CrateRepairs()
    registry = depot_registry(repairs)
    task_id = crate_with_a_cancelled_task(depot, registry, 1, "CRUNCHY-ARMCHAIR")
    reported = found(depot, registry)
    with Session(depot) as session, session.begin():  # a person thinks again
        assert requeue(session, task_id) is TaskState.PENDING

    with Session(depot) as session, session.begin():
        repair_dangling(session, registry.references, reported)

    assert repairs.handed == []
    with Session(depot) as session:
        assert session.get_one(Crate, 1).unpack_task_id == task_id


@pytest.mark.postgres_only  # SQLite has one writer at a time: no other transaction can change the row
def test_a_repair_function_sees_the_row_as_it_is_under_the_lock_not_as_its_session_loaded_it(
    depot: Engine,
) -> None:
    repairs = CrateRepairs()
    registry = depot_registry(repairs)
    crate_with_a_cancelled_task(depot, registry, 1, "CRUNCHY-ARMCHAIR")

    with Session(depot) as session, session.begin():
        assert session.get_one(Crate, 1).label == "CRUNCHY-ARMCHAIR"  # loaded into this session...
        with Session(depot) as other, other.begin():  # ...then changed by another transaction
            other.get_one(Crate, 1).label = "CRUNCHY-ARMCHAIR, RELABELLED"
        repair_dangling(session, registry.references)

    assert repairs.labels_seen == ["CRUNCHY-ARMCHAIR, RELABELLED"]


@pytest.mark.postgres_only
def test_a_row_another_transaction_holds_is_skipped_not_waited_for_and_repaired_next_time(
    depot: Engine,
) -> None:
    repairs = CrateRepairs()
    registry = depot_registry(repairs)
    crate_with_a_cancelled_task(depot, registry, 1, "CRUNCHY-ARMCHAIR")
    crate_with_a_cancelled_task(depot, registry, 2, "SHINY-LAMP")

    with Session(depot) as holder, holder.begin():
        holder.get_one(Crate, 1, with_for_update=True)  # a handler or a request is busy with crate 1
        with Session(depot) as session, session.begin():
            repair_dangling(session, registry.references)
        assert [d.primary_key for d in repairs.handed] == [{"id": 2}]

    with Session(depot) as session, session.begin():
        repair_dangling(session, registry.references)
    assert [d.primary_key for d in repairs.handed] == [{"id": 2}, {"id": 1}]
    assert found(depot, registry) == []


@pytest.mark.postgres_only  # SQLite has one writer at a time: nothing else can requeue meanwhile
def test_a_task_cannot_be_requeued_while_its_row_is_being_repaired(depot: Engine) -> None:
    attempts: list[str] = []

    def repair_while_a_person_requeues(session: Session, dangling: Sequence[DanglingReference]) -> None:
        with depot.connect() as person:  # another connection, while the repair's transaction is open
            person.execute(text("SET lock_timeout = '200ms'"))
            try:
                requeue(person, dangling[0].task_id)
            except OperationalError as exc:
                attempts.append(type(exc.orig).__name__)
        session.get_one(Crate, dangling[0].primary_key["id"]).unpack_task_id = None

    registry = TaskRegistry()
    registry.track_reference(Crate.unpack_task_id, repair=repair_while_a_person_requeues)
    registry.task("unpack-crate")(lambda task, session: None)
    task_id = crate_with_a_cancelled_task(depot, registry, 1, "CRUNCHY-ARMCHAIR")

    with Session(depot) as session, session.begin():
        repair_dangling(session, registry.references)

    assert attempts == ["LockNotAvailable"]  # the requeue waited for the repair, and gave up here
    with Session(depot) as session, session.begin():
        assert requeue(session, task_id) is TaskState.PENDING  # once the repair committed, it may
