"""The whole shop in one process: orders placed through the API, real workers, a real (simulated) PSP.

Every context, the real reactions and the real registry (with the shipping dispatcher and the repair
schedule) run together; only the processes are collapsed into threads. The gateway misbehaves: some
charges fail transiently, some are declined. Every order must end shipped or cleanly failed, and the
gateway's ledger must show exactly one capture for each shipped order and none kept for the others.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

import gateway_simulator
from payments.gateway_client import GatewayClient
from shop import bootstrap
from shop.tasks import build_registry
from shop.web.database import engine_of
from tests.support.gateway_requests import GATEWAY_API_KEY, authorized
from tests.support.inprocess import fast_settings, running_worker, wait_for

FINAL_STATES = {"shipped", "rejected", "payment_failed", "cancelled"}
CATALOGUE = ["CRUNCHY-ARMCHAIR", "WOBBLY-TABLE", "SHINY-LAMP", "FLUFFY-RUG", "TINY-TEAPOT"]


@pytest.fixture
def gateway(tmp_path: Any) -> Iterator[FlaskClient]:
    """The gateway simulator in-process, on its own SQLite file: 1 in 5 charges fail, 1 in 10 declines."""
    app = gateway_simulator.create_app(f"sqlite:///{tmp_path / 'gateway.sqlite3'}", api_key=GATEWAY_API_KEY)
    client = authorized(app.test_client())
    response = client.put(
        "/v1/failure-injection", json={"transient_error_rate": 0.2, "decline_rate": 0.1, "latency_ms": 0}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    yield client


def place(client: FlaskClient, number: int, rng: random.Random) -> str:
    email = "mallory@fraud.example" if number % 10 == 3 else f"shopper{number}@example.com"
    body = {
        "customer_email": email,
        "shipping_country": rng.choice(["DE", "FR", "NL"]),
        "lines": [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in rng.sample(CATALOGUE, k=2)],
    }
    response = client.post("/api/orders", json=body, headers={"Idempotency-Key": f"basket-{number}"})
    assert response.status_code == 202, response.get_data(as_text=True)
    order_id: str = response.get_json()["id"]
    return order_id


def test_every_order_ends_shipped_or_cleanly_failed_and_each_shipped_one_is_charged_once(
    app: Flask, client: FlaskClient, gateway: FlaskClient
) -> None:
    rng = random.Random(7)
    order_ids = [place(client, number, rng) for number in range(30)]
    cancelled_early = order_ids[5]
    assert client.post(f"/api/orders/{cancelled_early}/cancel").status_code == 200
    gateway_app = gateway.application
    gateway_client = GatewayClient(
        "http://gateway.test", api_key=GATEWAY_API_KEY, transport=httpx.WSGITransport(app=gateway_app)
    )
    session_info = bootstrap.session_info(gateway=gateway_client)

    def states() -> dict[str, str]:
        return {order_id: client.get(f"/api/orders/{order_id}").get_json()["state"] for order_id in order_ids}

    with running_worker(engine_of(app), build_registry(), fast_settings(concurrency=4), session_info):
        wait_for(
            lambda: all(state in FINAL_STATES for state in states().values()),
            what="every order settled",
            timeout=60,
        )

    final = states()
    assert final[cancelled_early] == "cancelled"
    assert {final[order_id] for number, order_id in enumerate(order_ids) if number % 10 == 3} == {"rejected"}
    shipped = [order_id for order_id, state in final.items() if state == "shipped"]
    assert len(shipped) >= 10, final  # with one decline in ten, most orders get through
    for order_id, state in final.items():
        payment = client.get(f"/api/orders/{order_id}/payment")
        ledger = payment_ledger(gateway, payment) if payment.status_code == 200 else None
        if state == "shipped":
            assert payment.get_json()["state"] == "captured"
            assert ledger is not None and ledger["summary"]["captured"] == 1, ledger
            shipment = client.get(f"/api/orders/{order_id}/shipment").get_json()
            assert shipment["state"] == "dispatched" and shipment["tracking_number"]
        elif state == "payment_failed":
            assert payment.get_json()["state"] in {"declined", "failed"}
            assert ledger is not None and ledger["summary"]["captured"] == 0, ledger
        else:  # rejected or cancelled before any charge was asked for
            assert ledger is None or ledger["summary"]["captured"] == 0, ledger
    assert client.get("/api/orders?being_processed=true").get_json()["orders"] == []
    assert client.get("/api/payments?being_processed=true").get_json()["payments"] == []


def payment_ledger(gateway: FlaskClient, payment: Any) -> dict[str, Any]:
    reference = payment.get_json()["id"]
    response = gateway.get(f"/v1/ledger?reference={reference}")
    assert response.status_code == 200
    ledger: dict[str, Any] = response.get_json()
    return ledger
