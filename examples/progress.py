"""Progress: a long handler reports how far it got, and anyone can read it while the task runs.

Each report commits at once in a small transaction of its own (on SQLite: until the handler's own
transaction has written, see ``RunningTask.report_progress``), so a page can show it mid-run.
Run: ``python examples/progress.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

from sqlalchemy import String, Uuid, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskRegistry, Worker, configure_engine, create_tables, task_details

STEPS = 4


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Import(Base):
    __tablename__ = "example_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    rows_imported: Mapped[int] = mapped_column(default=0)
    import_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)


registry = TaskRegistry()


@registry.task("imports.run")
def run_import(task: RunningTask, session: Session) -> None:
    for step in range(1, STEPS + 1):
        time.sleep(0.3)  # a slow chunk of work
        task.report_progress(step / STEPS, f"chunk {step} of {STEPS}")
    upload = session.scalars(select(Import).where(Import.import_task_id == task.id)).one()
    upload.rows_imported = 1000 * STEPS  # the handler's writes come last: see the docstring


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        task_id = run_import.enqueue(session)
        session.add(Import(filename="CRUNCHY-ARMCHAIR-stock.csv", import_task_id=task_id))

    worker = Worker(engine, registry)
    thread = threading.Thread(target=worker.run, kwargs={"until_idle": True})
    thread.start()
    seen = None
    while thread.is_alive():  # what a progress bar on a page would poll
        with Session(engine) as session:
            task = task_details(session, task_id).task
        if task["progress"] is not None and (task["progress"], task["state"]) != seen:
            seen = (task["progress"], task["state"])
            print(f"{task['state']}: {task['progress']:.0%} ({task['progress_message']})")
        time.sleep(0.05)
    with Session(engine) as session:
        print(f"finished: {task_details(session, task_id).task['state']}")


if __name__ == "__main__":
    main()
