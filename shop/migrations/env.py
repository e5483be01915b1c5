"""Alembic's entry point: which database, which tables.

The URL comes from ``config.attributes["url"]`` (set by ``shop.migrations.alembic_config``) or, failing
that, from ``DATABASE_URL``. SQLite migrations run in batch mode, because SQLite alters tables by copying.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from queue_core import UtcDateTime
from shop.config import Settings, normalize_database_url
from shop.database import create_engine_from_url
from shop.migrations import TARGET_METADATA


def render_item(type_: str, obj: Any, _autogen_context: AutogenContext) -> str | Literal[False]:
    """Write ``UtcDateTime`` columns as the plain type they create, so revisions never import app code."""
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _database_url() -> str:
    url = context.config.attributes.get("url")
    return normalize_database_url(url) if url else Settings.from_env().database_url


def run_migrations_offline() -> None:
    """Write the SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    url = _database_url()
    context.configure(
        url=url,
        target_metadata=TARGET_METADATA,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations in one transaction on a fresh engine, disposed of afterwards."""
    engine = create_engine_from_url(_database_url())
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=TARGET_METADATA,
                render_as_batch=connection.dialect.name == "sqlite",
                render_item=render_item,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
