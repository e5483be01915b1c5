"""Charges under idempotency keys: capture, replay, key reuse, declines, transient errors and timeouts."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask.testing import FlaskClient

from tests.support.gateway_requests import ARMCHAIR, authorized, inject, ledger, post_charge, post_refund
from tests.support.gateway_rolls import NOTHING_RECORDED, ChosenRolls


def test_a_new_key_captures_the_charge(client: FlaskClient) -> None:
    response = post_charge(client, "order-17-payment-1")

    assert response.status_code == 201
    assert response.json is not None
    assert response.json["id"].startswith("ch_")
    assert response.json["status"] == "captured"
    assert {k: response.json[k] for k in ARMCHAIR} == ARMCHAIR
    assert response.json["idempotency_key"] == "order-17-payment-1"
    assert response.json["created_at"].endswith("Z")
    assert "Idempotent-Replayed" not in response.headers


def test_a_repeated_request_gets_the_original_answer_marked_as_replayed(client: FlaskClient) -> None:
    first = post_charge(client, "order-17-payment-1")

    again = post_charge(client, "order-17-payment-1")

    assert (again.status_code, again.json) == (first.status_code, first.json)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert ledger(client)["summary"]["captured"] == 1


def test_a_replay_ignores_the_failure_injection_in_force_now(client: FlaskClient) -> None:
    first = post_charge(client, "order-17-payment-1")
    inject(client, transient_error_rate=1.0)

    again = post_charge(client, "order-17-payment-1")

    assert (again.status_code, again.json) == (first.status_code, first.json)


def test_a_replay_after_a_refund_still_answers_captured(client: FlaskClient) -> None:
    first = post_charge(client, "order-17-payment-1")
    post_refund(client, "order-17-refund-1", "order-17-payment-1")

    again = post_charge(client, "order-17-payment-1")

    assert (again.status_code, again.json) == (first.status_code, first.json)


def test_a_key_reused_with_another_body_is_refused(client: FlaskClient) -> None:
    post_charge(client, "order-17-payment-1")

    for change in ({"amount_cents": 1}, {"currency": "USD"}, {"reference": "ORDER-WOBBLY-TABLE"}):
        response = post_charge(client, "order-17-payment-1", **change)

        assert response.status_code == 422
        assert response.json is not None
        assert list(response.json["errors"]) == ["Idempotency-Key"]
    assert ledger(client)["summary"]["captured"] == 1


def test_a_declined_charge_is_recorded_with_a_reason_and_answered_402(client: FlaskClient) -> None:
    inject(client, decline_rate=1.0)

    response = post_charge(client, "order-17-payment-1")

    assert response.status_code == 402
    assert response.json is not None
    assert response.json["status"] == "declined"
    assert response.json["decline_reason"] == "insufficient_funds"
    inject(client, decline_rate=0.0)
    assert post_charge(client, "order-17-payment-1").json == response.json
    assert ledger(client)["summary"]["declined"] == 1


def test_a_transient_error_records_nothing_and_leaves_the_key_unused(client: FlaskClient) -> None:
    inject(client, transient_error_rate=1.0)

    response = post_charge(client, "order-17-payment-1")

    assert response.status_code == 503
    assert response.json == {"error": "temporarily_unavailable"}
    assert client.get("/v1/charges/order-17-payment-1").status_code == 404
    inject(client, transient_error_rate=0.0)
    assert post_charge(client, "order-17-payment-1").status_code == 201


def test_a_timeout_that_captured_hangs_and_a_retry_finds_the_capture(
    client: FlaskClient, rolls: ChosenRolls
) -> None:
    inject(client, timeout_rate=1.0, hang_seconds=0.2)

    started = time.monotonic()
    response = post_charge(client, "order-17-payment-1")

    assert time.monotonic() - started >= 0.2
    assert response.status_code == 201
    retry = post_charge(client, "order-17-payment-1")
    assert (retry.status_code, retry.json) == (201, response.json)
    assert retry.headers["Idempotent-Replayed"] == "true"


def test_a_timeout_that_recorded_nothing_hangs_and_a_retry_charges_anew(
    client: FlaskClient, rolls: ChosenRolls
) -> None:
    rolls.value = NOTHING_RECORDED
    inject(client, timeout_rate=1.0, hang_seconds=0.2)

    started = time.monotonic()
    response = post_charge(client, "order-17-payment-1")

    assert time.monotonic() - started >= 0.2
    assert response.status_code == 504
    assert client.get("/v1/charges/order-17-payment-1").status_code == 404
    inject(client, timeout_rate=0.0)
    assert post_charge(client, "order-17-payment-1").status_code == 201


def test_a_timed_out_capture_is_in_the_ledger_before_the_hang_ends(app: Flask, client: FlaskClient) -> None:
    inject(client, timeout_rate=1.0, hang_seconds=3.0)
    hanging = threading.Thread(target=post_charge, args=(authorized(app.test_client()), "order-17-payment-1"))
    hanging.start()
    try:
        deadline = time.monotonic() + 2.5
        while client.get("/v1/charges/order-17-payment-1").status_code == 404:
            assert time.monotonic() < deadline, "the capture was not committed before the hang"
            time.sleep(0.02)
        assert hanging.is_alive()
    finally:
        hanging.join()


def test_latency_is_paid_before_the_request_is_even_checked(client: FlaskClient) -> None:
    inject(client, latency_ms=150)

    started = time.monotonic()
    post_charge(client, None)

    assert time.monotonic() - started >= 0.15


def test_concurrent_requests_with_one_new_key_make_one_charge_and_one_answer(app: Flask) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(lambda _: post_charge(authorized(app.test_client()), "order-17-payment-1"), range(8))
        )

    assert {r.status_code for r in responses} == {201}
    assert len({json.dumps(r.json, sort_keys=True) for r in responses}) == 1
    assert ledger(authorized(app.test_client()))["summary"]["captured"] == 1


def test_a_charge_is_shown_by_its_key_and_an_unknown_key_is_404(client: FlaskClient) -> None:
    charged = post_charge(client, "order-17-payment-1")

    shown = client.get("/v1/charges/order-17-payment-1")

    assert shown.status_code == 200
    assert shown.json is not None and charged.json is not None
    assert shown.json["id"] == charged.json["id"]
    assert shown.json["refund_id"] is None
    assert client.get("/v1/charges/order-99-payment-1").json == {"error": "not_found"}
    assert client.get("/v1/charges/" + "k" * 256).status_code == 404
    assert client.get("/v1/charges/nul%00byte").status_code == 404
