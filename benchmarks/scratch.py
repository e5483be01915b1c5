"""A scratch database for one measurement: created empty, dropped afterwards whatever happened; and a
long history of finished tasks, loaded into it in one statement."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, text

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


FINISHED_TASKS = text(
    """
    INSERT INTO queue_tasks (id, name, queue, state, priority, attempts, max_attempts,
                             run_at, created_at, started_at, finished_at, cancel_requested)
    SELECT gen_random_uuid(), :name, 'default', 'succeeded', 0, 1, 5, ago.at, ago.at, ago.at,
           ago.at + n * make_interval(secs => CAST(:apart_seconds AS float8)), false
    FROM generate_series(1, :count) AS n,
         LATERAL (SELECT now() - make_interval(days => CAST(:days_ago AS integer)) AS at) AS ago
    """
)


def insert_finished_tasks(
    connection: Connection, count: int, *, name: str, days_ago: int, apart_seconds: float = 0.0
) -> None:
    """``count`` tasks named ``name`` that succeeded ``days_ago`` days ago (``apart_seconds`` between
    consecutive finishes), in one statement and without ANALYZE."""
    connection.execute(
        FINISHED_TASKS, {"count": count, "name": name, "days_ago": days_ago, "apart_seconds": apart_seconds}
    )
