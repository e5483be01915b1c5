"""The composition root's periodic repair: one column's failing repair does not hold up the others."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from queue_core import DanglingReference, TaskState, enqueue, state_of
from queue_core._models import task_table
from shop.bootstrap import session_info
from shop.tasks import build_registry
from tests.support.inprocess import Crate, Sticker, create_depot_tables, run_until_idle


def test_a_repair_that_fails_is_logged_and_the_other_columns_are_still_repaired(engine: Engine) -> None:
    create_depot_tables(engine)

    def refuse(session: Session, rows: Sequence[DanglingReference]) -> None:
        raise RuntimeError("the crate repair is broken today")

    def peel_off(session: Session, rows: Sequence[DanglingReference]) -> None:
        for row in rows:
            session.execute(
                update(Sticker).where(Sticker.id == row.primary_key["id"]).values(print_task_id=None)
            )

    registry = build_registry()
    registry.track_reference(Crate.unpack_task_id, repair=refuse)
    registry.track_reference(Sticker.print_task_id, repair=peel_off)
    with Session(engine) as session:
        dead = enqueue(session, "unpack-crate")
        session.add_all(
            [
                Crate(label="CRUNCHY-ARMCHAIR", unpack_task_id=dead),
                Sticker(label="FRAGILE", print_task_id=dead),
            ]
        )
        session.execute(update(task_table).where(task_table.c.id == dead).values(state="dead"))
        repair = registry.get("shop.repair_dangling_references").enqueue(session)
        session.commit()

    run_until_idle(engine, registry, session_info=session_info())

    with Session(engine) as session:
        assert state_of(session, repair) is TaskState.SUCCEEDED
        assert session.scalar(select(Sticker.print_task_id)) is None  # repaired
        assert session.scalar(select(Crate.unpack_task_id)) == dead  # left for the next tick, and a person
