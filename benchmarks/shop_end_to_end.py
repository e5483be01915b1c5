"""``python -m benchmarks.shop_end_to_end``: the whole shop as real processes, from order to parcel.

On a throwaway PostgreSQL cluster (``benchmarks.shop_processes`` says why), each scenario gets a fresh
database, ``shop db upgrade``, the gateway simulator, ``shop web`` (gunicorn, 2 processes of 8 threads)
and 2 ``shop worker`` processes (the command's defaults: 4 tasks at once, 30 s lease). Orders are placed
over HTTP as fast as the shop answers, each with an ``Idempotency-Key``, and the run waits until every
order is in a final state. Scenario (a): the gateway answers at once; (b): 200 ms per call and 10% of
charges answered 503 (retried by the charge task).

Per scenario: orders/s from the first placement sent to the last order settled (the shop's own
timestamps: ``shipments.dispatched_at``, else ``orders.updated_at``), placement rate alone, latency from
``orders.created_at`` to ``shipments.dispatched_at`` read from the database at the end (no API polling);
CPU seconds per order by process tree (``/proc``; PostgreSQL is the whole cluster's, the benchmark's own
probe backends taken out); commits and ``pg_stat_statements`` calls per order (top-level statements,
BEGIN/COMMIT/SAVEPOINT included, the benchmark's own left out: a round trip each unless pipelined); the
most connections held by the workers together (``pg_stat_activity`` every 50 ms, by application name).

Then the HTTP tier: ``POST /api/orders`` requests/s at 8 and 32 client connections, beside a bare
one-INSERT Flask app (``benchmarks.bare_insert_app``) under the same gunicorn configuration, on a third
database where no worker runs (placed orders pile up, pending), so no task competes for the CPU; and
the shop's hot reads over those orders (one order, a page of 20 through the API, the operator's orders
page and queue dashboard), each with its statements and server CPU per request.

Progress on stderr, one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeAlias

import httpx
from sqlalchemy import create_engine

from benchmarks import bare_insert_app
from benchmarks.environment import describe_machine
from benchmarks.process_cpu import cpu_by_tree, machine_busy_cpu_seconds, own_cpu_seconds, tree_cpu_seconds
from benchmarks.shop_clients import RequestLoop, place_orders, post_for, requests_for
from benchmarks.shop_probes import ConnectionSampler, ShopDatabase
from benchmarks.shop_processes import (
    GATEWAY_TIMEOUT_SECONDS,
    WEB_WORKERS,
    WORKER_OPTIONS,
    libpq_url,
    postmaster_pid,
    shop_running,
    start_bare_app,
    statements_cluster,
)
from benchmarks.stats import latency_summary_ms
from tests.support.credentials import OPERATOR_HEADERS, OPERATOR_KEY
from tests.support.e2e_client import order_body
from tests.support.e2e_processes import GatewayOptions, ShopProcesses
from tests.support.postgres_cluster import PostgresCluster

WORKERS = 2
SCENARIOS = {
    "a_gateway_instant": GatewayOptions(),
    "b_gateway_200ms_10pct_errors": GatewayOptions(latency_ms=200, transient_error_rate=0.1),
}
HTTP_CONNECTIONS = (8, 32)
READ_CONNECTIONS = 8
READ_ORDERS = 500  # distinct orders the GET of one order cycles through
Reading: TypeAlias = tuple[int, float, float]  # statements run, server CPU seconds, client CPU seconds
STATS_QUIET_SECONDS = 2.0  # busy backends flush their statistics at most once a second
POLL_SECONDS = 0.25


def progress(message: str) -> None:
    print(f"[shop_end_to_end] {message}", file=sys.stderr, flush=True)


def cpu_reading(roots: dict[str, int], probes: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: each tree (PostgreSQL's without the probes' backends), this client, the machine.

    ``machine_busy`` is every core's busy time: beyond the trees' total it shows what else ran meanwhile.
    """
    reading = cpu_by_tree(roots)
    reading["postgresql"] -= sum(cpu_by_tree(probes).values())
    reading["benchmark_client"] = own_cpu_seconds()
    reading["machine_busy"] = machine_busy_cpu_seconds()
    return reading


