"""Promise 6: progress visible while a handler runs; parent and root IDs of tasks enqueued from handlers."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, TaskState, enqueue
from queue_core._models import task_table
from tests.support.inprocess import (
    DEADLINE_SECONDS,
    running_worker,
    task_row,
    wait_for,
    wait_for_state,
    wait_until_set,
)


def test_reported_progress_is_visible_from_another_connection_while_the_handler_runs(depot: Engine) -> None:
    registry = TaskRegistry()
    reported = threading.Event()
    may_finish = threading.Event()

    @registry.task("unload-truck")
    def unload_truck(task: RunningTask, session: Session) -> None:
        task.report_progress(0.5, "half the pallets are off")
        reported.set()
        if not may_finish.wait(DEADLINE_SECONDS):
            raise TimeoutError("the test never let the handler finish")

    with Session(depot) as session:
        task_id = unload_truck.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_until_set(reported, "a progress report")
        row = task_row(depot, task_id)
        may_finish.set()
        wait_for_state(depot, task_id, TaskState.SUCCEEDED)

    assert (row["state"], row["progress"], row["progress_message"]) == (
        "running",
        0.5,
        "half the pallets are off",
    )


def test_progress_reported_after_the_handler_wrote_is_recorded_with_its_work(depot: Engine) -> None:
    """On SQLite the handler's transaction then holds the only write lock: the report must not wait on it."""
    registry = TaskRegistry()

    @registry.task("unload-truck")
    def unload_truck(task: RunningTask, session: Session) -> None:
        session.execute(select(task_table.c.id).where(task_table.c.id == task.id)).one()
        task.report_progress(1.0, "all pallets are off")

    with Session(depot) as session:
        task_id = unload_truck.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_for_state(depot, task_id, TaskState.SUCCEEDED)

    row = task_row(depot, task_id)
    assert (row["attempts"], row["progress"], row["progress_message"]) == (1, 1.0, "all pallets are off")


def test_progress_is_clamped_to_between_zero_and_one(depot: Engine) -> None:
    registry = TaskRegistry()
    seen: list[float] = []

    @registry.task("unload-truck")
    def unload_truck(task: RunningTask, session: Session) -> None:
        for fraction in (-0.5, 1.7):
            task.report_progress(fraction)
            seen.append(task_row(depot, task.id)["progress"])

    with Session(depot) as session:
        task_id = unload_truck.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_for_state(depot, task_id, TaskState.SUCCEEDED)

    assert seen == [0.0, 1.0]


def test_tasks_enqueued_from_handlers_record_their_parent_and_the_root_of_the_chain(depot: Engine) -> None:
    registry = TaskRegistry()

    @registry.task("unload-truck")
    def unload_truck(task: RunningTask, session: Session) -> None:
        enqueue(session, "sort-parcels")

    @registry.task("sort-parcels")
    def sort_parcels(task: RunningTask, session: Session) -> None:
        registry.get("label-parcel").enqueue(session)

    @registry.task("label-parcel")
    def label_parcel(task: RunningTask, session: Session) -> None:
        """The end of the chain."""

    with Session(depot) as session:
        truck_id = unload_truck.enqueue(session)
        session.commit()

    def chain_done() -> dict[str, dict[str, object]] | None:
        with depot.connect() as connection:
            rows = connection.execute(
                select(
                    task_table.c.name, task_table.c.id, task_table.c.parent_id, task_table.c.root_id
                ).where(task_table.c.state == TaskState.SUCCEEDED.value)
            ).all()
        by_name = {row.name: dict(row._mapping) for row in rows}
        return by_name if len(by_name) == 3 else None

    with running_worker(depot, registry):
        tasks = wait_for(chain_done, what="the three-task chain succeeding")

    truck, sort, label = tasks["unload-truck"], tasks["sort-parcels"], tasks["label-parcel"]
    assert truck["id"] == truck_id
    assert (truck["parent_id"], truck["root_id"]) == (None, None)
    assert (sort["parent_id"], sort["root_id"]) == (truck_id, truck_id)
    assert (label["parent_id"], label["root_id"]) == (sort["id"], truck_id)


def test_a_handler_sees_its_own_lineage(depot: Engine) -> None:
    registry = TaskRegistry()
    seen: dict[str, tuple[object, object]] = {}

    @registry.task("unload-truck")
    def unload_truck(task: RunningTask, session: Session) -> None:
        seen["unload-truck"] = (task.parent_id, task.root_id)
        enqueue(session, "sort-parcels")

    @registry.task("sort-parcels")
    def sort_parcels(task: RunningTask, session: Session) -> None:
        seen["sort-parcels"] = (task.parent_id, task.root_id)

    with Session(depot) as session:
        truck_id = unload_truck.enqueue(session)
        session.commit()
    with running_worker(depot, registry):
        wait_for(lambda: "sort-parcels" in seen, what="the child task running")

    assert seen == {"unload-truck": (None, None), "sort-parcels": (truck_id, truck_id)}


def test_tasks_enqueued_outside_handlers_have_no_lineage(depot: Engine) -> None:
    with Session(depot) as session:
        task_id = enqueue(session, "unload-truck")
        session.commit()
    row = task_row(depot, task_id)
    assert (row["parent_id"], row["root_id"]) == (None, None)
