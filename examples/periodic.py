"""A periodic task: each tick of a schedule is enqueued exactly once, however many workers run.

Two workers evaluate the schedule side by side for a second and a half; every tick's task runs once and
records which tick it served (``args["scheduled_for"]``).
Run: ``python examples/periodic.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter

from sqlalchemy import String, Uuid, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskRegistry, Worker, WorkerSettings, configure_engine, create_tables


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class StockCount(Base):
    __tablename__ = "example_stock_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    scheduled_for: Mapped[str] = mapped_column(String(40))
    counted_by_task_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)


registry = TaskRegistry()


@registry.task("stock.count")
def count_stock(task: RunningTask, session: Session) -> None:
    assert task.args is not None
    session.add(StockCount(scheduled_for=task.args["scheduled_for"], counted_by_task_id=task.id))


registry.schedule("count stock twice a second", count_stock, every=0.5)  # or cron="0 * * * *"


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)
    with Session(engine) as session:  # counts from earlier runs of this program are not ours
        earlier = session.scalar(select(func.max(StockCount.id))) or 0

    # Workers look at their schedules every maintenance_interval (1 s by default).
    settings = WorkerSettings(maintenance_interval=0.1, poll_interval=0.1)
    workers = [Worker(engine, registry, settings) for _ in range(2)]
    threads = [threading.Thread(target=worker.run) for worker in workers]
    for thread in threads:
        thread.start()
    time.sleep(1.6)
    for worker in workers:
        worker.stop()
    for thread in threads:
        thread.join()

    with Session(engine) as session:
        ticks = Counter(session.scalars(select(StockCount.scheduled_for).where(StockCount.id > earlier)))
    print(f"{len(ticks)} ticks counted by two workers; the most any tick ran: {max(ticks.values())} time(s)")


if __name__ == "__main__":
    main()