def wait_until_settled(shop: ShopProcesses, database: ShopDatabase, orders: int, timeout: float) -> None:
    """Poll the orders' states until ``orders`` are final, a process dies, or ``timeout`` passes."""
    deadline, next_report = time.monotonic() + timeout, time.monotonic() + 5.0
    while True:
        shop.check_alive()
        settled, total = database.settled_count()
        if settled >= orders or time.monotonic() > deadline:
            return
        if time.monotonic() >= next_report:
            progress(f"  settled {settled}/{total}")
            next_report += 5.0
        time.sleep(POLL_SECONDS)


def run_scenario(
    cluster: PostgresCluster,
    work_dir: Path,
    name: str,
    gateway: GatewayOptions,
    arguments: argparse.Namespace,
) -> dict[str, Any]:
    """Place ``arguments.orders`` orders on a fresh shop, wait for every one to settle, and read the cost."""
    orders, database_name = arguments.orders, f"bench_shop_{name[0]}"
    progress(f"scenario {name}: starting the shop")
    worker_options = replace(
        WORKER_OPTIONS, concurrency=arguments.worker_concurrency, db_connections=arguments.db_connections
    )
    with shop_running(
        cluster, database_name, work_dir, workers=WORKERS, gateway=gateway, worker_options=worker_options
    ) as shop:
        assert shop.web is not None and shop.gateway is not None
        database = ShopDatabase(libpq_url(cluster.url()), database_name)
        sampler = ConnectionSampler(libpq_url(cluster.url()), database_name)
        roots = {"web": shop.web.pid, "gateway": shop.gateway.pid, "postgresql": postmaster_pid(cluster)}
        roots |= {worker.name: worker.pid for worker in shop.workers}
        probes = {**database.backend_pids, "sampler": sampler.backend_pid}
        time.sleep(STATS_QUIET_SECONDS)
        database.reset_statements()
        before, probes_before = database.counters(), database.probe_transactions
        cpu_before = cpu_reading(roots, probes)
        with sampler:
            progress(f"scenario {name}: placing {orders} orders from {arguments.concurrency} threads")
            placement = place_orders(shop.web_url, orders, arguments.concurrency)
            progress(f"  placed in {placement.seconds:.1f} s; waiting until every order settles")
            wait_until_settled(shop, database, orders, arguments.settle_timeout)
            cpu_after = cpu_reading(roots, probes)
        probe_transactions = database.probe_transactions - probes_before
        for worker in list(shop.workers):  # a backend flushes its statistics when its client leaves
            shop.stop_worker(worker)
        shop.web.stop()
        time.sleep(0.5)
        after, outcome = database.counters(), database.outcome()
        top = database.top_statements(per=orders)
        database.close()
    cpu = {process: cpu_after[process] - cpu_before[process] for process in cpu_before}
    cpu["total"] = sum(seconds for process, seconds in cpu.items() if process != "machine_busy")
    settled = sum(outcome.states[state] for state in ("shipped", "rejected", "payment_failed", "cancelled"))
    end_to_end = (outcome.last_settled_epoch or time.time()) - placement.first_sent_epoch
    peaks = sampler.peaks
    return {
        "gateway": {"latency_ms": gateway.latency_ms, "transient_error_rate": gateway.transient_error_rate},
        "orders": orders,
        "final_states": dict(outcome.states),
        "unsettled": orders - settled,
        "placement": {
            "seconds": round(placement.seconds, 2),
            "orders_per_second": round(orders / placement.seconds, 1),
            "statuses": dict(placement.statuses),
            "retries": dict(placement.retries),
        },
        "end_to_end": {"seconds": round(end_to_end, 2), "orders_per_second": round(settled / end_to_end, 1)},
        "placed_to_shipped_ms": latency_summary_ms(outcome.shipped_latencies),
        "cpu_seconds": {process: round(seconds, 2) for process, seconds in cpu.items()},
        "cpu_ms_per_order": {process: round(1000 * seconds / orders, 2) for process, seconds in cpu.items()},
        "commits_per_order": round((after.commits - before.commits - probe_transactions) / orders, 2),
        "rollbacks_per_order": round((after.rollbacks - before.rollbacks) / orders, 3),
        "statements_per_order": round((after.statements - before.statements) / orders, 1),
        "top_statements_by_time_per_order": top,
        "peak_connections": {
            "workers_together": peaks.workers_total,
            "by_worker": dict(sorted(peaks.by_worker.items())),
            "session_locks": peaks.session_locks,
            "web_and_others": peaks.others,
            "samples": peaks.samples,
        },
    }


