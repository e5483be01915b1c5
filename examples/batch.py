"""One task for many rows: a dispatcher points every ready shipment at one manifest task.

The pointer column is indexed but not unique; the handler takes its whole batch with one equality lookup.
Rows that arrive later wait for the next batch: a shipment with no pointer is "ready".
Run: ``python examples/batch.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import String, Uuid, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskRegistry, Worker, configure_engine, create_tables


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Shipment(Base):
    __tablename__ = "example_shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    destination: Mapped[str] = mapped_column(String(2))
    dispatched: Mapped[bool] = mapped_column(default=False)
    manifest_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)  # many rows, one task


registry = TaskRegistry()


@registry.task("shipping.send_manifest")
def send_manifest(task: RunningTask, session: Session) -> None:
    batch = session.scalars(select(Shipment).where(Shipment.manifest_task_id == task.id).with_for_update())
    shipments = list(batch)
    for shipment in shipments:
        shipment.dispatched = True
    print(f"manifest {task.id}: {len(shipments)} shipments, to {sorted({s.destination for s in shipments})}")


def dispatch_ready(session: Session) -> int:
    """Point every ready shipment at one new manifest task; how many joined the batch."""
    ready = list(
        session.scalars(select(Shipment).where(Shipment.manifest_task_id.is_(None), ~Shipment.dispatched))
    )
    if ready:
        task_id = send_manifest.enqueue(session)
        for shipment in ready:
            shipment.manifest_task_id = task_id
    return len(ready)


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)

    for destinations in (["NL", "DE", "FR"], ["BE", "GB"]):
        with Session(engine) as session, session.begin():
            session.add_all(Shipment(destination=country) for country in destinations)
        with Session(engine) as session, session.begin():
            print(f"dispatched a batch of {dispatch_ready(session)} ready shipments")
        Worker(engine, registry).run(until_idle=True)


if __name__ == "__main__":
    main()
