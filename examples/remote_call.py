"""Calling another service from a handler in three phases: no transaction, connection or lock is held
while the service thinks, so the row stays free; the answer is recorded only if the row still waits for it.

Run: ``python examples/remote_call.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import time
import uuid

from sqlalchemy import Engine, String, Uuid, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import Cancelled, Discard, RunningTask, TaskRegistry, Worker, configure_engine, create_tables


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Mail(Base):
    __tablename__ = "example_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    to: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default="queued")  # queued, sent, cancelled
    provider_id: Mapped[str | None] = mapped_column(String(40))
    send_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)


class MailProvider:
    """Stands in for a mail API that honours idempotency keys: the same key, the same message."""

    def __init__(self, engine: Engine) -> None:
        self.sent: dict[str, str] = {}
        self.engine = engine

    def send(self, to: str, idempotency_key: str) -> str:
        if to == "grace@example.com":  # the customer cancels while the provider is busy with her mail
            with Session(self.engine) as session, session.begin():
                mail = session.scalars(select(Mail).where(Mail.to == to).with_for_update()).one()
                mail.state, mail.send_task_id = "cancelled", None
            print(f"cancelled the mail to {to} while the provider was sending it: the row was free")
        time.sleep(0.05)
        return self.sent.setdefault(idempotency_key, f"MSG-{len(self.sent) + 1}")


registry = TaskRegistry()
PROVIDER = "mail_provider"  # the Session.info key the worker's session_info fills


@registry.task("mail.send", commits_alone=True)  # no other task's transaction open during the call
def send_mail(task: RunningTask, session: Session) -> None:
    with task.short_transaction() as reading:  # 1. read what to send; nothing held afterwards
        to = reading.scalars(select(Mail.to).where(Mail.send_task_id == task.id)).one_or_none()
    if to is None:
        raise Discard("no mail waits for this task")
    with task.outside_transaction():  # 2. call with the task's ID as the key: a retry sends nothing new
        provider_id = session.info[PROVIDER].send(to, idempotency_key=str(task.id))
    mail = session.scalars(select(Mail).where(Mail.send_task_id == task.id).with_for_update()).one_or_none()
    if mail is None:  # 3. the row moved on during the call: the answer is not recorded
        raise Cancelled(f"the mail to {to} was cancelled while it was sent")
    mail.state, mail.provider_id, mail.send_task_id = "sent", provider_id, None


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        for to in ("ada@example.com", "grace@example.com"):
            session.add(Mail(to=to, send_task_id=send_mail.enqueue(session)))
    Worker(engine, registry, session_info={PROVIDER: MailProvider(engine)}).run(until_idle=True)
    with Session(engine) as session:
        for mail in session.scalars(select(Mail).order_by(Mail.id)):
            print(f"mail to {mail.to}: {mail.state}, provider id {mail.provider_id}")


if __name__ == "__main__":
    main()
