"""Inverted references: business columns that hold task IDs, registered without queue_core knowing them.

A business package registers its columns (``Payment.processing_task_id``); the queue then can
- list the rows that point at a task (``referencing_rows``),
- refuse to prune a finished task that a row still points at, or null that row's pointer, per column
  (``OnPrune``; used by ``prune``; an unsuccessful task is kept even for SET_NULL columns, so
  the row stays visible as dangling until it is repaired),
- find *dangling* references: rows pointing at a task that is dead, cancelled, expired, discarded or gone
  (``find_dangling``), and hand them to the owning package's repair function (``repair_dangling``), so
  recovery mends business state and not just queue state. The rows are handed over locked and checked
  again under the lock, so a repair function decides only what the business does with them.

queue_core sees only SQLAlchemy columns and primary keys here: no business word crosses into it.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, false, inspect, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from queue_core._models import in_state, task_table
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


# Receives rows that are locked in the caller's transaction, still point at their task, and whose task is
# still unsuccessful or missing (see ``repair_dangling``).
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
                or_(tasks.c.id.is_(None), in_state(*UNSUCCESSFUL_STATES)),
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


def repair_dangling(
    session: Session,
    references: Sequence[TaskReference],
    dangling: Sequence[DanglingReference] | None = None,
) -> list[DanglingReference]:
    """Hand each column's dangling rows, locked and checked again, to its repair function; does not commit.

    ``dangling`` is what an earlier ``find_dangling`` reported; by default the rows are searched for now
    (up to 1,000 per column). Either way the search ran before any lock: since then a handler may have
    moved a row on, or a person re-queued its task. So each row is locked first
    (``SELECT ... FOR UPDATE SKIP LOCKED``), then kept only if it still points at the same task and that
    task, read again under a share lock (``FOR SHARE`` on PostgreSQL: a requeue waits for the repair to
    commit), is still unsuccessful or missing; ``task_state`` is the state read under the lock.
    A repair function gets only rows that are its to mend, and decides only what the business does.

    SKIP LOCKED, because a repair is never urgent: a row that a handler, a request or another repair holds
    is left for the next call rather than waited for. Waiting would hold the rows locked so far while
    waiting, in an order other paths do not share (docs/architecture.md, "Locks and their order"), and
    NOWAIT would fail the whole column for one busy row. Objects of those rows that the session already
    holds are expired, so ``session.get`` gives the repair function the row as it is under the lock.

    Returns the dangling rows of columns that have no repair function (left for a person; not locked).
    """
    unrepaired: list[DanglingReference] = []
    for ref in references:
        if dangling is None:
            found = find_dangling(session, [ref])
        else:
            found = [d for d in dangling if (d.table, d.column) == (ref.table.name, ref.column.name)]
        if not found:
            continue
        if ref.repair is None:
            unrepaired.extend(found)
            continue
        still_dangling = _lock_still_dangling(session, ref, found)
        if still_dangling:
            ref.repair(session, still_dangling)
    return unrepaired


def _lock_still_dangling(
    session: Session, ref: TaskReference, found: Sequence[DanglingReference]
) -> list[DanglingReference]:
    """Lock the rows of ``found`` nobody else holds; keep those still pointing at a dead or missing task."""
    pk_columns = list(ref.table.primary_key.columns)
    reported = {(_key(pk_columns, d.primary_key), d.task_id) for d in found}
    locked = session.execute(
        select(*pk_columns, ref.column.label("task_id"))
        .where(
            _has_key(pk_columns, [key for key, _ in reported]),
            ref.column.in_({task_id for _, task_id in reported}),
        )
        .order_by(*pk_columns)
        .with_for_update(skip_locked=True)
    ).all()
    pointing = [row for row in locked if (_key(pk_columns, ref.primary_key_of(row)), row.task_id) in reported]
    # FOR SHARE: until the repair commits, nobody moves these tasks on (a requeue waits), so the repair
    # never mends a row whose task has come back to life. Business row first, then its task: the order
    # a handler's completion takes them in.
    states_now = (
        select(task_table.c.id, task_table.c.state)
        .where(task_table.c.id.in_({row.task_id for row in pointing}))
        .with_for_update(read=True)
    )
    states: dict[uuid.UUID, str] = {row.id: row.state for row in session.execute(states_now)}
    unsuccessful = {state.value for state in UNSUCCESSFUL_STATES}
    still_dangling = [
        DanglingReference(
            ref.table.name, ref.column.name, ref.primary_key_of(row), row.task_id, states.get(row.task_id)
        )
        for row in pointing
        if row.task_id not in states or states[row.task_id] in unsuccessful  # missing, or will never succeed
    ]
    _expire_held_objects(session, ref.table, {_key(pk_columns, d.primary_key) for d in still_dangling})
    return still_dangling


def _expire_held_objects(session: Session, table: Table, keys: set[tuple[Any, ...]]) -> None:
    """Expire the session's objects of these rows: loaded before the lock, they may be out of date."""
    for obj in list(session.identity_map.values()):
        state = inspect(obj)
        if table not in state.mapper.tables or state.identity is None:
            continue
        primary_key = dict(
            zip([column.name for column in state.mapper.primary_key], state.identity, strict=True)
        )
        if _key(list(table.primary_key.columns), primary_key) in keys:
            session.expire(obj)


def _key(pk_columns: Sequence[Column[Any]], primary_key: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(primary_key.get(column.name) for column in pk_columns)


def _has_key(pk_columns: Sequence[Column[Any]], keys: Sequence[tuple[Any, ...]]) -> ColumnElement[bool]:
    """SQL: the row's primary key is one of ``keys`` (a plain IN for a one-column key)."""
    if len(pk_columns) == 1:
        return pk_columns[0].in_([key[0] for key in keys])
    return tuple_(*pk_columns).in_(keys)


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
