"""Scenario 2: workers killed with SIGKILL every half second while 1,000 orders flow past a flaky gateway.

Nothing may be lost and nobody charged twice: afterwards every order is shipped or failed with a reason,
no task is left running for a worker that is gone, and the gateway's ledger holds exactly one capture per
paid order and none kept for the others.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

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
    ShopProcesses,
    WorkerOptions,
    assert_nothing_left_running,
    running_shop,
)
from tests.support.postgres_cluster import PostgresCluster

ORDERS = 1000
WORKERS = 3
KILL_EVERY_SECONDS = 0.5
CHAOS_SECONDS = 30.0  # kills go on this long at least, and until every order is placed
FLAKY_GATEWAY = GatewayOptions(transient_error_rate=0.2, timeout_rate=0.05, hang_seconds=1.5)


class WorkerKiller(threading.Thread):
    """Every ~0.5 s: SIGKILL a random worker and start a fresh one in its place, until told to stop."""

    def __init__(self, shop: ShopProcesses, seed: int = 2) -> None:
        super().__init__(name="worker-killer", daemon=True)
        self.shop = shop
        self.rng = random.Random(seed)
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            next_kill = time.monotonic()
            while True:
                # On a schedule, so the time a kill and a start take does not stretch the interval.
                next_kill += self.rng.uniform(0.6, 1.4) * KILL_EVERY_SECONDS
                if self.halt.wait(max(0.0, next_kill - time.monotonic())):
                    return
                self.shop.kill_random_worker(self.rng)
                self.shop.start_worker()
        except BaseException as error:  # reported by the test, not lost in a thread
            self.error = error

    def stop(self) -> None:
        self.halt.set()
        self.join()
        if self.error is not None:
            raise self.error


@pytest.mark.timeout(360)
def test_orders_survive_workers_killed_every_half_second_and_a_flaky_gateway(
    shared_cluster: PostgresCluster, database_name: str, tmp_path: Path, summary: Summary
) -> None:
    with (
        running_shop(
            shared_cluster,
            database_name,
            tmp_path,
            workers=WORKERS,
            worker_options=WorkerOptions(lease_seconds=2.0),
            gateway_options=FLAKY_GATEWAY,
            gateway_timeout_seconds=1.0,
        ) as shop,
        web_client(shop.web_url) as client,
    ):
        killer = WorkerKiller(shop)
        chaos_started = time.monotonic()
        killer.start()
        try:
            order_ids = place_orders(client, ORDERS, label="kills", customers=8, retried=summary.retried)
            summary.notes.append(f"placed {ORDERS} orders in {time.monotonic() - chaos_started:.1f} s")
            remaining = CHAOS_SECONDS - (time.monotonic() - chaos_started)
            if remaining > 0:
                time.sleep(remaining)
        finally:
            killer.stop()
        summary.kills = shop.kills
        summary.notes.append(f"killed a worker every {(time.monotonic() - chaos_started) / shop.kills:.2f} s")
        wait_until_settled(client, order_ids, timeout=240, while_waiting=shop.check_alive)
        books = audit(client, shop.ledger(), order_ids)
        summary.orders, summary.charges = books.order_states, books.charge_statuses
        tasks = shop.queue_json("list", "--limit", "100000")
        summary.task_retries = task_retries(tasks)
        dead = [task for task in tasks if task["state"] == "dead"]
        summary.notes.append(f"dead tasks: {Counter(task['name'] for task in dead) or 'none'}")

        assert books.problems == []
        assert_nothing_left_running(shop)
        assert shop.shop_command("queue", "check-references", check=False).returncode == 0
        assert books.order_states["shipped"] >= ORDERS * 0.9, books.order_states
        # The dispatcher's ticks, which a kill used to leave dead (one attempt), are run again now.
        assert "shipping.dispatch_shipments" not in {task["name"] for task in dead}, dead
