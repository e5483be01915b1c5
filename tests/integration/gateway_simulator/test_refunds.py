"""Full refunds: a captured charge is refunded once, a refund replays, and a refund that comes first voids."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.gateway_requests import inject, ledger, post_charge, post_refund


def test_a_captured_charge_is_refunded(client: FlaskClient) -> None:
    charged = post_charge(client, "order-17-payment-1")

    response = post_refund(client, "order-17-refund-1", "order-17-payment-1")

    assert response.status_code == 201
    assert response.json is not None and charged.json is not None
    assert response.json["id"].startswith("re_")
    assert response.json["status"] == "refunded"
    assert response.json["charge_id"] == charged.json["id"]
    assert response.json["amount_cents"] == charged.json["amount_cents"]
    shown = client.get("/v1/charges/order-17-payment-1").json
    assert shown is not None
    assert (shown["status"], shown["refund_id"]) == ("refunded", response.json["id"])


def test_a_repeated_refund_request_gets_the_original_answer(client: FlaskClient) -> None:
    post_charge(client, "order-17-payment-1")
    first = post_refund(client, "order-17-refund-1", "order-17-payment-1")

    again = post_refund(client, "order-17-refund-1", "order-17-payment-1")

    assert (again.status_code, again.json) == (first.status_code, first.json)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_second_refund_key_for_a_refunded_charge_gets_the_original_refund(client: FlaskClient) -> None:
    post_charge(client, "order-17-payment-1")
    first = post_refund(client, "order-17-refund-1", "order-17-payment-1")

    second = post_refund(client, "order-17-refund-2", "order-17-payment-1")

    assert second.status_code == 200
    assert first.json is not None and second.json is not None
    assert (second.json["status"], second.json["id"]) == ("refunded", first.json["id"])
    assert ledger(client)["summary"]["refunded"] == 1


def test_a_refund_key_reused_for_another_charge_is_refused(client: FlaskClient) -> None:
    post_charge(client, "order-17-payment-1")
    post_refund(client, "order-17-refund-1", "order-17-payment-1")

    response = post_refund(client, "order-17-refund-1", "order-18-payment-1")

    assert response.status_code == 422
    assert response.json is not None
    assert list(response.json["errors"]) == ["Idempotency-Key"]


def test_a_refund_before_any_charge_voids_the_key_and_a_late_charge_is_never_captured(
    client: FlaskClient,
) -> None:
    refunded = post_refund(client, "order-17-refund-1", "order-17-payment-1")

    late = post_charge(client, "order-17-payment-1")

    assert refunded.status_code == 200
    assert refunded.json is not None
    assert (refunded.json["status"], refunded.json["id"]) == ("voided", None)
    assert late.status_code == 402
    assert late.json is not None
    assert late.json["status"] == "voided"
    assert ledger(client)["summary"] == {
        "captured": 0,
        "refunded": 0,
        "declined": 0,
        "voided": 1,
        "captured_amount_cents": 0,
    }


def test_a_declined_charge_has_nothing_to_refund(client: FlaskClient) -> None:
    inject(client, decline_rate=1.0)
    post_charge(client, "order-17-payment-1")

    response = post_refund(client, "order-17-refund-1", "order-17-payment-1")

    assert response.status_code == 200
    assert response.json is not None
    assert (response.json["status"], response.json["id"]) == ("nothing_to_refund", None)


def test_a_voided_charge_has_nothing_more_to_refund(client: FlaskClient) -> None:
    post_refund(client, "order-17-refund-1", "order-17-payment-1")

    response = post_refund(client, "order-17-refund-2", "order-17-payment-1")

    assert response.json is not None
    assert response.json["status"] == "nothing_to_refund"


def test_a_refund_needs_an_idempotency_key_and_a_charge_key(client: FlaskClient) -> None:
    without_key = post_refund(client, None, "order-17-payment-1")
    without_body = client.post("/v1/refunds", json={}, headers={"Idempotency-Key": "order-17-refund-1"})
    too_long = post_refund(client, "order-17-refund-1", "k" * 256)

    assert without_key.status_code == 400
    assert without_key.json is not None
    assert list(without_key.json["errors"]) == ["Idempotency-Key"]
    assert without_body.status_code == 422
    assert without_body.json == {"errors": {"charge_idempotency_key": ["Missing data for required field."]}}
    assert too_long.status_code == 422