def counted(
    database: ShopDatabase,
    server_pid: int,
    what: str,
    run: Callable[[Callable[[], Reading]], tuple[RequestLoop, Reading]],
) -> dict[str, float]:
    """One timed loop of requests (``run``), with the statements and the CPU (server's tree, client) per
    request, read just before the loop starts and just after it ends."""

    def reading() -> Reading:
        return database.counters().statements, tree_cpu_seconds(server_pid), own_cpu_seconds()

    loop, (statements, server_cpu, client_cpu) = run(reading)
    statements_after, server_cpu_after, client_cpu_after = reading()
    progress(f"  {what}: {loop.per_second:.0f} requests/s")
    return {
        "requests_per_second": round(loop.per_second, 1),
        "failed": loop.failed,
        "statements_per_request": round((statements_after - statements) / loop.ok, 2),
        "server_cpu_ms_per_request": round(1000 * (server_cpu_after - server_cpu) / loop.ok, 2),
        "client_cpu_ms_per_request": round(1000 * (client_cpu_after - client_cpu) / loop.ok, 2),
    }


def placements(
    database: ShopDatabase, url: str, path: str, server_pid: int, connections: int, seconds: float
) -> dict[str, float]:
    """POSTs of ordinary baskets, each with a fresh ``Idempotency-Key``."""
    rng = random.Random(connections)
    return counted(
        database,
        server_pid,
        f"POST {url}{path}, {connections} connections",
        lambda at_start: post_for(
            url, path, lambda: order_body(rng, "a@bench.example.com"), connections, seconds, at_start
        ),
    )


def reads(database: ShopDatabase, web_url: str, server_pid: int, seconds: float) -> dict[str, Any]:
    """The shop's hot read paths at ``READ_CONNECTIONS``: one order and a page of orders through the API
    (operator key), and the operator's orders page and queue dashboard (signed in with the key)."""
    order_ids = database.order_ids(READ_ORDERS)
    picks = itertools.cycle(order_ids)  # shared by the threads; next() on a cycle is atomic under the GIL

    def get(path: Callable[[], str]) -> Callable[[httpx.Client], httpx.Response]:
        return lambda client: client.get(path(), headers=OPERATOR_HEADERS)

    paths = {
        "GET /api/orders/<id>": get(lambda: f"/api/orders/{next(picks)}"),
        "GET /api/orders?limit=20": get(lambda: "/api/orders?limit=20"),
        "GET /orders (page)": get(lambda: "/orders"),
        "GET /queue (page)": get(lambda: "/queue"),
    }

    def timed(
        send: Callable[[httpx.Client], httpx.Response], page: bool
    ) -> Callable[[Callable[[], Reading]], tuple[RequestLoop, Reading]]:
        signing_in = sign_in if page else None
        return lambda at_start: requests_for(
            web_url, send, READ_CONNECTIONS, seconds, at_start, sign_in=signing_in
        )

    return {
        label: counted(
            database, server_pid, f"{label}, {READ_CONNECTIONS} connections", timed(send, "(page)" in label)
        )
        for label, send in paths.items()
    }


