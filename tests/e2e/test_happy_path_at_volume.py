"""Scenario 1: 500 orders placed at once all end shipped, in batches, each payment charged once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.e2e_client import (
    Summary,
    all_pages,
    audit,
    place_orders,
    task_retries,
    wait_until_settled,
    web_client,
)
from tests.support.e2e_processes import running_shop
from tests.support.postgres_cluster import PostgresCluster

ORDERS = 500


@pytest.mark.timeout(300)
def test_five_hundred_concurrent_orders_ship_in_batches_each_charged_once(
    shared_cluster: PostgresCluster, database_name: str, tmp_path: Path, summary: Summary
) -> None:
    with running_shop(shared_cluster, database_name, tmp_path) as shop, web_client(shop.web_url) as client:
        placing = time.monotonic()
        order_ids = place_orders(client, ORDERS, label="volume", customers=12, retried=summary.retried)
        summary.notes.append(f"placed {ORDERS} orders in {time.monotonic() - placing:.1f} s")
        wait_until_settled(client, order_ids, timeout=240, while_waiting=shop.check_alive)
        summary.notes.append(f"all shipped {time.monotonic() - placing:.1f} s after the first was placed")
        books = audit(client, shop.ledger(), order_ids)
        summary.orders, summary.charges = books.order_states, books.charge_statuses
        summary.task_retries = task_retries(shop.queue_json("list", "--limit", "100000"))
        shipments = all_pages(client, "/api/shipments", "shipments")
        batches: dict[str, set[str]] = {}
        for shipment in shipments:
            batches.setdefault(shipment["batch_task"]["id"], set()).add(shipment["id"])
        summary.notes.append(f"{len(batches)} batches, the largest of {max(map(len, batches.values()))}")

        assert books.problems == []
        assert books.order_states == Counter({"shipped": ORDERS})
        assert books.charge_statuses == Counter({"captured": ORDERS})
        assert sorted(s["order_id"] for s in shipments) == sorted(order_ids)  # one shipment per order
        assert len(batches) <= ORDERS // 2, "shipments left one by one, not in batches"
        for task_id, shipment_ids in batches.items():
            batch = client.get(f"/api/shipping/batches/{task_id}").json()
            assert batch["task"]["state"] == "succeeded"
            assert {s["id"] for s in batch["shipments"]} == shipment_ids
            assert len({s["manifest_number"] for s in batch["shipments"]}) == 1
            assert {s["state"] for s in batch["shipments"]} == {"dispatched"}
