"""Fixtures for tests that go through the whole application: the app factory on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shop.app import create_app
from shop.config import Settings
from shop.web_database import dispose_engine


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The real app (every context, the real reactions) on this test's own migrated database."""
    app = create_app(Settings(database_url=database_url))
    app.config["TESTING"] = True
    yield app
    dispose_engine(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
