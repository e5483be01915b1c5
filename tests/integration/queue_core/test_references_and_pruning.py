"""Promises 7 and 8: business rows that point at tasks, pruning that respects them, dangling references."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from queue_core import (
    DanglingReference,
    Discard,
    OnPrune,
    PruneResult,
    RetryPolicy,
    RunningTask,
    TaskRegistry,
    TaskState,
    cancel,
    enqueue,
    find_dangling,
    prune,
    referencing_rows,
    repair_dangling,
)
from queue_core._ids import new_task_id
from queue_core._maintenance import expire_overdue
from tests.support.inprocess import (
    DEADLINE_SECONDS,
    Crate,
    ParcelJammedError,
    Sticker,
    backdate_finished,
    error_rows,
    record_run,
    run_until_idle,
    running_worker,
    task_exists,
    task_row,
    wait_for,
    wait_for_state,
    wait_until_set,
)

RETENTION_SECONDS = 3600.0


class Repairs:
    """The crates package's repair function: it records what it was given and re-enqueues the work."""

    def __init__(self) -> None:
        self.calls: list[list[DanglingReference]] = []

    def __call__(self, session: Session, dangling: Sequence[DanglingReference]) -> None:
        self.calls.append(list(dangling))
        for reference in dangling:
            crate = session.get(Crate, reference.primary_key["id"])
            assert crate is not None
            crate.unpack_task_id = enqueue(session, "unpack-crate", delay=3600)


def depot_registry(repairs: Repairs | None = None) -> TaskRegistry:
    registry = TaskRegistry()
    registry.track_reference(Crate.unpack_task_id, on_prune=OnPrune.KEEP, repair=repairs)
    registry.track_reference(Sticker.print_task_id, on_prune=OnPrune.SET_NULL)

    @registry.task("unpack-crate")
    def unpack_crate(task: RunningTask, session: Session) -> None:
        record_run(session, task.id, "unpack-crate")

    @registry.task("jam-crate", retry=RetryPolicy(max_attempts=1))
    def jam_crate(task: RunningTask, session: Session) -> None:
        raise ParcelJammedError("the crate is nailed shut")

    @registry.task("vanish-crate")
    def vanish_crate(task: RunningTask, session: Session) -> None:
        raise Discard("the crate fell off the truck")

    return registry


# -- pruning ---------------------------------------------------------------------------------------------


def test_prune_keeps_referenced_tasks_nulls_set_null_pointers_and_deletes_old_unreferenced_ones(
    depot: Engine,
) -> None:
    registry = depot_registry()
    unpack, jam = registry.get("unpack-crate"), registry.get("jam-crate")
    with Session(depot) as session:
        kept = unpack.enqueue(session)
        nulled = unpack.enqueue(session)
        old_unreferenced = unpack.enqueue(session)
        old_dead = jam.enqueue(session)
        recent = unpack.enqueue(session)
        unfinished = unpack.enqueue(session, delay=3600)
        session.add(Crate(id=1, label="CRUNCHY-ARMCHAIR", unpack_task_id=kept))
        session.add(Sticker(id=1, label="FRAGILE", print_task_id=nulled))
        session.commit()
    run_until_idle(depot, registry)
    assert len(error_rows(depot, old_dead)) == 1
    backdate_finished(depot, [kept, nulled, old_unreferenced, old_dead], seconds=2 * RETENTION_SECONDS)

    results: list[PruneResult] = []
    while not results or results[-1].deleted:
        with depot.begin() as connection:
            results.append(
                prune(connection, registry.references, older_than_seconds=RETENTION_SECONDS, batch_size=1)
            )

    assert [r.deleted for r in results] == [1, 1, 1, 0]  # one batch at a time
    assert sum(r.nulled_references for r in results) == 1
    assert task_exists(depot, kept)
    assert not task_exists(depot, nulled)
    assert not task_exists(depot, old_unreferenced)
    assert not task_exists(depot, old_dead)
    assert error_rows(depot, old_dead) == []  # its errors go with it
    assert task_exists(depot, recent)
    assert task_exists(depot, unfinished)
    with Session(depot) as session:
        assert session.scalars(select(Crate.unpack_task_id)).one() == kept
        assert session.scalars(select(Sticker.print_task_id)).one() is None


