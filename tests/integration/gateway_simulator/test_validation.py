"""Bad input is answered 400 or 422 with the reasons, unknown routes 404, and never with a 500."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient

from tests.support.gateway_requests import ledger, post_charge

OUT_OF_RANGE = "Must be greater than or equal to 1 and less than or equal to 99999999."


@pytest.mark.parametrize(
    ("field", "value", "complaint"),
    [
        ("amount_cents", ..., "Missing data for required field."),
        ("amount_cents", 0, OUT_OF_RANGE),
        ("amount_cents", -5, OUT_OF_RANGE),
        ("amount_cents", 100_000_000, OUT_OF_RANGE),
        ("amount_cents", 10**40, OUT_OF_RANGE),
        ("amount_cents", 12.5, "Not a valid integer."),
        ("amount_cents", "1290", "Not a valid integer."),
        ("amount_cents", True, "Not a valid integer."),
        ("amount_cents", None, "Field may not be null."),
        ("currency", ..., "Missing data for required field."),
        ("currency", "eur", "Must be three upper-case letters (ISO 4217)."),
        ("currency", "EURO", "Must be three upper-case letters (ISO 4217)."),
        ("currency", "EUR\n", "Must be three upper-case letters (ISO 4217)."),
        ("currency", 978, "Not a valid string."),
        ("reference", ..., "Missing data for required field."),
        ("reference", "", "Length must be between 1 and 100."),
        ("reference", "R" * 101, "Length must be between 1 and 100."),
        ("reference", "ORDER\x00", "Must contain printable characters only."),
        ("reference", "ORDER-\ud800", "Must contain printable characters only."),
        ("coupon", "FREE-ARMCHAIR", "Unknown field."),
    ],
    ids=lambda value: repr(value)[:24],
)
def test_every_charge_field_is_checked(
    client: FlaskClient, field: str, value: object, complaint: str
) -> None:
    response = post_charge(client, "order-17-payment-1", **{field: value})

    assert response.status_code == 422
    assert response.json == {"errors": {field: [complaint]}}
    assert ledger(client)["charges"] == []


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b'"armchair"', b"[" * 10_000, b'{"amount_cents": 1', b"\xff\xfe"],
    ids=["empty", "not-json", "array", "string", "nested-deep", "truncated", "not-utf8"],
)
def test_a_body_that_is_not_a_json_object_is_refused(client: FlaskClient, body: bytes) -> None:
    response = client.post(
        "/v1/charges",
        data=body,
        headers={"Idempotency-Key": "order-17-payment-1", "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json == {"errors": {"_schema": ["Send a JSON object."]}}


@pytest.mark.parametrize(
    "key", [None, "", "k" * 256, "tab\there"], ids=["missing", "empty", "too-long", "control-character"]
)
def test_a_charge_without_a_usable_idempotency_key_is_a_400_naming_the_header(
    client: FlaskClient, key: str | None
) -> None:
    response = post_charge(client, key)

    assert response.status_code == 400
    assert response.json is not None
    assert list(response.json["errors"]) == ["Idempotency-Key"]


def test_a_key_of_255_characters_is_accepted(client: FlaskClient) -> None:
    assert post_charge(client, "k" * 255).status_code == 201


def test_unknown_routes_and_methods_answer_json(client: FlaskClient) -> None:
    assert (client.get("/v1/payouts").status_code, client.get("/v1/payouts").json) == (
        404,
        {"error": "not_found"},
    )
    assert (client.delete("/v1/ledger").status_code, client.delete("/v1/ledger").json) == (
        405,
        {"error": "method_not_allowed"},
    )


def test_a_wrong_method_is_told_which_methods_are_allowed(client: FlaskClient) -> None:
    response = client.delete("/v1/failure-injection")

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "PUT"}


def test_a_two_megabyte_body_is_refused_with_a_json_413(client: FlaskClient) -> None:
    response = client.post(
        "/v1/charges",
        data=b'{"reference": "' + b"R" * 2_000_000 + b'"}',
        headers={"Idempotency-Key": "order-17-payment-1", "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json == {"error": "request_entity_too_large"}
    assert ledger(client)["charges"] == []


def test_a_chunked_body_past_the_limit_is_refused_not_cut_short(client: FlaskClient) -> None:
    # Padding after a valid object: cut at the limit, the rest would still parse as that object.
    body = b'{"amount_cents": 12900, "currency": "EUR", "reference": "R-1"}' + b" " * 100_000
    response = client.post(
        "/v1/charges",
        input_stream=io.BytesIO(body),
        headers={
            "Idempotency-Key": "order-17-payment-1",
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
        },
        environ_overrides={"wsgi.input_terminated": True},  # what gunicorn says of a chunked body
    )

    assert response.status_code == 413
    assert ledger(client)["charges"] == []


def test_an_amount_of_five_thousand_digits_is_refused_as_not_a_json_object(client: FlaskClient) -> None:
    response = client.post(
        "/v1/charges",
        data='{"amount_cents": ' + "9" * 5000 + ', "currency": "EUR", "reference": "R-1"}',
        headers={"Idempotency-Key": "order-17-payment-1", "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json == {"errors": {"_schema": ["Send a JSON object."]}}


def test_health_is_reported(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
