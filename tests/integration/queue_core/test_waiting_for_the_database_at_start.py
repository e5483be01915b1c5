"""A worker started while PostgreSQL is away waits for it; one that is misconfigured fails at once.

The unreachable server is a port on 127.0.0.1 that nothing listens on (connection refused, as while
PostgreSQL restarts); the misconfigured ones are real refusals from the session's server. That the worker
then starts and runs tasks once the server comes up is the end-to-end suite's to show, with a cluster
it can stop (tests/e2e/test_worker_waiting_for_the_database.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from queue_core import Worker
from queue_core._startup import not_reachable_yet
from shop.database import create_engine_from_url
from tests.support.databases import PostgresServer, libpq_url
from tests.support.inprocess import fast_settings, wait_for
from tests.support.processes import free_port
from tests.support.queue_handlers import registry

WAITING = "database not reachable yet"


@pytest.fixture
def unreachable_engine() -> Iterator[Engine]:
    """An engine on a port where no server listens: every connection is refused."""
    engine = create_engine_from_url(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/shop")
    yield engine
    engine.dispose()


def waiting_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(WAITING)]


def test_a_worker_waits_for_a_refused_connection_and_gives_up_after_its_startup_patience(
    unreachable_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="queue_core")
    worker = Worker(unreachable_engine, registry, fast_settings(startup_patience=1.5))
    started = time.monotonic()

    with pytest.raises(DBAPIError, match="Connection refused"):
        worker.run()

    assert 1.5 <= time.monotonic() - started < 5.0
    [line] = waiting_lines(caplog)  # one line, though it tried several times: at most one per 5 s
    assert "Connection refused" in line
    assert "; retrying in 0." in line
    assert "gave up after 1.5 s (startup_patience)" in caplog.text


def test_a_worker_stopped_while_it_waits_returns_at_once(
    unreachable_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="queue_core")
    worker = Worker(unreachable_engine, registry, fast_settings())  # startup_patience None: no end
    failures: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as error:
            failures.append(error)

    thread = threading.Thread(target=run, name="waiting-worker")
    thread.start()
    wait_for(lambda: waiting_lines(caplog), what="the worker logs that it waits for the database")
    stopped_at = time.monotonic()
    worker.stop()
    thread.join(timeout=5.0)

    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 1.0
    assert failures == []
    assert "stopped before the database was reachable" in caplog.text


@pytest.mark.parametrize(
    ("database", "user", "refusal"),
    [
        ("no_such_shop", "postgres", 'database "no_such_shop" does not exist'),
        ("postgres", "no_such_clerk", 'role "no_such_clerk" does not exist'),
    ],
    ids=["missing-database", "unknown-role"],
)
def test_a_misconfigured_worker_fails_at_once_without_waiting(
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
    database: str,
    user: str,
    refusal: str,
) -> None:
    caplog.set_level(logging.INFO, logger="queue_core")
    url = postgres_server.url(database).replace("//postgres@", f"//{user}@", 1)
    engine = create_engine_from_url(url)
    started = time.monotonic()
    try:
        with pytest.raises(DBAPIError, match=refusal):
            Worker(engine, registry, fast_settings()).run()  # startup_patience None: it would wait forever
    finally:
        engine.dispose()

    assert time.monotonic() - started < 5.0
    assert waiting_lines(caplog) == []


def test_a_worker_on_a_database_without_the_queues_tables_fails_at_once(
    postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="queue_core")
    engine = create_engine_from_url(postgres_server.fresh_empty_database())
    try:
        with pytest.raises(DBAPIError, match='relation "queue_workers" does not exist'):
            Worker(engine, registry, fast_settings()).run()
    finally:
        engine.dispose()

    assert waiting_lines(caplog) == []


def test_a_session_ended_by_the_server_counts_as_not_reachable_yet(postgres_server: PostgresServer) -> None:
    # What a worker meets when the server shuts down under it: SQLSTATE 57P01 admin_shutdown.
    url = libpq_url(postgres_server.admin_url)
    with psycopg.connect(url, autocommit=True) as doomed, psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (doomed.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError) as ended:
            doomed.execute("SELECT 1")

    assert ended.value.sqlstate == "57P01"
    assert not_reachable_yet(ended.value) == "terminating connection due to administrator command"
