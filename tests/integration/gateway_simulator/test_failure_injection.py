"""The failure-injection settings: read, changed in part, checked, and shared by every process."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from gateway_simulator import create_app
from tests.support.gateway_requests import GATEWAY_API_KEY, authorized

WELL_BEHAVED = {
    "latency_ms": 0,
    "transient_error_rate": 0.0,
    "timeout_rate": 0.0,
    "decline_rate": 0.0,
    "hang_seconds": 10.0,
}


def test_a_new_gateway_is_well_behaved(client: FlaskClient) -> None:
    assert client.get("/v1/failure-injection").json == WELL_BEHAVED


def test_a_partial_update_changes_only_the_settings_given(client: FlaskClient) -> None:
    response = client.put("/v1/failure-injection", json={"decline_rate": 0.25, "latency_ms": 40})

    assert response.status_code == 200
    assert response.json == {**WELL_BEHAVED, "decline_rate": 0.25, "latency_ms": 40}
    assert client.get("/v1/failure-injection").json == response.json


def test_the_settings_are_shared_through_the_database(app: Flask, database_url: str) -> None:
    authorized(app.test_client()).put("/v1/failure-injection", json={"timeout_rate": 0.5})
    other = create_app(database_url, api_key=GATEWAY_API_KEY)
    try:
        assert authorized(other.test_client()).get("/v1/failure-injection").json == {
            **WELL_BEHAVED,
            "timeout_rate": 0.5,
        }
    finally:
        other.extensions["gateway_simulator"].engine.dispose()


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("latency_ms", -1, "Must be greater than or equal to 0 and less than or equal to 60000."),
        ("latency_ms", 0.5, "Not a valid integer."),
        ("transient_error_rate", 1.5, "Must be greater than or equal to 0.0 and less than or equal to 1.0."),
        ("timeout_rate", -0.1, "Must be greater than or equal to 0.0 and less than or equal to 1.0."),
        ("decline_rate", "half", "Not a valid number."),
        ("decline_rate", True, "Not a valid number."),
        ("hang_seconds", 0, "Must be greater than 0.0 and less than or equal to 600.0."),
        ("hang_seconds", 10**400, "Number too large."),
        ("hang_seconds", None, "Field may not be null."),
        ("chaos_monkey", 1, "Unknown field."),
    ],
    ids=lambda value: str(value)[:24],
)
def test_every_setting_is_checked(client: FlaskClient, field: str, value: object, complaint: str) -> None:
    response = client.put("/v1/failure-injection", json={field: value})

    assert response.status_code == 422
    assert response.json == {"errors": {field: [complaint]}}
    assert client.get("/v1/failure-injection").json == WELL_BEHAVED


def test_not_a_number_is_refused(client: FlaskClient) -> None:
    response = client.put("/v1/failure-injection", data=b'{"decline_rate": NaN}')

    assert response.status_code == 422
    assert response.json == {
        "errors": {"decline_rate": ["Special numeric values (nan or infinity) are not permitted."]}
    }
