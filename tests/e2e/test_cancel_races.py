"""Scenario 6: cancelling orders while their charge runs at the gateway: refunded or never charged.

The gateway answers each charge after 500 ms, and no handler holds a transaction or a lock while it
waits, so a cancellation sent while a charge task is running is accepted at once: the payment is
cancelled and its key voided, and the void gives back what the charge in flight took. Each cancellation
is sent once: its answer is final. Half the orders are cancelled as soon as their payment exists (the
charge may not have started: it is cancelled through its ID), half once their charge task is seen
running. Either way the end must be cancelled and not charged, or charged and refunded: never cancelled
with the money kept. A cancellation that comes too late (the order has shipped) is answered 409 without
Retry-After, and that order is charged exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.e2e_client import (
    Summary,
    audit,
    place_orders,
    wait_until_settled,
    web_client,
)
from tests.support.e2e_processes import GatewayOptions, running_shop
from tests.support.postgres_cluster import PostgresCluster

ORDERS = 40
SLOW_GATEWAY = GatewayOptions(latency_ms=500)


@pytest.mark.timeout(240)
def test_cancelling_while_the_charge_runs_ends_refunded_or_never_charged(
    shared_cluster: PostgresCluster, database_name: str, tmp_path: Path, summary: Summary
) -> None:
    with (
        running_shop(shared_cluster, database_name, tmp_path, gateway_options=SLOW_GATEWAY) as shop,
        web_client(shop.web_url) as client,
    ):
        order_ids = place_orders(client, ORDERS, label="cancel-race", retried=summary.retried)
        lock = threading.Lock()
        answers: dict[str, int] = {}
        bounced: list[str] = []

        def race(numbered: tuple[int, str]) -> None:
            n, order_id = numbered
            wait_for_payment(client, order_id, running=n % 2 == 1)
            answer = client.post(f"/api/orders/{order_id}/cancel")  # once: the answer is final
            with lock:
                answers[order_id] = answer.status_code
                if "Retry-After" in answer.headers:
                    bounced.append(order_id)

        with ThreadPoolExecutor(max_workers=ORDERS) as pool:
            list(pool.map(race, enumerate(order_ids)))
        wait_until_settled(client, order_ids, timeout=120, while_waiting=shop.check_alive)
        books = audit(client, shop.ledger(), order_ids)
        summary.orders, summary.charges = books.order_states, books.charge_statuses
        payment_states = Counter(books.payments_by_order[i]["state"] for i in order_ids)
        summary.notes.append(
            f"payments: {dict(payment_states)}; cancel answers: {dict(Counter(answers.values()))}"
        )

        assert books.problems == []  # in particular: no cancelled order whose charge is still captured
        assert bounced == []  # no cancellation was asked to come back later
        for order_id in order_ids:
            order, payment = books.orders[order_id], books.payments_by_order[order_id]
            charges = books.charges_by_payment.get(payment["id"], [])
            if answers[order_id] == 200:
                assert order["state"] == "cancelled"
                assert payment["state"] in {"cancelled", "refunded"}, payment
                assert {c["status"] for c in charges} <= {"voided", "refunded"}, charges
            else:  # too late: it shipped, and was charged once
                assert answers[order_id] == 409 and order["state"] == "shipped", (answers[order_id], order)
        # The races happened: some cancellations met a charge in flight (its capture then voided, so the
        # payment is cancelled with a refund at the gateway), and some met it recorded (refunded).
        met_in_flight = [
            i
            for i in order_ids
            if books.payments_by_order[i]["state"] == "cancelled"
            and books.payments_by_order[i]["gateway_refund_status"] == "refunded"
        ]
        summary.notes.append(f"cancellations that met their charge at the gateway: {len(met_in_flight)}")
        assert met_in_flight


def wait_for_payment(client: httpx.Client, order_id: str, *, running: bool, timeout: float = 60.0) -> None:
    """Until the order's payment exists (and, if ``running``, its charge task has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/orders/{order_id}/payment")
        if response.status_code == 200:
            payment = response.json()
            task = payment["charge_task"]
            if not running or payment["state"] != "pending" or (task and task["state"] == "running"):
                return
        time.sleep(0.02)
    raise AssertionError(f"order {order_id} got no payment with a running charge within {timeout:.0f} s")
