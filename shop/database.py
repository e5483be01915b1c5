"""Engines, built one way for the web app, the workers, the CLI and the tests."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy
from sqlalchemy import Engine, make_url

from queue_core.engine import configure_engine


def create_engine_from_url(url: str) -> Engine:
    """An engine the queue can run on: every engine the project makes goes through here."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_directory(parsed.database)
        return configure_engine(sqlalchemy.create_engine(parsed))
    # A pooled connection can outlive a database restart; check it before handing it out.
    return configure_engine(sqlalchemy.create_engine(parsed, pool_pre_ping=True))


def _create_sqlite_directory(database: str | None) -> None:
    # SQLite creates a missing database file but not the directory it lives in (``var/`` on a fresh clone).
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
