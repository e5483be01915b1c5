"""Fixtures for tests that go through the whole application: the app factory on a fresh database, and
real worker processes (running the test handlers of ``tests.support.queue_handlers``) beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from shop.web.app import create_app
from shop.web.database import dispose_engine
from tests.support.credentials import OPERATOR_HEADERS, web_settings
from tests.support.queue_handlers import create_test_tables
from tests.support.worker_process import WorkerProcesses


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The real app (every context, the real reactions) on this test's own migrated database."""
    app = create_app(web_settings(database_url))
    app.config["TESTING"] = True
    yield app
    dispose_engine(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client that presents an operator key on every request, as an operator's script would."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = OPERATOR_HEADERS["Authorization"]
    return client


@pytest.fixture
def anonymous_client(app: Flask) -> FlaskClient:
    """A client with no credentials at all: anyone on the internet."""
    return app.test_client()


@pytest.fixture
def workers(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[WorkerProcesses]:
    """Start worker processes on this test's database; all of them are stopped when the test ends."""
    create_test_tables(engine)  # the test handlers' ``effects`` table
    started = WorkerProcesses(database_url, engine, tmp_path / "worker-logs")
    try:
        yield started
    finally:
        started.processes.stop_all()
        started.processes.print_logs()  # pytest shows this output only if the test failed
