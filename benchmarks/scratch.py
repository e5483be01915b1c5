"""A scratch database for one measurement: created empty, dropped afterwards whatever happened."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

from queue_core import configure_engine


@contextmanager
def scratch_engine(admin_url: str, name: str, **options: object) -> Iterator[Engine]:
    """An engine (configured for queue_core) on a new, empty database ``name`` of the admin URL's server."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    engine = configure_engine(create_engine(admin_url.rsplit("/", 1)[0] + f"/{name}", **options))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
