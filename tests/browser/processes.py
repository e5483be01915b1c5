"""The shop as real processes for the browser tests (and the screenshot script): gateway, web app, worker.

Everything runs on SQLite files in a directory of the caller's, on free ports, started the way a person
would (``python -m shop gateway|web|worker``), with the web app in demo mode. Each process logs to a
file in that directory; ``logs()`` reads them back for a failing test's report.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from shop import migrations
from tests.support.credentials import web_environment
from tests.support.gateway_process import free_port
from tests.support.gateway_requests import GATEWAY_API_KEY
from tests.support.http_probe import wait_until_answering

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0
STOP_SECONDS = 20.0
CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, headless, quiet: no first-run screens, no background downloads, no sync, no sandbox
# (tests often run as root in a container, where Chromium's sandbox cannot start).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class RunningShop:
    """The started processes, where they listen, and where they log."""

    web_url: str
    gateway_url: str
    database_url: str
    directory: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.directory.glob("*.log"))
        )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.logs()}")


@contextmanager
def running_shop(
    directory: Path, worker_registry: str | None = None, *, demo_mode: bool = True
) -> Iterator[RunningShop]:
    """Migrate a fresh SQLite database, start the three processes, wait until they answer; stop them after."""
    directory.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{directory / 'shop.sqlite3'}"
    migrations.upgrade(database_url)
    web_port, gateway_port = free_port(), free_port()
    shop = RunningShop(
        web_url=f"http://127.0.0.1:{web_port}",
        gateway_url=f"http://127.0.0.1:{gateway_port}",
        database_url=database_url,
        directory=directory,
    )
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GATEWAY_URL": shop.gateway_url,
        "GATEWAY_API_KEY": GATEWAY_API_KEY,  # the gateway requires it, the web app and the worker send it
        "GATEWAY_DATABASE_URL": f"sqlite:///{directory / 'gateway.sqlite3'}",
        "SHOP_DEMO_MODE": "1" if demo_mode else "0",
        "WEB_THREADS": "8",
        **web_environment(),  # demo mode, with an operator key for tests that read as an operator
    }
    worker = ["worker", "--concurrency", "4"]
    if worker_registry is not None:
        worker += ["--registry", worker_registry]
    commands = {
        "gateway": ["gateway", "--port", str(gateway_port), "--workers", "1"],
        "web": ["web", "--port", str(web_port), "--workers", "1"],
        "worker": worker,
    }
    logs: list[IO[bytes]] = []
    try:
        for name, arguments in commands.items():
            log = (directory / f"{name}.log").open("wb")
            logs.append(log)
            shop.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "shop", *arguments],
                cwd=REPO_ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_answering(
            [f"{shop.gateway_url}/healthz", f"{shop.web_url}/readyz"],
            check_alive=shop.check_alive,
            timeout=START_SECONDS,
            explain=shop.logs,
        )
        yield shop
    finally:
        for process in shop.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in shop.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for opened in logs:
            opened.close()
