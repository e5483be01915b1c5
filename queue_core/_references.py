"""Inverted references: business columns that hold task IDs, registered without queue_core knowing them.

A business package registers its columns (``Payment.processing_task_id``); the queue then can
- list the rows that point at a task (``referencing_rows``),
- refuse to prune a finished task that a row still points at, or null that row's pointer, per column
  (``OnPrune``; used by ``maintenance.prune``; an unsuccessful task is kept even for SET_NULL columns, so
  the row stays visible as dangling until it is repaired),
- find *dangling* references: rows pointing at a task that is dead, cancelled, expired, discarded or gone
  (``find_dangling``), and hand them to the owning package's repair function (``repair_dangling``), so
  recovery mends business state and not just queue state.

queue_core sees only SQLAlchemy columns and primary keys here: no business word crosses into it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, false, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from queue_core._models import task_table
from queue_core._states import UNSUCCESSFUL_STATES


class OnPrune(enum.StrEnum):
    """What pruning does with a finished task that a row of this column still points at."""

    KEEP = "keep"  # leave the task in place while any row points at it
    SET_NULL = "set_null"  # null the row's pointer, then prune the task


@dataclass(frozen=True)
class ReferencingRow:
    """A business row that points at a task: where it is, and its primary key."""

    table: str
    column: str
    primary_key: dict[str, Any]
    task_id: uuid.UUID


@dataclass(frozen=True)
class DanglingReference(ReferencingRow):
    """A referencing row whose task will never succeed; ``task_state`` is None when the task is gone."""

    task_state: str | None


RepairFunction = Callable[[Session, Sequence[DanglingReference]], None]


@dataclass(frozen=True)
class TaskReference:
    """One column that holds task IDs, with its pruning rule and an optional repair function."""

    column: Column[Any]
    on_prune: OnPrune = OnPrune.KEEP
    repair: RepairFunction | None = None

    @classmethod
    def of(
        cls,
        column: InstrumentedAttribute[Any] | Column[Any],
        on_prune: OnPrune = OnPrune.KEEP,
        repair: RepairFunction | None = None,
    ) -> TaskReference:
        """Build from a mapped attribute (``Payment.processing_task_id``) or a Core column."""
        core_column = column if isinstance(column, Column) else column.property.columns[0]
        if not isinstance(core_column, Column) or not isinstance(core_column.table, Table):
            raise TypeError(f"{column!r} is not a column of a table")
        return cls(column=core_column, on_prune=on_prune, repair=repair)

    @property
    def table(self) -> Table:
        table = self.column.table
        assert isinstance(table, Table)
        return table

    @property
    def label(self) -> str:
        return f"{self.table.name}.{self.column.name}"

    def primary_key_of(self, row: Any) -> dict[str, Any]:
        return {col.name: getattr(row, col.name) for col in self.table.primary_key.columns}


def referencing_rows(
    session: Session | Connection, references: Sequence[TaskReference], task_id: uuid.UUID
) -> list[ReferencingRow]:
    """Every registered business row that points at ``task_id`` (an indexed equality lookup per column)."""
    found: list[ReferencingRow] = []
    for ref in references:
        pk_columns = list(ref.table.primary_key.columns)
        for row in session.execute(select(*pk_columns).where(ref.column == task_id)):
            found.append(ReferencingRow(ref.table.name, ref.column.name, ref.primary_key_of(row), task_id))
    return found


def find_dangling(
    session: Session | Connection, references: Sequence[TaskReference], limit: int = 1000
) -> list[DanglingReference]:
    """Rows whose task is dead, cancelled, expired, discarded or missing, at most ``limit`` per column."""
    found: list[DanglingReference] = []
    tasks = task_table
    for ref in references:
        pk_columns = list(ref.table.primary_key.columns)
        query = (
            select(*pk_columns, ref.column.label("task_id"), tasks.c.state.label("task_state"))
            .select_from(ref.table.outerjoin(tasks, tasks.c.id == ref.column))
            .where(
                ref.column.is_not(None),
                or_(tasks.c.id.is_(None), tasks.c.state.in_([s.value for s in UNSUCCESSFUL_STATES])),
            )
            .limit(limit)
        )
        for row in session.execute(query):
            found.append(
                DanglingReference(
                    ref.table.name, ref.column.name, ref.primary_key_of(row), row.task_id, row.task_state
                )
            )
    return found


def repair_dangling(session: Session, references: Sequence[TaskReference]) -> list[DanglingReference]:
    """Hand each column's dangling rows (up to 1,000 per column per call) to its repair function.

    Runs in the caller's transaction. Returns the dangling rows found for columns that have no repair
    function (left for a person).
    """
    unrepaired: list[DanglingReference] = []
    for ref in references:
        dangling = find_dangling(session, [ref])
        if not dangling:
            continue
        if ref.repair is None:
            unrepaired.extend(dangling)
        else:
            ref.repair(session, dangling)
    return unrepaired


def still_needed(references: Sequence[TaskReference], task_id: Any, task_state: Any) -> ColumnElement[bool]:
    """SQL: a registered row still needs the task whose columns are ``task_id`` and ``task_state``.

    A KEEP column always keeps the task it points at. A SET_NULL column lets go of a task that succeeded,
    but not of one that did not: nulling that pointer would hide a business row stuck waiting for work
    that will never happen, which is exactly what ``find_dangling`` must report.
    """
    keep = [ref for ref in references if ref.on_prune is OnPrune.KEEP]
    set_null = [ref for ref in references if ref.on_prune is OnPrune.SET_NULL]
    conditions = [_points_at(ref, task_id) for ref in keep]
    if set_null:
        unsuccessful = task_state.in_([state.value for state in UNSUCCESSFUL_STATES])
        conditions.append(unsuccessful & or_(*(_points_at(ref, task_id) for ref in set_null)))
    return or_(*conditions) if conditions else false()


def _points_at(ref: TaskReference, task_id: Any) -> ColumnElement[bool]:
    return select(ref.column).where(ref.column == task_id).exists()
