"""The composition root's web surface: the OpenAPI document, offline docs, probes and error shapes."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg import errors as pg_errors
from sqlalchemy.exc import OperationalError

from shop.web.app import create_app
from shop.web.database import dispose_engine
from tests.support.credentials import web_settings

PATH_PARAMETER = re.compile(r"\{[^}]+\}")
NASTY_VALUES: list[Any] = [
    None,
    "",
    "x" * 5000,
    -1,
    0,
    10**12,
    3.5,
    True,
    [],
    {},
    "\u0000",
    "💥",
    "' OR 1=1 --",
]


def test_the_openapi_document_lists_every_context_endpoint(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()

    assert document["info"]["title"] == "Inverted shop"
    assert {
        "/api/orders",
        "/api/orders/{order_id}",
        "/api/orders/{order_id}/cancel",
        "/api/orders/{order_id}/payment",
        "/api/orders/{order_id}/shipment",
        "/api/payments",
        "/api/shipments",
        "/api/shipping/batches/{task_id}",
    } <= set(document["paths"])


def test_the_documented_example_order_is_accepted_as_it_stands(client: FlaskClient) -> None:
    """What Swagger UI's "Try it out" sends for ``POST /api/orders`` before anyone edits it."""
    document = client.get("/api/openapi.json").get_json()
    body = document["paths"]["/api/orders"]["post"]["requestBody"]["content"]["application/json"]
    example = body["example"]

    response = client.post("/api/orders", json=example)

    assert response.status_code == 202, response.get_json()
    assert [line["sku"] for line in response.get_json()["lines"]] == [
        line["sku"] for line in example["lines"]
    ]


def test_the_api_docs_page_loads_its_scripts_from_the_app_itself(client: FlaskClient) -> None:
    page = client.get("/api/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)

    assert assets, page
    for asset in assets:
        assert asset.startswith("/api/docs/assets/"), f"{asset} would need the internet"
        with client.get(asset) as response:  # a file response: close it, or its file stays open
            assert response.status_code == 200


def test_unknown_routes_and_methods_answer_json(client: FlaskClient) -> None:
    missing = client.get("/api/armchairs")
    wrong_method = client.put("/api/orders")

    assert (missing.status_code, missing.get_json()["code"]) == (404, 404)
    assert (wrong_method.status_code, wrong_method.get_json()["code"]) == (405, 405)


def test_no_input_to_any_endpoint_produces_a_server_error(client: FlaskClient) -> None:
    """Every documented operation, fed malformed paths, queries and bodies, answers below 500."""
    document = client.get("/api/openapi.json").get_json()
    answers: list[tuple[str, str, int]] = []
    for template, operations in document["paths"].items():
        for method in operations:
            if method == "parameters":
                continue
            for value in NASTY_VALUES:
                path = PATH_PARAMETER.sub(str(value), template)
                call = getattr(client, method)
                answers.append((method, path, call(path, json=value).status_code))
                answers.append(
                    (method, path, call(path, data="{not json", content_type="application/json").status_code)
                )
                answers.append(
                    (
                        method,
                        f"{template.split('{')[0]}?limit={value}&state={value}",
                        call(f"{template.split('{')[0]}?limit={value}&state={value}").status_code,
                    )
                )

    server_errors = [answer for answer in answers if answer[2] >= 500]
    assert not server_errors, server_errors


def test_readiness_reports_the_database_and_the_queue(client: FlaskClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "database": "ok",
        "queue": {"due_tasks": 0, "oldest_due_age_seconds": None},
    }


def test_readiness_fails_when_the_backlog_is_over_its_threshold(database_url: str) -> None:
    app = create_app(web_settings(database_url, ready_max_due_tasks=1))
    client = app.test_client()
    body = {
        "customer_email": "ada@example.com",
        "shipping_country": "DE",
        "lines": [{"sku": "SHINY-LAMP", "quantity": 1}],
    }
    assert client.post("/api/orders", json=body).status_code == 202  # two screening tasks now wait

    response = client.get("/readyz")

    dispose_engine(app)
    assert response.status_code == 503
    assert response.get_json()["queue"]["due_tasks"] == 2
    assert response.get_json()["problems"] == ["2 due tasks (most allowed: 1)"]


def test_readiness_names_an_unreachable_database_to_callers_and_why_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(web_settings("postgresql+psycopg://clerk:s3cret@127.0.0.1:1/shop"))

    with caplog.at_level(logging.WARNING, logger="shop.web.health"):
        response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
    (record,) = caplog.records
    assert "127.0.0.1" in record.getMessage() and "\n" not in record.getMessage()
    assert "s3cret" not in record.getMessage()


@pytest.fixture
def colliding_app(app: Flask) -> Flask:
    """The app with one extra route that fails the way a database collision or outage does."""

    @app.get("/test/collide/<kind>")
    def collide(kind: str) -> str:
        causes: dict[str, Exception] = {
            "deadlock": pg_errors.DeadlockDetected("deadlock detected"),
            "serialization": pg_errors.SerializationFailure("could not serialize access"),
            "outage": pg_errors.AdminShutdown("terminating connection due to administrator command"),
        }
        raise OperationalError("UPDATE orders ...", {}, causes[kind])

    return app


@pytest.mark.parametrize("kind", ["deadlock", "serialization"])
def test_a_collision_between_transactions_is_a_409_asking_to_retry(colliding_app: Flask, kind: str) -> None:
    response = colliding_app.test_client().get(f"/test/collide/{kind}")

    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert "send the request again" in response.get_json()["message"]


def test_a_database_outage_is_a_503_asking_the_client_to_try_again_shortly(colliding_app: Flask) -> None:
    response = colliding_app.test_client().get("/test/collide/outage")

    assert response.status_code == 503
    assert response.get_json()["message"] == "the database is unavailable; try again shortly"
