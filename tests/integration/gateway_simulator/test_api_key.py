"""Every route but ``/healthz`` answers 401 unless the request carries the API key as a Bearer token.

The routes are read from the app's own ``url_map``, so a route added later is covered without a change
here.
"""

from __future__ import annotations

import pytest
from flask import Flask

from gateway_simulator import create_app
from gateway_simulator.api_key import MIN_API_KEY_LENGTH, ApiKeyError
from tests.support.credentials import bearer
from tests.support.gateway_requests import GATEWAY_API_KEY, GATEWAY_HEADERS, authorized

OPEN_ROUTES = {"/healthz"}
WRONG_KEY = "WOBBLY-TABLE-not-the-gateway-key-0123456789"


def every_guarded_request(app: Flask) -> list[tuple[str, str]]:
    """``(method, path)`` for each method of each route but the open ones, with a key in the path."""
    urls = app.url_map.bind("gateway.test")
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule in OPEN_ROUTES:
            continue
        values = dict.fromkeys(rule.arguments, "order-17-payment-1")
        for method in sorted(rule.methods or ()):
            found.append((method, urls.build(rule.endpoint, values, method=method)))
    assert len(found) >= 6, found  # the charges, refunds, ledger and failure-injection routes at least
    return found


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="gateway_simulator"'),
        (bearer(WRONG_KEY), 'Bearer realm="gateway_simulator", error="invalid_token"'),
        ({"Authorization": "Bearer"}, 'Bearer realm="gateway_simulator", error="invalid_token"'),
        ({"Authorization": f"Basic {GATEWAY_API_KEY}"}, 'Bearer realm="gateway_simulator"'),
        ({"Authorization": GATEWAY_API_KEY}, 'Bearer realm="gateway_simulator"'),
        (
            {"Authorization": f"Bearer {GATEWAY_API_KEY}x"},
            'Bearer realm="gateway_simulator", error="invalid_token"',
        ),
        ({"Authorization": "Bearer naïve-ключ"}, 'Bearer realm="gateway_simulator", error="invalid_token"'),
    ],
    ids=["missing", "wrong", "empty", "basic", "no-scheme", "one-too-long", "not-ascii"],
)
def test_every_route_refuses_a_request_without_the_right_key(
    app: Flask, headers: dict[str, str], challenge: str
) -> None:
    client = app.test_client()

    answers = []
    for method, path in every_guarded_request(app):
        response = client.open(path, method=method, headers=headers)
        body = None if method == "HEAD" else response.json  # a HEAD answer has no body
        answers.append((method, path, response.status_code, response.headers.get("WWW-Authenticate"), body))

    refused = {"error": "unauthorized"}
    assert answers == [(m, p, 401, challenge, None if m == "HEAD" else refused) for m, p, *_ in answers]


def test_every_route_serves_a_request_with_the_right_key(app: Flask) -> None:
    client = app.test_client()

    statuses = [
        (method, path, client.open(path, method=method, headers=GATEWAY_HEADERS).status_code)
        for method, path in every_guarded_request(app)
    ]

    assert [answer for answer in statuses if answer[2] in (401, 403)] == []
    assert client.get("/v1/ledger", headers=GATEWAY_HEADERS).status_code == 200


def test_the_scheme_is_case_insensitive_as_http_says(app: Flask) -> None:
    response = app.test_client().get("/v1/ledger", headers={"Authorization": f"bearer {GATEWAY_API_KEY}"})

    assert response.status_code == 200


def test_the_health_probe_answers_without_a_key(app: Flask) -> None:
    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_an_unknown_route_without_a_key_is_401_so_strangers_cannot_map_the_api(app: Flask) -> None:
    assert app.test_client().get("/v1/customers").status_code == 401
    assert authorized(app.test_client()).get("/v1/customers").status_code == 404


def test_the_simulator_will_not_start_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_API_KEY", raising=False)

    with pytest.raises(ApiKeyError, match=r"GATEWAY_API_KEY is not set; make one with `python3 -c"):
        create_app("sqlite://")


@pytest.mark.parametrize("key", ["changeme", "x" * (MIN_API_KEY_LENGTH - 1), f"{WRONG_KEY} with spaces"])
def test_a_short_or_odd_key_is_refused_without_being_echoed(key: str) -> None:
    with pytest.raises(ApiKeyError, match=f"at least {MIN_API_KEY_LENGTH} visible ASCII") as raised:
        create_app("sqlite://", api_key=key)

    assert key not in str(raised.value)


def test_the_key_comes_from_the_environment_when_not_given(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setenv("GATEWAY_API_KEY", WRONG_KEY)
    app = create_app(database_url)
    try:
        assert app.test_client().get("/v1/ledger", headers=bearer(WRONG_KEY)).status_code == 200
        assert app.test_client().get("/v1/ledger", headers=GATEWAY_HEADERS).status_code == 401
    finally:
        app.extensions["gateway_simulator"].engine.dispose()
