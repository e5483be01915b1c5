"""The index a one-to-one task pointer wants: UNIQUE over the rows that point at a task, and only those.

A business column holding the ID of the task that works on its row (``payments.processing_task_id``) is
NULL once the work is done, so on most rows. A partial UNIQUE index over its non-NULL values does two
jobs at once: the database refuses a second row pointing at the same task (one task serves at most one
row), and "what is being processed right now" (``WHERE processing_task_id IS NOT NULL``) reads the
in-flight rows alone, however many finished rows the table holds. A batch pointer, shared by many rows,
wants a plain index instead.
"""

from __future__ import annotations

from sqlalchemy import Index, text


def unique_task_pointer(table: str, column: str) -> Index:
    """A partial UNIQUE index ``uq_<table>_<column>`` over ``column``'s non-NULL values, on PostgreSQL
    and SQLite alike; put it in the model's ``__table_args__``."""
    open_pointers = text(f"{column} IS NOT NULL")
    return Index(
        f"uq_{table}_{column}",
        column,
        unique=True,
        postgresql_where=open_pointers,
        sqlite_where=open_pointers,
    )
