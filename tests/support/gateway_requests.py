"""Requests to the gateway simulator as the tests make them, with vivid defaults.

Each helper takes anything with Flask's test-client interface and returns the response. The tests' API
key is ``GATEWAY_API_KEY``; ``authorized`` makes a test client send it, as the shop's client does.
"""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.credentials import bearer

GATEWAY_API_KEY = "CRUNCHY-ARMCHAIR-gateway-key-for-tests-only"
GATEWAY_HEADERS = bearer(GATEWAY_API_KEY)
ARMCHAIR = {"amount_cents": 12_900, "currency": "EUR", "reference": "ORDER-CRUNCHY-ARMCHAIR"}


def authorized(client: FlaskClient, api_key: str = GATEWAY_API_KEY) -> FlaskClient:
    """``client``, sending ``api_key`` with every request from now on."""
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(api_key)["Authorization"]
    return client


def post_charge(client: FlaskClient, key: str | None, **changes: Any) -> TestResponse:
    """``POST /v1/charges`` for the armchair (fields in ``changes`` replace or, set to ..., drop its own)."""
    body = {name: value for name, value in {**ARMCHAIR, **changes}.items() if value is not ...}
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/v1/charges", json=body, headers=headers)


def post_refund(client: FlaskClient, key: str | None, charge_key: str) -> TestResponse:
    """``POST /v1/refunds`` of the charge made under ``charge_key``."""
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/v1/refunds", json={"charge_idempotency_key": charge_key}, headers=headers)


def inject(client: FlaskClient, **settings: float) -> None:
    """Set failure-injection knobs, and fail loudly if the simulator refuses them."""
    response = client.put("/v1/failure-injection", json=settings)
    assert response.status_code == 200, response.json


def ledger(client: FlaskClient, reference: str | None = None) -> dict[str, Any]:
    """``GET /v1/ledger`` (of one reference)."""
    response = client.get("/v1/ledger", query_string={} if reference is None else {"reference": reference})
    assert response.status_code == 200, response.json
    answer: dict[str, Any] = response.json  # type: ignore[assignment]
    return answer
