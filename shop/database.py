"""Engines, built one way for the web app, the workers, the CLI and the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, make_url

from queue_core import configure_engine
from shop.private_files import create_private_file


def create_engine_from_url(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, lock_timeout_seconds: float | None = None
) -> Engine:
    """An engine the queue can run on: every engine the project makes goes through here.

    ``pool_size``: connections the pool keeps open on PostgreSQL (SQLite files need no pool of them);
    ``max_overflow``: how many more it may open under load. A worker passes 0: its pool is then the
    bound on the connections its tasks use, whatever their number (``shop worker --db-connections``).
    ``lock_timeout_seconds``: on PostgreSQL, how long any statement on these connections waits for a row
    lock before it fails with ``lock_not_available`` (the web app's: a request never waits on a lock for
    longer than it is willing to answer in).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_file(parsed.database)
        return configure_engine(sqlalchemy.create_engine(parsed))
    # A pooled connection can outlive a database restart; check it before handing it out.
    engine = sqlalchemy.create_engine(
        parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow
    )
    if lock_timeout_seconds is not None:
        milliseconds = max(1, round(lock_timeout_seconds * 1000))

        @sqlalchemy.event.listens_for(engine, "connect")
        def limit_lock_waits(dbapi_connection: Any, _record: Any) -> None:
            # Once per new connection, and kept for its life: the pool does not reset session settings.
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = {milliseconds}")
            dbapi_connection.commit()

    return configure_engine(engine)


def _create_sqlite_file(database: str | None) -> None:
    # SQLite creates a missing database file (with the umask's mode) but not the directory it lives in
    # (``var/`` on a fresh clone): both are made here, readable by their owner only.
    if database and database != ":memory:" and not database.startswith("file:"):
        create_private_file(Path(database))
