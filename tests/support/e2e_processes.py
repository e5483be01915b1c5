"""The whole shop as real processes for the end-to-end suite: gateway, gunicorn, workers, one database each.

``running_shop`` creates a database on a throwaway cluster (``tests.support.postgres_cluster``), migrates it
with ``shop db upgrade``, starts ``shop gateway`` (its books in an SQLite file of its own, out of reach of
the database a scenario restarts), ``shop web`` and ``shop worker`` processes on free ports, waits until
each answers, and on the way out kills every process it started, whatever happened. The processes are
``tests.support.processes``'s: a process group and a log file each; ``ShopProcesses.logs_tail`` shows the
end of each log for a failure message.

Nothing here reads the shop's database: a scenario sees the shop the way an operator does, over HTTP and
through the ``shop`` command.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support.credentials import web_environment
from tests.support.gateway_requests import GATEWAY_API_KEY, GATEWAY_HEADERS
from tests.support.postgres_cluster import PostgresCluster
from tests.support.processes import (
    REPO_ROOT,
    STOP_SECONDS,
    LoggedProcess,
    Processes,
    answering,
    free_port,
    shop_command,
)


@dataclass
class WorkerOptions:
    """How ``shop worker`` processes run (``shop worker --help``).

    The lease is shorter than the command's 30 s, so that tasks of a worker that died come back within
    a scenario, and long enough that a worker starved of CPU by a busy machine is not taken for dead.
    Scenarios that kill workers or the database shorten it further.
    """

    concurrency: int = 4
    lease_seconds: float = 10.0
    registry: str | None = None  # module:attr of a TaskRegistry of the test's own (hidden option)
    db_connections: int | None = None  # None: the command's default

    def arguments(self) -> list[str]:
        arguments = ["--concurrency", str(self.concurrency), "--lease-seconds", str(self.lease_seconds)]
        if self.db_connections is not None:
            arguments += ["--db-connections", str(self.db_connections)]
        return arguments + (["--registry", self.registry] if self.registry else [])


@dataclass
class GatewayOptions:
    """The gateway simulator's failure injection at start (changed later with ``set_failure_injection``)."""

    latency_ms: int = 0
    transient_error_rate: float = 0.0
    timeout_rate: float = 0.0
    decline_rate: float = 0.0
    hang_seconds: float = 2.0  # an injected timeout's hang: longer than the workers' patience

    def arguments(self) -> list[str]:
        return [
            "--latency-ms", str(self.latency_ms),
            "--transient-error-rate", str(self.transient_error_rate),
            "--timeout-rate", str(self.timeout_rate),
            "--decline-rate", str(self.decline_rate),
            "--hang-seconds", str(self.hang_seconds),
        ]  # fmt: skip


