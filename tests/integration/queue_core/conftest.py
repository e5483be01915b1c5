"""Fixtures for queue_core's promises: the test handlers' tables, and real worker processes.

Every test here gets a fresh migrated database (``database_url``, once per backend) with the ``effects``
table of ``tests.support.queue_handlers`` added, and may start worker processes on it with ``workers``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.queue_handlers import create_test_tables
from tests.support.worker_process import WorkerProcesses


@pytest.fixture
def engine(engine: Engine) -> Engine:
    """The shared per-test engine, with the test handlers' ``effects`` table created."""
    create_test_tables(engine)
    return engine


@pytest.fixture
def workers(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[WorkerProcesses]:
    """Start worker processes on this test's database; all of them are killed when the test ends."""
    with WorkerProcesses(database_url, engine, tmp_path / "worker-logs") as processes:
        try:
            yield processes
        finally:
            processes.stop_all()
            processes.print_logs()  # pytest shows this output only if the test failed
