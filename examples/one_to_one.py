"""One task per row: each payment points at the task charging it, and a UNIQUE constraint keeps it so.

While the pointer is set, the payment has work in flight; the handler clears it when the work is done.
The database refuses a second payment pointing at the same task.
Run: ``python examples/one_to_one.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import Uuid, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskRegistry, Worker, configure_engine, create_tables, unique_task_pointer


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Payment(Base):
    __tablename__ = "example_payments"
    # One task serves at most one payment; "being charged" (IS NOT NULL) reads only in-flight rows.
    __table_args__ = (unique_task_pointer("example_payments", "charge_task_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    amount_cents: Mapped[int]
    captured: Mapped[bool] = mapped_column(default=False)
    charge_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


registry = TaskRegistry()


@registry.task("payments.charge")
def charge(task: RunningTask, session: Session) -> None:
    payment = session.scalars(
        select(Payment).where(Payment.charge_task_id == task.id).with_for_update()
    ).one()
    payment.captured = True
    payment.charge_task_id = None  # no work in flight any more
    print(f"charged payment {payment.id}: {payment.amount_cents / 100:.2f} EUR")


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)

    with Session(engine) as session, session.begin():
        payments = [
            Payment(amount_cents=cents, charge_task_id=charge.enqueue(session)) for cents in (1250, 990)
        ]
        session.add_all(payments)
        session.flush()
        payment_ids = [payment.id for payment in payments]
    try:
        with Session(engine) as session, session.begin():
            shared = charge.enqueue(session)
            session.add_all([Payment(amount_cents=100, charge_task_id=shared) for _ in range(2)])
    except IntegrityError:
        print("two payments pointing at one task: refused by the database, and the task rolled back too")

    Worker(engine, registry).run(until_idle=True)
    with Session(engine) as session:
        for payment in session.scalars(select(Payment).where(Payment.id.in_(payment_ids))):
            print(f"payment {payment.id}: captured {payment.captured}, pointer {payment.charge_task_id}")


if __name__ == "__main__":
    main()
