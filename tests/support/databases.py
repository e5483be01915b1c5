"""Migrated databases for tests, made the way procrastinate makes them.

Migrating is slow and copying is fast, so each session migrates one template database (which also tests
the migrations) and every test gets its own copy: ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL, a file
copy on SQLite. Names carry the pytest-xdist worker id and a per-session token, so parallel workers and
parallel sessions on one server never collide.
"""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import make_url

from shop import migrations


def session_token() -> str:
    """A short name part unique to this pytest process: the xdist worker id plus a random suffix."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{worker}_{secrets.token_hex(3)}"


class PostgresServer:
    """The server a test session uses, and the databases the session created (and will drop) on it."""

    def __init__(self, admin_url: str, source: str, token: str) -> None:
        self.admin_url = admin_url
        self.source = source
        self.token = token
        self.template_name = f"shop_template_{token}"
        self._created: list[str] = []
        self._counter = itertools.count(1)
        self._template_ready = False

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of ``dbname`` on the same server, as the same user."""
        return make_url(self.admin_url).set(database=dbname).render_as_string(hide_password=False)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (optionally from ``template``), remember it for cleanup, return its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with self._admin_connection() as connection:
            connection.execute(statement)
        self._created.append(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` even if a test left connections open."""
        with self._admin_connection() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self._created:
            self._created.remove(name)

    def fresh_migrated_database(self) -> str:
        """A new database holding the migrated schema and nothing else; its URL."""
        if not self._template_ready:
            migrations.upgrade(self.create_database(self.template_name))
            self._template_ready = True
        return self.create_database(f"shop_test_{self.token}_{next(self._counter)}", self.template_name)

    def fresh_empty_database(self) -> str:
        """A new database with no tables at all, for code that creates its own schema; its URL."""
        return self.create_database(f"shop_test_{self.token}_{next(self._counter)}")

    def drop_all(self) -> None:
        """Drop every database this session created, the template last."""
        for name in reversed(list(self._created)):
            self.drop_database(name)

    def _admin_connection(self) -> psycopg.Connection:
        return psycopg.connect(libpq_url(self.admin_url), autocommit=True)


def libpq_url(url: str) -> str:
    """The same URL without SQLAlchemy's ``+psycopg`` driver suffix, for psycopg and libpq."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class SqliteTemplate:
    """One migrated SQLite file, copied for each test that needs a database."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "template.sqlite3"
        self._ready = False

    def copy_to(self, target: Path) -> str:
        """Copy the migrated template to ``target``; the copy's SQLAlchemy URL."""
        if not self._ready:
            migrations.upgrade(f"sqlite:///{self.path}")
            # The last connection to close checkpoints the WAL; a leftover one would be lost by the copy.
            if Path(f"{self.path}-wal").exists():
                raise RuntimeError(f"{self.path} still has a write-ahead log after migrating")
            self._ready = True
        shutil.copyfile(self.path, target)
        return f"sqlite:///{target}"
