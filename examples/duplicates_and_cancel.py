"""Duplicate prevention and cancellation through the object: the row knows whether its work is in flight.

Asking for an export while one is pending gives back the same task instead of enqueueing a second one;
cancelling the export cancels its task in the same transaction that records the cancellation.
Run: ``python examples/duplicates_and_cancel.py``; set DATABASE_URL for PostgreSQL.
"""

from __future__ import annotations

import os
import uuid

from sqlalchemy import String, Uuid, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from queue_core import RunningTask, TaskRegistry, Worker, cancel, configure_engine, create_tables, states_of


class Base(DeclarativeBase):
    """This program's own tables; the queue's are made by ``create_tables``."""


class Report(Base):
    __tablename__ = "example_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    exports: Mapped[int] = mapped_column(default=0)
    export_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True)  # set: an export in flight


registry = TaskRegistry()


@registry.task("reports.export")
def export(task: RunningTask, session: Session) -> None:
    report = session.scalars(select(Report).where(Report.export_task_id == task.id).with_for_update()).one()
    report.exports += 1
    report.export_task_id = None  # done: the next request may enqueue a new export


def request_export(session: Session, report_id: int) -> uuid.UUID:
    """The task exporting the report: the one in flight if there is one, else a new one."""
    report = session.get_one(Report, report_id, with_for_update=True)  # two requests take turns here
    if report.export_task_id is None:
        report.export_task_id = export.enqueue(session)
    return report.export_task_id


def cancel_export(session: Session, report_id: int) -> str:
    """Cancel the export in flight; the state its task is left in."""
    report = session.get_one(Report, report_id, with_for_update=True)
    assert report.export_task_id is not None, "no export in flight"
    state = cancel(session, report.export_task_id)  # one transaction: the task and the row's pointer
    report.export_task_id = None
    return state


def main() -> None:
    engine = configure_engine(create_engine(os.environ.get("DATABASE_URL", "sqlite:///examples.sqlite3")))
    create_tables(engine)  # the queue's tables (or its Alembic revisions: docs/queue-core.md)
    Base.metadata.create_all(engine)

    with Session(engine) as session, session.begin():
        sales, stock = Report(title="sales"), Report(title="stock")
        session.add_all([sales, stock])
        session.flush()
        first, second = request_export(session, sales.id), request_export(session, sales.id)
        print(f"asked twice for the sales export: {'one task' if first == second else 'two tasks'}")
        stock_id, stock_task = stock.id, request_export(session, stock.id)
        exports = {sales.id: first, stock_id: stock_task}
    with Session(engine) as session, session.begin():
        print(f"cancelled the stock export: its task is {cancel_export(session, stock_id)}")

    Worker(engine, registry).run(until_idle=True)
    with Session(engine) as session:
        states = states_of(session, exports.values())
        for report_id, task_id in exports.items():
            report = session.get_one(Report, report_id)
            print(f"{report.title}: exported {report.exports} time(s), task {states[task_id]}")


if __name__ == "__main__":
    main()
