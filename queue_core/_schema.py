"""The queue's tables for applications without Alembic: one call, the schema the migrations build.

``create_tables`` builds from the models what ``queue_core/migrations`` builds revision by revision; a test
compares the two on both backends (tests/integration/queue_core/test_schema.py).
"""

from __future__ import annotations

from sqlalchemy import Engine

from queue_core._models import QueueBase


def create_tables(engine: Engine) -> None:
    """Create the queue's tables and their indexes where they do not exist yet; safe to call at every start.

    It never alters a table that exists, so it cannot bring an older queue schema up to date: an
    application that upgrades queue_core across a schema change runs the migrations (docs/queue-core.md).
    """
    QueueBase.metadata.create_all(engine)
