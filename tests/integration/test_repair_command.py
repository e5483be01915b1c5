"""``shop queue check-references --repair`` on the real application: repairs that publish events work."""

from __future__ import annotations

import uuid

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

import orders.tasks
from queue_core._models import task_table
from shop.bootstrap import session_info
from shop.cli.main import main
from shop.web.database import engine_of
from tests.support.inprocess import run_until_idle


def test_a_payment_whose_charge_task_died_fails_its_order_through_the_cli_repair(
    app: Flask, client: FlaskClient
) -> None:
    body = {
        "customer_email": "grace@example.com",
        "shipping_country": "FR",
        "lines": [{"sku": "TINY-TEAPOT", "quantity": 2}],
    }
    order_id = client.post("/api/orders", json=body).get_json()["id"]
    # Screening only (no payments worker): the join creates the payment and its pending charge task.
    run_until_idle(engine_of(app), orders.tasks.registry, session_info=session_info())
    payment = client.get(f"/api/orders/{order_id}/payment").get_json()
    charge_task = uuid.UUID(payment["charge_task"]["id"])
    with engine_of(app).begin() as connection:  # the charge task died, and nothing settled the payment
        connection.execute(update(task_table).where(task_table.c.id == charge_task).values(state="dead"))

    result = app.test_cli_runner().invoke(main, ["queue", "check-references", "--repair"])

    assert result.exit_code == 0, result.output
    assert client.get(f"/api/orders/{order_id}/payment").get_json()["state"] == "failed"
    order = client.get(f"/api/orders/{order_id}").get_json()
    assert order["state"] == "payment_failed"
    assert "charge task" in order["failure_reason"] or "dead" in order["failure_reason"]