@dataclass
class ShopProcesses:
    """The running shop: its URLs, its processes and what a scenario does to them."""

    cluster: PostgresCluster
    database_url: str
    processes: Processes  # every process started, those a scenario killed or stopped too, for their logs
    worker_options: WorkerOptions
    web_url: str = ""
    gateway_url: str = ""
    gateway: LoggedProcess | None = None
    web: LoggedProcess | None = None
    workers: list[LoggedProcess] = field(default_factory=list)  # the ones running
    kills: int = 0
    _started: int = 0

    # -- processes -----------------------------------------------------------------------------------

    def start_worker(self) -> LoggedProcess:
        """One more ``shop worker``; it registers and claims on its own, nothing waits for it."""
        self._started += 1
        worker = self.processes.start(
            f"worker-{self._started}", shop_command("worker", *self.worker_options.arguments())
        )
        self.workers.append(worker)
        return worker

    def kill_random_worker(self, rng: random.Random) -> LoggedProcess:
        """SIGKILL one worker chosen at random (no goodbye: its tasks wait for their lease to run out)."""
        victim = rng.choice(self.workers)
        self.workers.remove(victim)
        victim.kill()
        self.kills += 1
        return victim

    def stop_worker(self, worker: LoggedProcess, seconds: float = STOP_SECONDS) -> int:
        """SIGTERM one worker, as a deploy does, and wait (SIGKILL after ``seconds``); its exit code."""
        self.workers.remove(worker)
        return worker.stop(seconds=seconds)

    def check_alive(self) -> None:
        """Fail at once, with its log, if the gateway, the web server or a worker exited on its own."""
        self.processes.check_alive()

    def logs_tail(self, characters: int = 2500) -> str:
        """The end of every process's log, for a failure message."""
        return self.processes.logs(characters)

    # -- the command line ----------------------------------------------------------------------------

    def shop_command(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``shop <arguments>`` against this shop's database, as an operator would."""
        result = subprocess.run(
            shop_command(*arguments),
            cwd=REPO_ROOT,
            env=self.processes.environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"shop {' '.join(arguments)} exited {result.returncode}:\n{result.stderr}")
        return result

    def queue_json(self, *arguments: str) -> Any:
        """``shop queue <arguments> --json``, parsed."""
        return json.loads(self.shop_command("queue", *arguments, "--json").stdout)

    # -- the gateway's controls ----------------------------------------------------------------------

    def set_failure_injection(self, **settings: float) -> None:
        """Change how the gateway misbehaves, at run time (every gateway process sees it at once)."""
        response = httpx.put(
            f"{self.gateway_url}/v1/failure-injection", json=settings, headers=GATEWAY_HEADERS, timeout=10.0
        )
        response.raise_for_status()

    def ledger(self) -> dict[str, Any]:
        """The gateway's books: every charge, with the merchant's reference (the payment's ID)."""
        response = httpx.get(f"{self.gateway_url}/v1/ledger", headers=GATEWAY_HEADERS, timeout=30.0)
        response.raise_for_status()
        ledger: dict[str, Any] = response.json()
        return ledger


@contextmanager
def running_shop(
    cluster: PostgresCluster,
    database_name: str,
    work_dir: Path,
    *,
    workers: int = 2,
    worker_options: WorkerOptions | None = None,
    gateway_options: GatewayOptions | None = None,
    gateway_timeout_seconds: float = 1.0,
    web_workers: int = 2,
) -> Iterator[ShopProcesses]:
    """Create and migrate ``database_name``, start the gateway, the web app and ``workers`` workers.

    ``gateway_timeout_seconds`` is the workers' patience with the gateway; keep the gateway's injected
    hang (``GatewayOptions.hang_seconds``) longer, so an injected timeout is one the client sees.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    create_database(cluster, database_name)
    web_port, gateway_port = free_port(), free_port()
    database_url = cluster.url(database_name)
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "GATEWAY_API_KEY": GATEWAY_API_KEY,  # the gateway requires it, the workers send it
        "GATEWAY_TIMEOUT_SECONDS": str(gateway_timeout_seconds),
        "GATEWAY_SIMULATOR_DATABASE_URL": f"sqlite:///{work_dir / 'gateway.sqlite3'}",
        "WEB_THREADS": "8",
        "PYTHONUNBUFFERED": "1",
        **web_environment(),  # demo mode off: clients present the operator key, as in production
    }
    with Processes(work_dir, environment=environment, stop_seconds=0) as processes:
        shop = ShopProcesses(
            cluster=cluster,
            database_url=database_url,
            processes=processes,
            worker_options=worker_options or WorkerOptions(),
            web_url=f"http://127.0.0.1:{web_port}",
            gateway_url=f"http://127.0.0.1:{gateway_port}",
        )
        shop.shop_command("db", "upgrade")
        gateway_arguments = (gateway_options or GatewayOptions()).arguments()
        shop.gateway = processes.start(
            "gateway",
            shop_command("gateway", "--port", str(gateway_port), "--threads", "32", *gateway_arguments),
        )
        web_arguments = ("web", "--port", str(web_port), "--workers", str(web_workers))
        shop.web = processes.start("web", shop_command(*web_arguments))
        for _ in range(workers):
            shop.start_worker()
        processes.wait_until(
            answering(f"{shop.gateway_url}/healthz", f"{shop.web_url}/readyz"),
            what="the gateway and the web app answer",
        )
        # From then on the scenario's clock runs.
        processes.wait_until(
            lambda: shop.queue_json("stats")["live_workers"] >= workers,
            what=f"{workers} workers register",
            interval=0.3,
        )
        yield shop


def create_database(cluster: PostgresCluster, name: str) -> None:
    """``CREATE DATABASE name`` on the cluster (a scenario's own database beside the others')."""
    url = cluster.url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def assert_nothing_left_running(shop: ShopProcesses, seconds: float = 20.0) -> None:
    """Within a lease or two, no task is running any more: the killed workers' tasks were all rescued.

    The periodic tasks (dispatcher, repair) start every few seconds and finish in milliseconds, so a
    moment with nothing running comes quickly unless a task is stuck.
    """
    deadline = time.monotonic() + seconds
    while True:
        running = shop.queue_json("stats")["by_state"].get("running", 0)
        if running == 0:
            return
        if time.monotonic() > deadline:
            stuck = shop.queue_json("list", "--state", "running")
            raise AssertionError(f"{running} task(s) still running after {seconds:.0f} s: {stuck}")
        time.sleep(0.5)
