"""The whole shop as real processes for the end-to-end suite: gateway, gunicorn, workers, one database each.

``running_shop`` creates a database on a throwaway cluster (``tests.support.postgres_cluster``), migrates it
with ``shop db upgrade``, starts ``shop gateway`` (its books in an SQLite file of its own, out of reach of
the database a scenario restarts), ``shop web`` and ``shop worker`` processes on free ports, waits until
each answers, and on the way out kills every process it started, whatever happened. Each process runs in
a process group of its own (gunicorn forks), so a kill reaches its children too. Logs go to one file per
process; ``ShopProcesses.logs_tail`` shows the end of each for a failure message.

Nothing here reads the shop's database: a scenario sees the shop the way an operator does, over HTTP and
through the ``shop`` command.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg

from tests.support.credentials import web_environment
from tests.support.gateway_requests import GATEWAY_API_KEY, GATEWAY_HEADERS
from tests.support.http_probe import wait_until_answering
from tests.support.postgres_cluster import PostgresCluster, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0
STOP_SECONDS = 20.0


@dataclass
class ShopProcess:
    """One started process (the leader of its own process group) and the file it logs to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process and every child it forked (gunicorn's workers)."""
        # Even once the leader has exited, its group lives on while a child does; the group ID cannot be
        # reused before then, so this never reaches a stranger.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole group and reap the leader: nothing it started survives."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait()
        self.log.close()

    def stop(self, seconds: float = STOP_SECONDS) -> int:
        """SIGTERM (a graceful stop), SIGKILL after ``seconds``; returns the exit code."""
        self.signal_group(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            code = self.popen.wait()
        self.signal_group(signal.SIGKILL)  # whatever child outlived its leader
        self.log.close()
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


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

    def arguments(self) -> list[str]:
        arguments = ["--concurrency", str(self.concurrency), "--lease-seconds", str(self.lease_seconds)]
        return arguments + (["--registry", self.registry] if self.registry else [])


@dataclass
class GatewayOptions:
    """The gateway simulator's failure injection at start (changed later with ``set_failure_injection``)."""

    latency_ms: int = 0
    transient_error_rate: float = 0.0
    timeout_rate: float = 0.0
    decline_rate: float = 0.0
    timeout_seconds: float = 2.0

    def arguments(self) -> list[str]:
        return [
            "--latency-ms", str(self.latency_ms),
            "--transient-error-rate", str(self.transient_error_rate),
            "--timeout-rate", str(self.timeout_rate),
            "--decline-rate", str(self.decline_rate),
            "--timeout-seconds", str(self.timeout_seconds),
        ]  # fmt: skip


@dataclass
class ShopProcesses:
    """The running shop: its URLs, its processes and what a scenario does to them."""

    cluster: PostgresCluster
    database_url: str
    work_dir: Path
    environment: dict[str, str]
    worker_options: WorkerOptions
    web_url: str = ""
    gateway_url: str = ""
    gateway: ShopProcess | None = None
    web: ShopProcess | None = None
    workers: list[ShopProcess] = field(default_factory=list)
    retired: list[ShopProcess] = field(default_factory=list)  # workers killed or stopped, for their logs
    kills: int = 0
    _started: int = 0

    # -- processes -----------------------------------------------------------------------------------

    def start_process(self, name: str, arguments: Sequence[str]) -> ShopProcess:
        """``python -m shop <arguments>`` in a process group of its own, logging to ``<name>.log``."""
        log_path = self.work_dir / f"{name}.log"
        log = log_path.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "shop", *arguments],
            cwd=REPO_ROOT,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return ShopProcess(name, popen, log_path, log)

    def start_worker(self) -> ShopProcess:
        """One more ``shop worker``; it registers and claims on its own, nothing waits for it."""
        self._started += 1
        worker = self.start_process(f"worker-{self._started}", ["worker", *self.worker_options.arguments()])
        self.workers.append(worker)
        return worker

    def kill_random_worker(self, rng: random.Random) -> ShopProcess:
        """SIGKILL one worker chosen at random (no goodbye: its tasks wait for their lease to run out)."""
        victim = rng.choice(self.workers)
        self.workers.remove(victim)
        victim.kill()
        self.retired.append(victim)
        self.kills += 1
        return victim

    def stop_worker(self, worker: ShopProcess, seconds: float = STOP_SECONDS) -> int:
        """SIGTERM one worker, as a deploy does, and wait for it; returns its exit code."""
        self.workers.remove(worker)
        self.retired.append(worker)
        return worker.stop(seconds)

    def all_processes(self) -> list[ShopProcess]:
        return [p for p in [self.gateway, self.web, *self.workers] if p is not None]

    def check_alive(self) -> None:
        """Fail at once, with its log, if the gateway, the web server or a worker exited on its own."""
        for process in self.all_processes():
            if not process.is_alive():
                raise AssertionError(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.log_text()[-3000:]}"
                )

    def logs_tail(self, characters: int = 2500) -> str:
        """The end of every process's log, for a failure message."""
        processes = [*self.all_processes(), *self.retired]
        return "\n".join(f"----- {p.name} ({p.log_path})\n{p.log_text()[-characters:]}" for p in processes)

    # -- the command line ----------------------------------------------------------------------------

    def shop_command(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``shop <arguments>`` against this shop's database, as an operator would."""
        result = subprocess.run(
            [sys.executable, "-m", "shop", *arguments],
            cwd=REPO_ROOT,
            env=self.environment,
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
    hang (``GatewayOptions.timeout_seconds``) longer, so an injected timeout is one the client sees.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    create_database(cluster, database_name)
    web_port, gateway_port = free_port(), free_port()
    database_url = cluster.url(database_name)
    shop = ShopProcesses(
        cluster=cluster,
        database_url=database_url,
        work_dir=work_dir,
        environment={
            **os.environ,
            "DATABASE_URL": database_url,
            "GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
            "GATEWAY_API_KEY": GATEWAY_API_KEY,  # the gateway requires it, the workers send it
            "GATEWAY_TIMEOUT_SECONDS": str(gateway_timeout_seconds),
            "GATEWAY_DATABASE_URL": f"sqlite:///{work_dir / 'gateway.sqlite3'}",
            "WEB_THREADS": "8",
            "PYTHONUNBUFFERED": "1",
            **web_environment(),  # demo mode off: clients present the operator key, as in production
        },
        worker_options=worker_options or WorkerOptions(),
        web_url=f"http://127.0.0.1:{web_port}",
        gateway_url=f"http://127.0.0.1:{gateway_port}",
    )
    try:
        shop.shop_command("db", "upgrade")
        gateway_arguments = (gateway_options or GatewayOptions()).arguments()
        shop.gateway = shop.start_process(
            "gateway", ["gateway", "--port", str(gateway_port), "--threads", "32", *gateway_arguments]
        )
        shop.web = shop.start_process("web", ["web", "--port", str(web_port), "--workers", str(web_workers)])
        for _ in range(workers):
            shop.start_worker()
        wait_until_answering(
            [f"{shop.gateway_url}/healthz", f"{shop.web_url}/readyz"],
            check_alive=shop.check_alive,
            timeout=START_SECONDS,
        )
        _wait_until_workers_live(shop, workers)
        yield shop
    except BaseException:
        print(shop.logs_tail())  # pytest shows it for a failing test only
        raise
    finally:
        for process in shop.all_processes():
            process.kill()


def create_database(cluster: PostgresCluster, name: str) -> None:
    """``CREATE DATABASE name`` on the cluster (a scenario's own database beside the others')."""
    url = cluster.url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')


def _wait_until_workers_live(shop: ShopProcesses, count: int) -> None:
    """Until ``shop queue stats`` counts ``count`` live workers: from then on the scenario's clock runs."""
    deadline = time.monotonic() + START_SECONDS
    while shop.queue_json("stats")["live_workers"] < count:
        shop.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} workers did not register within {START_SECONDS:.0f} s")
        time.sleep(0.3)


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
