"""Scenario 3: PostgreSQL stops dead mid-run and comes back; web and workers recover by themselves.

The cluster is this scenario's own (``own_cluster``), stopped in ``immediate`` mode, as a crash would
leave it, while customers keep placing orders. While it is down the web app answers 503 with
Retry-After, and customers send the same request, with the same Idempotency-Key, again. Nobody restarts
the web app or a worker: they must find the database again on their own, and the run must end with the
same guarantees as any other.
"""

from __future__ import annotations

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
    task_retries,
    wait_until_settled,
    web_client,
)
from tests.support.e2e_processes import (
    GatewayOptions,
    WorkerOptions,
    assert_nothing_left_running,
    running_shop,
)
from tests.support.postgres_cluster import PostgresCluster

ORDERS = 400
DOWN_SECONDS = 4.0
SOME_LATENCY = GatewayOptions(latency_ms=50)  # so charges are at the gateway when the database goes


def wait_until_placed(client: httpx.Client, count: int, timeout: float = 60.0) -> None:
    """Until at least ``count`` orders exist (one page of the order list holds them all)."""
    deadline = time.monotonic() + timeout
    while len(client.get("/api/orders", params={"limit": count}).json()["orders"]) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} orders placed after {timeout:.0f} s")
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_the_shop_recovers_by_itself_from_a_database_restart_mid_run(
    own_cluster: PostgresCluster, tmp_path: Path, summary: Summary
) -> None:
    with (
        running_shop(
            own_cluster,
            "shop",
            tmp_path,
            gateway_options=SOME_LATENCY,
            worker_options=WorkerOptions(lease_seconds=2.0),  # heartbeats stop with the database
        ) as shop,
        web_client(shop.web_url) as client,
    ):
        retried: Counter[str] = Counter()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="customers") as customers:
            placing = customers.submit(place_orders, client, ORDERS, label="restart", retried=retried)
            # Orders are flowing (some placed, some screening, some at the gateway) and most are still to
            # come: stopped by count, not after a fixed time, so a faster shop cannot finish placing first.
            wait_until_placed(client, ORDERS // 4)
            own_cluster.stop("immediate")
            time.sleep(DOWN_SECONDS)
            own_cluster.start()
            summary.notes.append(f"PostgreSQL was down {DOWN_SECONDS:.0f} s (stopped in immediate mode)")
            placed = placing.result(timeout=180)
        summary.retried = retried
        wait_until_settled(client, placed, timeout=180, while_waiting=shop.check_alive)
        books = audit(client, shop.ledger(), placed)
        summary.orders, summary.charges = books.order_states, books.charge_statuses
        summary.task_retries = task_retries(shop.queue_json("list", "--limit", "100000"))

        assert len(placed) == ORDERS
        assert sum(retried.values()) > 0, "the restart went unnoticed: no request was answered 503"
        assert books.problems == []
        assert books.order_states["shipped"] >= ORDERS * 0.95, books.order_states
        assert_nothing_left_running(shop)
        assert shop.shop_command("queue", "check-references", check=False).returncode == 0
        shop.check_alive()  # nobody restarted anything: the same processes are still serving
