"""The shop as real processes for ``benchmarks.shop_end_to_end``, on a PostgreSQL cluster of its own.

This reuses the end-to-end suite's launcher rather than a copy of it: ``tests.support.postgres_cluster``
(a throwaway cluster), ``tests.support.e2e_processes.running_shop`` (migrate, then gateway and ``shop web``,
each a ``tests.support.processes`` process with its log) and its ``GatewayOptions``/``WorkerOptions``. The
benchmarks import ``tests.support`` the way the suite does; nothing there imports the benchmarks back.

Why a cluster of its own rather than a database on the local server: the cluster's processes are then
the benchmark's alone, so the CPU of its whole process tree is honestly the shop's database cost, and it
can preload ``pg_stat_statements`` (the statements per order) without touching a server someone else
configured. It runs with the cluster's defaults (``fsync`` and ``synchronous_commit`` on).

Workers are started here rather than by ``running_shop``: each gets ``application_name=bench-worker-<n>``
in its ``DATABASE_URL``, so ``pg_stat_activity`` tells its connections apart from the web app's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from shop.cli.web import GUNICORN_CONFIG
from tests.support.e2e_processes import GatewayOptions, ShopProcesses, WorkerOptions, running_shop
from tests.support.postgres_cluster import PostgresCluster
from tests.support.processes import LoggedProcess, answering, free_port

WORKER_APPLICATION_PREFIX = "bench-worker-"
# The commands' own defaults (``shop worker --help``, ``shop.config``), not the end-to-end suite's.
WORKER_OPTIONS = WorkerOptions(concurrency=16, lease_seconds=30.0, db_connections=5)
GATEWAY_TIMEOUT_SECONDS = 5.0
WEB_WORKERS = 2  # gunicorn processes, deploy/gunicorn.conf.py's default; WEB_THREADS is 8 in each
BARE_APP = "benchmarks.bare_insert_app:create_app()"


def libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as psycopg's own connect takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def statements_cluster() -> Iterator[PostgresCluster]:
    """A throwaway cluster, ``pg_stat_statements`` preloaded and created in ``postgres``; removed after."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        with psycopg.connect(libpq_url(cluster.url()), autocommit=True) as connection:
            connection.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        cluster.restart()
        with psycopg.connect(libpq_url(cluster.url()), autocommit=True) as connection:
            connection.execute("CREATE EXTENSION pg_stat_statements")
        yield cluster
    finally:
        cluster.remove()


def postmaster_pid(cluster: PostgresCluster) -> int:
    """The cluster's postmaster: the root of every backend's process tree."""
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])


@contextmanager
def shop_running(
    cluster: PostgresCluster,
    database: str,
    work_dir: Path,
    *,
    workers: int,
    gateway: GatewayOptions,
    worker_options: WorkerOptions = WORKER_OPTIONS,
) -> Iterator[ShopProcesses]:
    """A migrated ``database``, the gateway, ``shop web`` and ``workers`` named workers, all answering."""
    with running_shop(
        cluster,
        database,
        work_dir / database,
        workers=0,
        worker_options=worker_options,
        gateway_options=gateway,
        gateway_timeout_seconds=GATEWAY_TIMEOUT_SECONDS,
        web_workers=WEB_WORKERS,
    ) as shop:
        for number in range(1, workers + 1):
            start_named_worker(shop, number)
        shop.processes.wait_until(
            lambda: shop.queue_json("stats")["live_workers"] >= workers,
            what=f"{workers} workers register",
            interval=0.3,
        )
        yield shop


def start_named_worker(shop: ShopProcesses, number: int) -> LoggedProcess:
    """``shop worker`` whose connections carry ``application_name=bench-worker-<number>``."""
    assert shop.processes.environment is not None
    url = f"{shop.database_url}?application_name={WORKER_APPLICATION_PREFIX}{number}"
    worker = shop.processes.start(
        f"worker-{number}",
        [sys.executable, "-m", "shop", "worker", *shop.worker_options.arguments()],
        environment={**shop.processes.environment, "DATABASE_URL": url},
    )
    shop.workers.append(worker)
    return worker


def start_bare_app(shop: ShopProcesses) -> tuple[LoggedProcess, str]:
    """The bare one-INSERT app under gunicorn with ``shop web``'s configuration, on the shop's database."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG),
        "--bind", f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS), BARE_APP,
    ]  # fmt: skip
    bare = shop.processes.start("bare-app", command)
    url = f"http://127.0.0.1:{port}"
    shop.processes.wait_until(answering(f"{url}/healthz"), what="the bare app answers")
    return bare, url
