"""The HTTP clients of ``benchmarks.shop_end_to_end``: customers placing orders, and a timed request loop.

Threads, each with an ``httpx.Client`` of its own holding one kept-alive connection, so "N connections"
means N. Placement sends an ``Idempotency-Key`` per order and, like the end-to-end suite's customers,
sends the same request again on a 503 or a dropped connection (``send_until_answered``): the key makes
that safe, and every retry is counted. The client shares the machine's cores with the shop; its own CPU
is reported beside the shop's.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tests.support.e2e_client import order_body, send_until_answered

TIMEOUT_SECONDS = 30.0
WARM_UP_REQUESTS = 3
T = TypeVar("T")


@dataclass
class Placement:
    """How placing the orders went, on the wall clock (``time.time()``, comparable with the database's)."""

    first_sent_epoch: float
    last_answered_epoch: float
    statuses: Counter[str]
    retries: Counter[str]

    @property
    def seconds(self) -> float:
        return self.last_answered_epoch - self.first_sent_epoch


def _thread_clients(base_url: str) -> Callable[[], httpx.Client]:
    """One client, with one connection, per calling thread."""
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=base_url, timeout=TIMEOUT_SECONDS, limits=httpx.Limits(max_connections=1)
            )
        return local.client

    return client


def place_orders(web_url: str, count: int, concurrency: int, seed: int = 11) -> Placement:
    """POST ``count`` ordinary baskets to ``/api/orders`` from ``concurrency`` threads, back to back."""
    rng = random.Random(seed)
    bodies = [order_body(rng, f"customer-{n}@bench.example.com") for n in range(count)]
    client = _thread_clients(web_url)
    statuses: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    lock = threading.Lock()

    def place(body: dict[str, Any]) -> None:
        key, retried = str(uuid.uuid4()), Counter[str]()
        response = send_until_answered(
            lambda: client().post("/api/orders", json=body, headers={"Idempotency-Key": key}),
            retried=retried,
        )
        with lock:
            statuses[str(response.status_code)] += 1
            retries.update(retried)

    first_sent = time.time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(place, bodies))
    return Placement(first_sent, time.time(), statuses, retries)


@dataclass
class RequestLoop:
    """Requests answered in a timed loop: successes (2xx) and the rest, over ``seconds``."""

    ok: int
    failed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds


def post_for(
    base_url: str,
    path: str,
    make_body: Callable[[], dict[str, Any]],
    connections: int,
    seconds: float,
    at_start: Callable[[], T],
) -> tuple[RequestLoop, T]:
    """POST to ``path`` from ``connections`` threads back to back for ``seconds``; a fresh key per request."""

    def send(client: httpx.Client) -> httpx.Response:
        return client.post(path, json=make_body(), headers={"Idempotency-Key": str(uuid.uuid4())})

    return requests_for(base_url, send, connections, seconds, at_start)


def requests_for(
    base_url: str,
    send: Callable[[httpx.Client], httpx.Response],
    connections: int,
    seconds: float,
    at_start: Callable[[], T],
    sign_in: Callable[[httpx.Client], None] | None = None,
) -> tuple[RequestLoop, T]:
    """``send`` from ``connections`` threads back to back for ``seconds``, each on its own connection.

    Each thread first calls ``sign_in`` (if given) and sends a few requests, so that connections and the
    server's pools are warm; then ``at_start`` reads whatever the caller counts (its result is
    returned), and the timed loop begins.
    """
    client = _thread_clients(base_url)
    warm, go = threading.Barrier(connections + 1), threading.Event()
    results: list[tuple[int, int]] = []
    lock = threading.Lock()
    deadline = 0.0

    def loop() -> None:
        if sign_in is not None:
            sign_in(client())
        for _ in range(WARM_UP_REQUESTS):
            send(client())
        warm.wait()
        go.wait()
        ok = failed = 0
        while time.perf_counter() < deadline:
            if send(client()).is_success:
                ok += 1
            else:
                failed += 1
        with lock:
            results.append((ok, failed))

    threads = [threading.Thread(target=loop, name=f"client-{n}") for n in range(connections)]
    for thread in threads:
        thread.start()
    warm.wait()
    started_with = at_start()
    started = time.perf_counter()
    deadline = started + seconds
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    loop_result = RequestLoop(sum(ok for ok, _ in results), sum(failed for _, failed in results), elapsed)
    return loop_result, started_with
