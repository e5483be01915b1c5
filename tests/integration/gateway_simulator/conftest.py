"""Fixtures for the gateway simulator: an app on this test's database, its client, and chosen dice.

``database_url`` runs each test once on PostgreSQL and once on SQLite; the simulator adds its own tables
to that database. ``rolls`` is the app's source of randomness (see ``tests.support.gateway_rolls``).
``client`` sends the tests' API key, as the shop does; ``app.test_client()`` alone sends none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway_simulator import create_app
from tests.support.gateway_requests import GATEWAY_API_KEY, authorized
from tests.support.gateway_rolls import ChosenRolls


@pytest.fixture
def rolls() -> ChosenRolls:
    return ChosenRolls()


@pytest.fixture
def app(database_url: str, rolls: ChosenRolls) -> Iterator[Flask]:
    app = create_app(database_url, api_key=GATEWAY_API_KEY, rng=rolls)
    yield app
    app.extensions["gateway_simulator"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return authorized(app.test_client())
