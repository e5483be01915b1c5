"""Throwaway databases, one per system and measurement, and facts about the server.

A fresh database per measurement keeps one system's bloat, statistics and cached plans from leaking into
the next measurement. Names start with ``bench_`` so the harness only ever drops what it created.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DATABASE_PREFIX = "bench_"


def database_url(admin_url: str, name: str) -> str:
    """The admin URL pointed at database ``name`` (a libpq conninfo string)."""
    return make_conninfo(admin_url, dbname=name)


async def connect(url: str) -> psycopg.AsyncConnection:
    """An autocommit connection: the harness never holds a transaction open while systems run."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def drop_database(admin_url: str, name: str) -> None:
    """Drop ``name`` even if a killed worker left a session in it."""
    if not name.startswith(DATABASE_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: benchmark databases start with {DATABASE_PREFIX!r}")
    async with await connect(admin_url) as admin:
        await admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.asynccontextmanager
async def fresh_database(admin_url: str, name: str) -> AsyncIterator[str]:
    """Create an empty database ``name`` (dropping a leftover first), yield its URL, drop it after."""
    await drop_database(admin_url, name)
    async with await connect(admin_url) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(admin_url, name)
    finally:
        await drop_database(admin_url, name)


async def server_facts(admin_url: str) -> dict[str, str]:
    """Settings that change what the numbers mean: durability and memory above all."""
    names = ["server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections"]
    facts: dict[str, str] = {}
    async with await connect(admin_url) as admin:
        for setting in names:
            cursor = await admin.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting)))
            row = await cursor.fetchone()
            assert row is not None
            facts[setting] = str(row[0])
    return facts


async def settle(url: str) -> None:
    """Leave the database as a long-running installation would have it, and quiet before a measurement.

    VACUUM ANALYZE gives the planner its statistics and sets the visibility map. CHECKPOINT then writes
    out what the setup dirtied: without it, the checkpoint that a large setup (a million history rows
    is about 200 MB of WAL) triggers would land in the middle of the next measurement, competing with
    its commits for the disk, and the measurement would depend on when it started.
    """
    async with await connect(url) as connection:
        await connection.execute("VACUUM ANALYZE")
        await connection.execute("CHECKPOINT")
