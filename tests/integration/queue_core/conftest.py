"""Fixtures for queue_core's promises: the test handlers' tables, the depot's, engines for several workers.

Every test here gets a fresh migrated database (``database_url``, once per backend) with the ``effects``
table of ``tests.support.queue_handlers`` added, and may start worker processes on it with ``workers``
(tests/integration/conftest.py). In-process tests use ``depot`` (the depot's business tables of
``tests.support.inprocess``) and, for several workers at once, ``three_engines``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from shop.database import create_engine_from_url
from tests.support.inprocess import create_depot_tables
from tests.support.queue_handlers import create_test_tables


@pytest.fixture
def engine(engine: Engine) -> Engine:
    """The shared per-test engine, with the test handlers' ``effects`` table created."""
    create_test_tables(engine)
    return engine


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