def test_a_kept_task_is_pruned_once_nothing_points_at_it(depot: Engine) -> None:
    registry = depot_registry()
    with Session(depot) as session:
        task_id = registry.get("unpack-crate").enqueue(session)
        session.add(Crate(id=1, label="CRUNCHY-ARMCHAIR", unpack_task_id=task_id))
        session.commit()
    run_until_idle(depot, registry)
    backdate_finished(depot, [task_id], seconds=2 * RETENTION_SECONDS)
    with depot.begin() as connection:
        assert prune(connection, registry.references, older_than_seconds=RETENTION_SECONDS).deleted == 0

    with Session(depot) as session:
        crate = session.get(Crate, 1)
        assert crate is not None
        crate.unpack_task_id = None
        session.commit()
    with depot.begin() as connection:
        assert prune(connection, registry.references, older_than_seconds=RETENTION_SECONDS).deleted == 1
    assert not task_exists(depot, task_id)


def test_set_null_pruning_keeps_pointers_at_unsuccessful_tasks_and_nulls_those_at_succeeded_ones(
    depot: Engine,
) -> None:
    registry = depot_registry()
    unpack, jam, vanish = (registry.get(name) for name in ("unpack-crate", "jam-crate", "vanish-crate"))
    with Session(depot) as session:
        ids = {
            "succeeded": unpack.enqueue(session),
            "dead": jam.enqueue(session),
            "discarded": vanish.enqueue(session),
            "cancelled": unpack.enqueue(session, delay=3600),
            "expired": enqueue(session, "unpack-crate", delay=3600, expires_in=0.1),
        }
        session.commit()
        cancel(session, ids["cancelled"])
        for number, (label, task_id) in enumerate(ids.items(), start=1):
            session.add(Sticker(id=number, label=label.upper(), print_task_id=task_id))
        session.commit()
    run_until_idle(depot, registry)

    def expired() -> bool:
        with depot.begin() as connection:
            expire_overdue(connection)
        return task_row(depot, ids["expired"])["state"] == TaskState.EXPIRED.value

    wait_for(expired, what="the sticker's task expiring")
    for label, task_id in ids.items():
        assert task_row(depot, task_id)["state"] == label
    backdate_finished(depot, list(ids.values()), seconds=2 * RETENTION_SECONDS)

    while True:
        with depot.begin() as connection:
            if not prune(connection, registry.references, older_than_seconds=RETENTION_SECONDS).deleted:
                break

    # Nulling a pointer at a task that never succeeded would hide the work that never happened.
    unsuccessful = {label: task_id for label, task_id in ids.items() if label != "succeeded"}
    with Session(depot) as session:
        pointers = {s.label.lower(): s.print_task_id for s in session.scalars(select(Sticker))}
        dangling = find_dangling(session, registry.references)
    assert pointers == {"succeeded": None, **unsuccessful}
    assert not task_exists(depot, ids["succeeded"])
    assert all(task_exists(depot, task_id) for task_id in unsuccessful.values())
    assert {(d.task_id, d.task_state) for d in dangling} == {
        (task_id, label) for label, task_id in unsuccessful.items()
    }


# -- dangling references ---------------------------------------------------------------------------------