def sign_in(client: httpx.Client) -> None:
    """Sign this client in as an operator, as a browser would: the form's CSRF token, then the key."""
    form = client.get("/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None, "the sign-in page has no CSRF token"
    answer = client.post("/sign-in", data={"csrf_token": token.group(1), "key": OPERATOR_KEY})
    assert answer.status_code == 303, f"sign-in answered {answer.status_code}"


def run_http_tier(cluster: PostgresCluster, work_dir: Path, seconds: float) -> dict[str, Any]:
    """POST requests/s of the shop and of the bare app, one after the other, at each connection count;
    then the shop's read paths, over the orders those POSTs left."""
    progress("HTTP tier: starting the shop without workers, and the bare app")
    with shop_running(cluster, "bench_shop_http", work_dir, workers=0, gateway=GatewayOptions()) as shop:
        assert shop.web is not None
        engine = create_engine(shop.database_url)
        bare_insert_app.metadata.create_all(engine)
        engine.dispose()
        bare, bare_url = start_bare_app(shop)
        database = ShopDatabase(libpq_url(cluster.url()), "bench_shop_http")
        targets = {
            "shop": (shop.web_url, "/api/orders", shop.web.pid),
            "bare": (bare_url, "/orders", bare.pid),
        }
        results: dict[str, Any] = {}
        for connections in HTTP_CONNECTIONS:
            row = {
                label: placements(database, url, path, pid, connections, seconds)
                for label, (url, path, pid) in targets.items()
            }
            ratio = row["shop"]["requests_per_second"] / row["bare"]["requests_per_second"]
            results[f"{connections}_connections"] = {**row, "shop_over_bare": round(ratio, 2)}
        results["reads"] = reads(database, shop.web_url, shop.web.pid, seconds)
        database.close()
    return results


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-shop-") as work, statements_cluster() as cluster:
        work_dir = Path(work)
        machine = asyncio.run(describe_machine(libpq_url(cluster.url())))
        scenarios = {
            name: run_scenario(cluster, work_dir, name, gateway, arguments)
            for name, gateway in SCENARIOS.items()
            if name[0] in arguments.scenarios
        }
        http_tier = (
            run_http_tier(cluster, work_dir, arguments.http_seconds) if arguments.http_seconds else None
        )
    return {
        "machine": machine,
        "settings": {
            "orders": arguments.orders,
            "placement_threads": arguments.concurrency,
            "web": {"gunicorn_workers": WEB_WORKERS, "threads": 8, "config": "deploy/gunicorn.conf.py"},
            "workers": WORKERS,
            "worker_arguments": " ".join(
                replace(
                    WORKER_OPTIONS,
                    concurrency=arguments.worker_concurrency,
                    db_connections=arguments.db_connections,
                ).arguments()
            ),
            "gateway_timeout_seconds": GATEWAY_TIMEOUT_SECONDS,
            "http_seconds": arguments.http_seconds,
            "http_connections": list(HTTP_CONNECTIONS),
            "database": "throwaway cluster (initdb defaults), pg_stat_statements preloaded",
            "latency_source": "shipments.dispatched_at - orders.created_at, read at the end",
        },
        "scenarios": scenarios,
        "http_tier": http_tier,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shop_end_to_end", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 orders and 3 s per HTTP measurement")
    parser.add_argument("--orders", type=int, help="orders per scenario (default 2,000; --quick 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="threads placing orders")
    parser.add_argument("--http-seconds", type=float, help="seconds per HTTP measurement (default 10)")
    parser.add_argument("--settle-timeout", type=float, default=900.0, help="give up waiting after this")
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=WORKER_OPTIONS.concurrency,
        help="each worker's --concurrency (default: the command's)",
    )
    parser.add_argument(
        "--db-connections",
        type=int,
        default=None,
        help="each worker's --db-connections (default: the command's)",
    )
    parser.add_argument(
        "--scenarios", default="ab", help="which scenarios to run, by letter (default ab: both)"
    )
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP tier")
    arguments = parser.parse_args()
    arguments.orders = arguments.orders or (200 if arguments.quick else 2_000)
    arguments.http_seconds = arguments.http_seconds or (3.0 if arguments.quick else 10.0)
    if arguments.no_http:
        arguments.http_seconds = 0.0
    print(json.dumps(measure(arguments), indent=2))


if __name__ == "__main__":
    main()
