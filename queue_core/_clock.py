"""Time as the database sees it.

Leases, delays and expiry are compared against one clock: the database's. Workers on many machines then
never disagree about whether a lease has run out, however far their own clocks drift.

PostgreSQL has ``statement_timestamp()`` (not ``now()``, which stays at the start of a long transaction).
SQLite has no sub-second clock that compares with stored timestamps, so each
SQLite connection gets a ``queue_now(offset)`` function (see ``install_sqlite_clock``) that reads the host
clock; an SQLite database lives on one host, so that clock is shared by all its workers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime, Float, TypeDecorator, literal
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores and returns naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None or dialect.name != "sqlite":
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class db_now(FunctionElement[dt.datetime]):  # noqa: N801 - reads as a SQL function
    """The database's current time, optionally shifted by ``offset`` seconds (a number or an expression).

    A NULL offset gives NULL, on both backends.
    """

    type = UtcDateTime()
    inherit_cache = True

    def __init__(self, offset: float | ColumnElement[Any] | None = None) -> None:
        if offset is None:
            super().__init__()
        elif isinstance(offset, ColumnElement):
            super().__init__(offset)
        else:
            super().__init__(literal(float(offset), Float()))


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.clauses.clauses:
        return "statement_timestamp()"
    offset = compiler.process(element.clauses, **kw)
    return f"(statement_timestamp() + make_interval(secs => {offset}))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.clauses.clauses:
        return "queue_now(0)"
    return f"queue_now({compiler.process(element.clauses, **kw)})"


def _sqlite_now(offset: float | None) -> str | None:
    if offset is None:  # like PostgreSQL: now() + NULL interval is NULL
        return None
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    return moment.replace(tzinfo=None).strftime(SQLITE_FORMAT)


def install_sqlite_clock(dbapi_connection: Any) -> None:
    """Register ``queue_now(offset)`` on a raw sqlite3 connection (called from a connect event)."""
    dbapi_connection.create_function("queue_now", 1, _sqlite_now)
