"""The simulator's own database: where it is, how to connect, and the one insert that settles races.

The simulator keeps its ledger apart from the shop's database (by default ``var/gateway.sqlite3``), the
way a real payment provider's books are out of the merchant's reach. It runs on SQLite for a demo on one
machine and on PostgreSQL when several server processes share it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import sqlalchemy
from sqlalchemy import Engine, Table, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from gateway_simulator.models import Base

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{REPO_ROOT / 'var' / 'gateway.sqlite3'}"
DATABASE_URL_VARIABLE = "GATEWAY_SIMULATOR_DATABASE_URL"
SQLITE_BUSY_TIMEOUT_MS = 15_000


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``GATEWAY_SIMULATOR_DATABASE_URL`` if set, else the SQLite file ``var/gateway.sqlite3`` of the repo."""
    environ = os.environ if environ is None else environ
    return normalize_database_url(environ.get(DATABASE_URL_VARIABLE) or DEFAULT_DATABASE_URL)


def normalize_database_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at psycopg 3; SQLAlchemy would otherwise look for psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def create_gateway_engine(url: str) -> Engine:
    """An engine on ``url``; on SQLite with WAL, a busy timeout and ``BEGIN IMMEDIATE``.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock when a transaction starts, so two requests that both
    read and then write wait for each other instead of failing on the lock upgrade.
    """
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() != "sqlite":
        return sqlalchemy.create_engine(parsed, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        _create_private_file(Path(database))
    engine = sqlalchemy.create_engine(parsed)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _create_private_file(path: Path) -> None:
    """An empty ``0600`` file (in ``0700`` directories) unless one exists: the ledger is nobody else's.

    SQLite would create it with the umask's mode, and its ``-wal`` and ``-shm`` files copy the database
    file's mode. Existing files and directories keep theirs. (The shop has its own copy of this in
    ``shop.private_files``: the simulator shares no code with the shop.)
    """
    missing = [directory for directory in (path.parent, *path.parent.parents) if not directory.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def insert_unless_present(session: Session, model: type[Base], values: Mapping[str, Any], key: str) -> bool:
    """``INSERT ... ON CONFLICT (key) DO NOTHING``: True if this call inserted the row.

    Of two transactions inserting the same key, the second waits for the first to commit and then
    inserts nothing; the caller reads the winner's row afterwards. Both backends speak this dialect.
    """
    table = cast(Table, model.__table__)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    # RETURNING rather than rowcount: psycopg does not report a row count for INSERT ... ON CONFLICT.
    return session.execute(statement.returning(table.c[key])).first() is not None


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module; the "begin" listener issues BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
