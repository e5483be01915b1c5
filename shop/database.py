"""Engines, built one way for the web app, the workers, the CLI and the tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, make_url

from queue_core import configure_engine
from shop.private_files import create_private_file


@dataclass(frozen=True)
class SessionLimits:
    """How long a PostgreSQL session may wait for a row lock, sit idle inside a transaction, or run one
    statement, each in seconds (``None``: PostgreSQL's default, no limit).

    They are what keeps one stalled process (a frozen worker, a paused container, a debugger) from stalling
    the rest: a session past ``idle_in_transaction_seconds`` is ended by the server, and its locks go with
    it; a statement that waits past ``lock_timeout_seconds`` fails with ``lock_not_available`` instead of
    waiting as long as the stall. See docs/architecture.md, "Locks and their order", for the values.
    """

    lock_timeout_seconds: float | None = None
    idle_in_transaction_seconds: float | None = None
    statement_timeout_seconds: float | None = None

    def settings(self) -> dict[str, int]:
        """The PostgreSQL settings, in milliseconds, that these limits set."""
        chosen = {
            "lock_timeout": self.lock_timeout_seconds,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_seconds,
            "statement_timeout": self.statement_timeout_seconds,
        }
        return {name: max(1, round(limit * 1000)) for name, limit in chosen.items() if limit is not None}


def create_engine_from_url(
    url: str, *, pool_size: int = 5, max_overflow: int = 10, limits: SessionLimits | None = None
) -> Engine:
    """An engine the queue can run on: every engine the project makes goes through here.

    ``pool_size``: connections the pool keeps open on PostgreSQL (SQLite files need no pool of them);
    ``max_overflow``: how many more it may open under load. A worker passes 0: its pool is then the
    bound on the connections its tasks use, whatever their number (``shop worker --db-connections``).
    ``limits``: on PostgreSQL, what every connection of the engine sets (``SessionLimits``): the web
    app's and the workers' own.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_file(parsed.database)
        return configure_engine(sqlalchemy.create_engine(parsed))
    # A pooled connection can outlive a database restart; check it before handing it out.
    engine = sqlalchemy.create_engine(
        parsed, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow
    )
    settings = limits.settings() if limits is not None else {}
    if settings:

        @sqlalchemy.event.listens_for(engine, "connect")
        def set_limits(dbapi_connection: Any, _record: Any) -> None:
            # Once per new connection, and kept for its life: the pool does not reset session settings.
            with dbapi_connection.cursor() as cursor:
                for name, milliseconds in settings.items():
                    cursor.execute(f"SET {name} = {milliseconds}")
            dbapi_connection.commit()

    return configure_engine(engine)


def _create_sqlite_file(database: str | None) -> None:
    # SQLite creates a missing database file (with the umask's mode) but not the directory it lives in
    # (``var/`` on a fresh clone): both are made here, readable by their owner only.
    if database and database != ":memory:" and not database.startswith("file:"):
        create_private_file(Path(database))