def test_find_dangling_reports_rows_pointing_at_tasks_that_will_never_succeed(depot: Engine) -> None:
    repairs = Repairs()
    registry = depot_registry(repairs)
    holding = threading.Event()
    release = threading.Event()

    @registry.task("hold-crate")
    def hold_crate(task: RunningTask, session: Session) -> None:
        holding.set()
        if not release.wait(DEADLINE_SECONDS):
            raise TimeoutError("the test never released the crate")

    with running_worker(depot, registry):
        with Session(depot) as session:
            ids = {
                "succeeded": registry.get("unpack-crate").enqueue(session),
                "dead": registry.get("jam-crate").enqueue(session),
                "discarded": registry.get("vanish-crate").enqueue(session),
                "running": hold_crate.enqueue(session),
                "pending": registry.get("unpack-crate").enqueue(session, delay=3600),
                "cancelled": registry.get("unpack-crate").enqueue(session, delay=3600),
                "expired": enqueue(session, "unpack-crate", delay=3600, expires_in=0.1),
                "missing": new_task_id(),
            }
            session.commit()
            cancel(session, ids["cancelled"])
            for number, (label, task_id) in enumerate(ids.items(), start=1):
                session.add(Crate(id=number, label=label, unpack_task_id=task_id))
            session.add(Crate(id=99, label="not-yet-planned", unpack_task_id=None))
            session.add(Sticker(id=1, label="dead", print_task_id=ids["dead"]))
            session.add(Sticker(id=2, label="succeeded", print_task_id=ids["succeeded"]))
            session.commit()
        for state in ("succeeded", "dead", "discarded", "expired"):
            wait_for_state(depot, ids[state], TaskState(state))
        wait_until_set(holding, "the holding handler starting")

        with Session(depot) as session:
            dangling = find_dangling(session, registry.references)
        crate_ids = {label: number for number, label in enumerate(ids, start=1)}
        expected = {
            (
                "test_crates",
                "unpack_task_id",
                crate_ids[label],
                ids[label],
                None if label == "missing" else label,
            )
            for label in ("dead", "cancelled", "expired", "discarded", "missing")
        } | {("test_stickers", "print_task_id", 1, ids["dead"], "dead")}
        assert {
            (d.table, d.column, d.primary_key["id"], d.task_id, d.task_state) for d in dangling
        } == expected

        with Session(depot) as session:
            unrepaired = repair_dangling(session, registry.references)
            session.commit()
        assert [(u.table, u.primary_key) for u in unrepaired] == [("test_stickers", {"id": 1})]
        [given] = repairs.calls
        assert {(d.primary_key["id"], d.task_state) for d in given} == {
            (crate_ids[label], None if label == "missing" else label)
            for label in ("dead", "cancelled", "expired", "discarded", "missing")
        }
        with Session(depot) as session:
            # The repair re-pointed the crates at fresh tasks: only the sticker still dangles.
            assert [(d.table, d.primary_key) for d in find_dangling(session, registry.references)] == [
                ("test_stickers", {"id": 1})
            ]
        release.set()
        wait_for_state(depot, ids["running"], TaskState.SUCCEEDED)


def test_find_dangling_stops_at_the_limit_per_column(depot: Engine) -> None:
    registry = depot_registry()
    with Session(depot) as session:
        for number in range(1, 6):
            session.add(Crate(id=number, label=f"lost-{number}", unpack_task_id=uuid.uuid4()))
        session.commit()
        assert len(find_dangling(session, registry.references)) == 5
        assert len(find_dangling(session, registry.references, limit=2)) == 2


def test_referencing_rows_lists_every_row_that_points_at_a_task(depot: Engine) -> None:
    registry = depot_registry()
    with Session(depot) as session:
        shared = registry.get("unpack-crate").enqueue(session)
        other = registry.get("unpack-crate").enqueue(session)
        session.add_all(
            [
                Crate(id=1, label="CRUNCHY-ARMCHAIR", unpack_task_id=shared),
                Crate(id=2, label="WOBBLY-TABLE", unpack_task_id=shared),
                Crate(id=3, label="SILENT-PIANO", unpack_task_id=other),
                Sticker(id=7, label="THIS-WAY-UP", print_task_id=shared),
            ]
        )
        session.commit()
        rows = referencing_rows(session, registry.references, shared)
        nobody = referencing_rows(session, registry.references, new_task_id())

    assert sorted((r.table, r.column, r.primary_key["id"]) for r in rows) == [
        ("test_crates", "unpack_task_id", 1),
        ("test_crates", "unpack_task_id", 2),
        ("test_stickers", "print_task_id", 7),
    ]
    assert all(r.task_id == shared for r in rows)
    assert nobody == []
