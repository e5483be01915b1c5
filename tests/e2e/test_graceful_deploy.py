"""Scenario 7: a deploy sends SIGTERM to a worker mid-batch; its work in flight finishes or is handed back.

Charges take 400 ms at the gateway, so when the signal comes the worker has charges running and more
tasks claimed in its buffer. A graceful stop lets the running handlers finish, hands the buffered tasks
back without spending an attempt, removes the worker's row and exits 0; a new worker takes its place.
Nothing it held may be lost, done twice, or left for the lease to expire: no task of the run has an
attempt that was handed back as "worker lost".
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import httpx
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
from tests.support.e2e_processes import (
    GatewayOptions,
    WorkerOptions,
    assert_nothing_left_running,
    running_shop,
)
from tests.support.postgres_cluster import PostgresCluster

ORDERS = 150
SLOW_GATEWAY = GatewayOptions(latency_ms=400)
WORKER_LOST = "queue_core.WorkerLost"
# The command's default: a graceful stop must not lean on leases at all, and anything it left running
# would still be running (not yet rescued) when the scenario checks.
LONG_LEASE = 30.0


@pytest.mark.timeout(240)
def test_a_worker_stopped_mid_batch_finishes_or_hands_back_its_work_and_nothing_is_lost(
    shared_cluster: PostgresCluster, database_name: str, tmp_path: Path, summary: Summary
) -> None:
    with (
        running_shop(
            shared_cluster,
            database_name,
            tmp_path,
            gateway_options=SLOW_GATEWAY,
            worker_options=WorkerOptions(lease_seconds=LONG_LEASE),
        ) as shop,
        web_client(shop.web_url) as client,
    ):
        order_ids = place_orders(client, ORDERS, label="deploy", retried=summary.retried)
        in_flight = wait_for_charges_in_flight(client, at_least=4)
        leaving = shop.workers[0]
        stopping = time.monotonic()
        exit_code = shop.stop_worker(leaving)
        summary.notes.append(
            f"SIGTERM with {in_flight} payments being charged: exit {exit_code} after "
            f"{time.monotonic() - stopping:.1f} s; log: {last_line_about_stopping(leaving.log_text())}"
        )
        shop.start_worker()  # the new version takes over
        wait_until_settled(client, order_ids, timeout=120, while_waiting=shop.check_alive)
        books = audit(client, shop.ledger(), order_ids)
        summary.orders, summary.charges = books.order_states, books.charge_statuses
        tasks = shop.queue_json("list", "--limit", "100000")
        summary.task_retries = task_retries(tasks)
        handed_back = [
            error
            for task in tasks
            if task["attempts"] > 1
            for error in shop.queue_json("show", task["id"])["errors"]
            if error["error_type"] == WORKER_LOST
        ]

        assert exit_code == 0, leaving.log_text()[-3000:]
        assert "shutdown grace ran out" not in leaving.log_text()
        assert re.search(r"stopped \(\d+ buffered task\(s\) handed back\)", leaving.log_text())
        assert handed_back == [], "work of the stopped worker waited for its lease to run out"
        assert books.problems == []
        assert books.order_states == Counter({"shipped": ORDERS})
        assert books.charge_statuses == Counter({"captured": ORDERS})
        assert_nothing_left_running(shop)


def wait_for_charges_in_flight(client: httpx.Client, *, at_least: int, timeout: float = 60.0) -> int:
    """Until ``at_least`` payments are being charged; how many were."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        charging = all_pages(client, "/api/payments", "payments", being_processed="true")
        if len(charging) >= at_least:
            return len(charging)
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} charges in flight within {timeout:.0f} s")


def last_line_about_stopping(log: str) -> str:
    lines = [line for line in log.splitlines() if "stopped" in line or "grace" in line]
    return lines[-1].split(": ", 1)[-1] if lines else "(nothing)"
