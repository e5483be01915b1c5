"""What the queue needs from a SQLAlchemy engine, per backend, and the worker's bookkeeping engine.

PostgreSQL needs nothing special. SQLite needs three things: the ``queue_now`` clock function, WAL mode,
and ``BEGIN IMMEDIATE`` so that every transaction takes the write lock up front. Without the last one,
two transactions that both read and then write would deadlock on the lock upgrade and fail at once
instead of waiting. The price is SQLite's single-writer model made explicit: one transaction at a time,
readers included, and a handler holds the lock from its first statement until its task commits. That
suits a demo on one machine; give SQLite workers short handlers and ``group_size=1``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection

from queue_core._clock import install_sqlite_clock

SQLITE_BUSY_TIMEOUT_MS = 30_000


def configure_engine(engine: Engine) -> Engine:
    """Prepare ``engine`` for the queue (and for business code sharing it); returns the same engine."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        event.listen(engine, "checkin", _on_sqlite_checkin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module; the "begin" listener issues BEGIN itself.
    dbapi_connection.isolation_level = None
    install_sqlite_clock(dbapi_connection)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_sqlite_checkin(dbapi_connection: Any, _record: Any) -> None:
    # SQLite keeps a transaction open, write lock and all, after a COMMIT it refused (a deferred
    # constraint failed), and the pool does not roll back a transaction SQLAlchemy believes ended. Left
    # in the pool like that, the connection would block every other writer: close it on the way in.
    if dbapi_connection is not None and dbapi_connection.in_transaction:
        dbapi_connection.rollback()


def _on_sqlite_begin(connection: Connection) -> None:
    raw = connection.connection.dbapi_connection
    if raw is not None and raw.in_transaction:  # the same, for a connection that never went back
        raw.rollback()
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def bookkeeping_engine(engine: Engine, pool_size: int = 4) -> Engine:
    """A small engine for a worker's own writes (claims, heartbeats, maintenance) on the same database.

    On PostgreSQL its connections set ``synchronous_commit = off``: such a commit returns before its WAL
    reaches the disk. That is safe for bookkeeping alone. A claim, heartbeat or rescue lost in a database
    crash is simply done again, and since the WAL is written in order, a completion (which always commits
    synchronously, on the application's engine) is never durable while the claim before it is not. On
    SQLite, where there is one writer anyway, the engine itself is returned.
    """
    if engine.dialect.name != "postgresql":
        return engine
    return configure_engine(
        create_engine(
            engine.url,
            pool_size=pool_size,
            # Four threads use it, one connection each: claims, heartbeats, maintenance, and the session
            # lock's thread registering the worker again after a lost lock.
            max_overflow=0,
            pool_pre_ping=True,
            connect_args={"options": "-c synchronous_commit=off"},
        )
    )
