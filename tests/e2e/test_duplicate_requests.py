"""Scenario 5: the same order posted 20 times at once with one Idempotency-Key is one order, one charge.

Ten baskets, each sent by 20 threads released together by a barrier, so the copies really race inside
the web app (two gunicorn processes, eight threads each) for the same key.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.e2e_client import (
    Summary,
    audit,
    order_body,
    orders_by_id,
    send_until_answered,
    wait_until_settled,
    web_client,
)
from tests.support.e2e_processes import running_shop
from tests.support.postgres_cluster import PostgresCluster

BASKETS = 10
COPIES = 20


@pytest.mark.timeout(180)
def test_twenty_concurrent_copies_of_an_order_with_one_key_make_one_order_and_one_charge(
    shared_cluster: PostgresCluster, database_name: str, tmp_path: Path, summary: Summary
) -> None:
    with running_shop(shared_cluster, database_name, tmp_path) as shop, web_client(shop.web_url) as client:
        rng = random.Random(5)
        answers: dict[str, list[httpx.Response]] = {}
        for n in range(BASKETS):
            key = f"twenty-copies-{n}"
            answers[key] = post_at_once(client, order_body(rng, f"eager-{n}@example.com"), key, summary)
        order_of_key = {key: {r.json()["id"] for r in responses} for key, responses in answers.items()}
        order_ids = [next(iter(ids)) for ids in order_of_key.values()]
        wait_until_settled(client, order_ids, timeout=120, while_waiting=shop.check_alive)
        books = audit(client, shop.ledger(), order_ids)
        summary.orders, summary.charges = books.order_states, books.charge_statuses
        replays = Counter(
            r.headers.get("Idempotent-Replayed", "first") for rs in answers.values() for r in rs
        )
        summary.notes.append(f"{BASKETS} x {COPIES} requests: {dict(replays)}")

        for key, responses in answers.items():
            assert [r.status_code for r in responses] == [202] * COPIES, key
            assert len(order_of_key[key]) == 1, f"{key} made orders {order_of_key[key]}"
            first = [r for r in responses if r.headers.get("Idempotent-Replayed") != "true"]
            assert len(first) == 1, f"{key}: {len(first)} answers claim to have placed the order"
        assert len(orders_by_id(client)) == BASKETS  # nothing else was placed on the side
        assert books.problems == []
        assert books.order_states == Counter({"shipped": BASKETS})
        assert len(shop.ledger()["charges"]) == BASKETS  # one charge per order at the gateway, all captured
        assert books.charge_statuses == Counter({"captured": BASKETS})


def post_at_once(
    client: httpx.Client, body: dict[str, object], key: str, summary: Summary
) -> list[httpx.Response]:
    """POST the same body with the same key from ``COPIES`` threads released together."""
    barrier = threading.Barrier(COPIES)
    lock = threading.Lock()

    def post() -> httpx.Response:
        barrier.wait()
        retried: Counter[str] = Counter()
        response = send_until_answered(
            lambda: client.post("/api/orders", json=body, headers={"Idempotency-Key": key}), retried=retried
        )
        with lock:
            summary.retried.update(retried)
        return response

    with ThreadPoolExecutor(max_workers=COPIES) as pool:
        return list(pool.map(lambda _n: post(), range(COPIES)))
