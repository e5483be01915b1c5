"""Retry, dead and re-queue: a failing task is retried, ends ``dead`` with each attempt's error kept, and
is put back once the cause is fixed. The business row keeps pointing at the same task throughout.

Run: ``python examples/retry_dead_requeue.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import uuid

from sqlalchemy import Engine, String, Uuid, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import (
    RetryPolicy,
    RunningTask,
    TaskRegistry,
    Worker,
    configure_engine,
    create_tables,
    requeue,
    task_details,
)


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Contact(Base):
    __tablename__ = "example_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200))
    synced: Mapped[bool] = mapped_column(default=False)
    sync_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)


registry = TaskRegistry()
crm_is_up = threading.Event()  # stands for another service, down until someone fixes it


# No backoff, so that this example need not wait; real code keeps the default exponential backoff.
@registry.task("contacts.sync_to_crm", retry=RetryPolicy(max_attempts=3, base_seconds=0))
def sync_to_crm(task: RunningTask, session: Session) -> None:
    contact = session.scalars(select(Contact).where(Contact.sync_task_id == task.id)).one()
    if not crm_is_up.is_set():
        raise ConnectionError(f"the CRM did not answer attempt {task.attempt}")
    contact.synced = True


def report(engine: Engine, task_id: uuid.UUID) -> None:
    with Session(engine) as session:
        details = task_details(session, task_id)
        synced = session.scalars(select(Contact.synced).where(Contact.sync_task_id == task_id)).one()
    print(f"task {details.task['state']} after {details.task['attempts']} attempt(s); synced: {synced}")
    for error in details.errors:
        print(f"  attempt {error.attempt} failed: {error.error_type}: {error.message}")


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        task_id = sync_to_crm.enqueue(session)
        session.add(Contact(email="ada@example.com", sync_task_id=task_id))

    Worker(engine, registry).run(until_idle=True)
    report(engine, task_id)

    crm_is_up.set()  # the cause is fixed; an operator puts the dead task back with one more attempt
    with Session(engine) as session, session.begin():
        print(f"re-queued: {requeue(session, task_id, extra_attempts=1)}")
    Worker(engine, registry).run(until_idle=True)
    report(engine, task_id)


if __name__ == "__main__":
    main()
