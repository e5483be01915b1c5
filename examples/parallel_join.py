"""Several tasks per row at once, joined: an order's fraud check and stock reservation run in parallel.

The order points at both tasks. Each handler locks the order, does its part, and whichever finishes
second sees both parts done and takes the next step: exactly once, because the row lock orders them.
Run: ``python examples/parallel_join.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import Uuid, create_engine, or_, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskRegistry, Worker, WorkerSettings, configure_engine, create_tables


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Order(Base):
    __tablename__ = "example_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    screened: Mapped[bool] = mapped_column(default=False)
    reserved: Mapped[bool] = mapped_column(default=False)
    ready_for_payment: Mapped[bool] = mapped_column(default=False)
    screening_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)
    reservation_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)


registry = TaskRegistry()


def locked_order(session: Session, task_id: uuid.UUID) -> Order:
    """The order one of whose two tasks this is, locked until the task commits."""
    pointing = or_(Order.screening_task_id == task_id, Order.reservation_task_id == task_id)
    return session.scalars(select(Order).where(pointing).with_for_update()).one()


def join_if_both_done(order: Order, finished: str) -> None:
    if order.screened and order.reserved:  # the second to finish takes the next step, once
        order.ready_for_payment = True
        print(f"order {order.id}: {finished} finished second and joined: ready for payment")


@registry.task("orders.screen")
def screen(task: RunningTask, session: Session) -> None:
    order = locked_order(session, task.id)
    order.screened = True
    join_if_both_done(order, "screening")


@registry.task("orders.reserve")
def reserve(task: RunningTask, session: Session) -> None:
    order = locked_order(session, task.id)
    order.reserved = True
    join_if_both_done(order, "reservation")


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)

    with Session(engine) as session, session.begin():
        for _ in range(3):
            session.add(
                Order(screening_task_id=screen.enqueue(session), reservation_task_id=reserve.enqueue(session))
            )

    Worker(engine, registry, WorkerSettings(concurrency=2)).run(until_idle=True)  # two tasks at a time


if __name__ == "__main__":
    main()
