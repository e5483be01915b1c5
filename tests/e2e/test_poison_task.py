"""Scenario 4: a task whose handler always crashes ends dead after its attempts, and the rest flow on.

The poison is a fraud screening that raises for one customer's address (``tests.support.e2e_poison``,
run by the workers through ``shop worker --registry``). Its order ends rejected with a reason naming the
dead task, visible in the API; the task's attempts and errors are visible with ``shop queue show``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.e2e_client import (
    Summary,
    audit,
    order_body,
    place_order,
    place_orders,
    task_retries,
    wait_until_settled,
    web_client,
)
from tests.support.e2e_poison import POISON_DOMAIN
from tests.support.e2e_processes import WorkerOptions, running_shop
from tests.support.postgres_cluster import PostgresCluster

ORDERS = 100
POISONED_WORKERS = WorkerOptions(registry="tests.support.e2e_poison:poisoned_registry")


@pytest.mark.timeout(240)
def test_a_poison_task_ends_dead_after_its_attempts_while_the_other_orders_ship(
    shared_cluster: PostgresCluster, database_name: str, tmp_path: Path, summary: Summary
) -> None:
    with (
        running_shop(shared_cluster, database_name, tmp_path, worker_options=POISONED_WORKERS) as shop,
        web_client(shop.web_url) as client,
    ):
        poisoned = place_order(client, order_body(random.Random(4), f"pat@{POISON_DOMAIN}"), "poisoned-1")
        task_id = poisoned["fraud_check_task"]["id"]
        order_ids = place_orders(client, ORDERS, label="beside-poison", retried=summary.retried)
        seen = watch_task_states(client, poisoned["id"], timeout=120)
        orders = wait_until_settled(client, order_ids, timeout=120, while_waiting=shop.check_alive)
        books = audit(client, shop.ledger(), [*order_ids, poisoned["id"]])
        summary.orders, summary.charges = books.order_states, books.charge_statuses
        summary.task_retries = task_retries(shop.queue_json("list", "--limit", "100000"))
        summary.notes.append(f"the poisoned order's fraud_check_task was seen {' -> '.join(seen)}")
        task = shop.queue_json("show", task_id)

        assert books.problems == []
        assert Counter(order["state"] for order in orders.values()) == Counter({"shipped": ORDERS})
        rejected = books.orders[poisoned["id"]]
        assert rejected["state"] == "rejected"
        assert task_id in rejected["failure_reason"] and "dead" in rejected["failure_reason"]
        assert task["task"]["state"] == "dead"
        assert task["task"]["attempts"] == task["task"]["max_attempts"] > 1
        assert len(task["errors"]) == task["task"]["max_attempts"]
        assert all("PoisonPill" in error["error_type"] for error in task["errors"])
        shop.check_alive()  # the poison crashed its handler every time, never a worker


def watch_task_states(client: httpx.Client, order_id: str, timeout: float) -> list[str]:
    """Poll the poisoned order until it is final; the distinct states its fraud_check_task showed."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = client.get(f"/api/orders/{order_id}").json()
        task = order["fraud_check_task"]
        shown = task["state"] if task else "cleared"
        if not seen or seen[-1] != shown:
            seen.append(str(shown))
        if order["state"] != "screening":
            return seen
        time.sleep(0.2)
    raise AssertionError(f"the poisoned order still screening after {timeout:.0f} s: {seen}")
