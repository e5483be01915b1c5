"""Transactional enqueue: an invoice and the task that sends it commit together, or neither exists.

The invoice keeps its task's ID (``sending_task_id``), known before anything is committed.
Run: ``python examples/enqueue_with_pointer.py``; set DATABASE_URL (postgresql+psycopg://...) for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import Engine, String, Uuid, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskRegistry, Worker, configure_engine, create_tables, states_of


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Invoice(Base):
    __tablename__ = "example_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(100))
    sent: Mapped[bool] = mapped_column(default=False)
    # The pointer: the task that sends this invoice. Unique, so indexed: the handler looks it up by it.
    sending_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)


registry = TaskRegistry()


@registry.task("invoices.send")
def send_invoice(task: RunningTask, session: Session) -> None:
    invoice = session.scalars(select(Invoice).where(Invoice.sending_task_id == task.id)).one()
    invoice.sent = True  # commits together with the task's move to succeeded


def create_invoice(session: Session, customer: str) -> tuple[int, uuid.UUID]:
    """A new invoice and the task that will send it, in the caller's transaction; their IDs."""
    task_id = send_invoice.enqueue(session)  # the ID exists before the row does, and before commit
    invoice = Invoice(customer=customer, sending_task_id=task_id)
    session.add(invoice)
    session.flush()  # both rows reach the database now, still uncommitted
    return invoice.id, task_id


def describe(engine: Engine, invoice_id: int, task_id: uuid.UUID) -> str:
    with Session(engine) as session:
        invoice = session.get(Invoice, invoice_id)
        task_state = states_of(session, [task_id]).get(task_id, "missing")
    invoice_state = "missing" if invoice is None else "sent" if invoice.sent else "waiting"
    return f"invoice {invoice_state}, task {task_state}"


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)

    with Session(engine) as session:
        committed = create_invoice(session, "Ada Lovelace")
        session.commit()
    with Session(engine) as session:
        rolled_back = create_invoice(session, "Charles Babbage")
        session.rollback()
    print(f"committed:   {describe(engine, *committed)}")
    print(f"rolled back: {describe(engine, *rolled_back)}")

    Worker(engine, registry).run(until_idle=True)
    print(f"after a worker ran: {describe(engine, *committed)}")


if __name__ == "__main__":
    main()
