"""The queue's tables for applications without Alembic: one call, the schema the migrations build.

``create_tables`` builds from the models what ``queue_core/migrations`` builds revision by revision; a test
compares the two on both backends (tests/integration/queue_core/test_schema.py).
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from queue_core._models import QueueBase

# Any fixed number works; this one spells "queue" in ASCII, so it is recognisable in pg_locks.
_SCHEMA_LOCK = 0x7175657565


def create_tables(engine: Engine) -> None:
    """Create the queue's tables and their indexes where they do not exist yet; safe to call at every start,
    from every process at once.

    ``create_all`` alone is not: two processes starting together on an empty PostgreSQL database both see
    no table and both create it, and one fails on a duplicate. So on PostgreSQL the call holds a
    transaction-level advisory lock while it checks and creates; on SQLite, ``configure_engine`` makes
    every transaction take the write lock first (``BEGIN IMMEDIATE``), which does the same.
    It never alters a table that exists, so it cannot bring an older queue schema up to date: an
    application that upgrades queue_core across a schema change runs the migrations (docs/queue-core.md).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        QueueBase.metadata.create_all(connection)
