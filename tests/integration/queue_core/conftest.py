"""Fixtures for queue_core's promises: the test handlers' tables, and real worker processes.

Every test here gets a fresh migrated database (``database_url``, once per backend) with the ``effects``
table of ``tests.support.queue_handlers`` added, and may start worker processes on it with ``workers``.
In-process tests use ``depot`` (the depot's business tables of ``tests.support.inprocess``) and, for
several workers at once, ``three_engines``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from shop.database import create_engine_from_url
from tests.support.inprocess import create_depot_tables
from tests.support.queue_handlers import create_test_tables
from tests.support.worker_process import WorkerProcesses


@pytest.fixture
def engine(engine: Engine) -> Engine:
    """The shared per-test engine, with the test handlers' ``effects`` table created."""
    create_test_tables(engine)
    return engine


@pytest.fixture
def workers(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[WorkerProcesses]:
    """Start worker processes on this test's database; all of them are stopped when the test ends."""
    started = WorkerProcesses(database_url, engine, tmp_path / "worker-logs")
    try:
        yield started
    finally:
        started.processes.stop_all()
        started.processes.print_logs()  # pytest shows this output only if the test failed


@pytest.fixture
def depot(engine: Engine) -> Engine:
    """This test's engine with the depot's business tables (crates, stickers, handler runs) created."""
    create_depot_tables(engine)
    return engine


@pytest.fixture
def three_engines(database_url: str) -> Iterator[list[Engine]]:
    """One engine per worker, as three worker processes would have; the depot tables created."""
    engines = [create_engine_from_url(database_url) for _ in range(3)]
    create_depot_tables(engines[0])
    yield engines
    for each in engines:
        each.dispose()
