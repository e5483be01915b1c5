"""A handler finds its row by the task's ID: no business ID travels in the task, and the row is read fresh.

The lookup is an indexed equality on the pointer column, under a row lock. A row deleted meanwhile ends
the task ``discarded`` (nothing to retry for); a second run of a finished task finds the work done.
Run: ``python examples/handler_finds_its_row.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import String, Uuid, create_engine, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import (
    Discard,
    RunningTask,
    TaskRegistry,
    Worker,
    configure_engine,
    create_tables,
    requeue,
    states_of,
)


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Parcel(Base):
    __tablename__ = "example_parcels"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    labels_printed: Mapped[int] = mapped_column(default=0)
    print_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)


registry = TaskRegistry()


@registry.task("parcels.print_label")
def print_label(task: RunningTask, session: Session) -> None:
    parcel = session.scalar(select(Parcel).where(Parcel.print_task_id == task.id).with_for_update())
    if parcel is None:
        raise Discard("the parcel was deleted before its label was printed")
    if parcel.labels_printed:
        print(f"label of {parcel.label} was already printed: nothing to do")
        return
    parcel.labels_printed += 1
    print(f"printed the label of {parcel.label}")


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)

    with Session(engine) as session, session.begin():
        kept, deleted = print_label.enqueue(session), print_label.enqueue(session)
        session.add(Parcel(label="CRUNCHY-ARMCHAIR", print_task_id=kept))
        session.add(Parcel(label="TINY-TEAPOT", print_task_id=deleted))
    with Session(engine) as session, session.begin():  # the teapot's order is cancelled before printing
        session.execute(delete(Parcel).where(Parcel.print_task_id == deleted))

    Worker(engine, registry).run(until_idle=True)
    with Session(engine) as session, session.begin():
        states = states_of(session, [kept, deleted])
        print(f"kept parcel's task {states[kept]}, deleted parcel's task {states[deleted]}")
        requeue(session, kept)  # the same task delivered a second time
    Worker(engine, registry).run(until_idle=True)


if __name__ == "__main__":
    main()
