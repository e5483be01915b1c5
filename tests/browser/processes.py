"""The shop as real processes for the browser tests (and the screenshot script): gateway, web app, worker.

Everything runs on SQLite files in a directory of the caller's, on free ports, started the way a person
would (``python -m shop gateway|web|worker``, through ``tests.support.processes``), with the web app in
demo mode. Each process logs to a file in that directory; ``logs()`` reads them back for a failing test's
report. On the way out each gets SIGTERM, and SIGKILL if it has not stopped 20 s later.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shop import migrations
from tests.support.credentials import web_environment
from tests.support.gateway_requests import GATEWAY_API_KEY
from tests.support.processes import Processes, answering, free_port, shop_command

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
    processes: Processes

    def logs(self) -> str:
        return self.processes.logs()

    def check_alive(self) -> None:
        self.processes.check_alive()


@contextmanager
def running_shop(
    directory: Path, worker_registry: str | None = None, *, demo_mode: bool = True
) -> Iterator[RunningShop]:
    """Migrate a fresh SQLite database, start the three processes, wait until they answer; stop them after."""
    directory.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{directory / 'shop.sqlite3'}"
    migrations.upgrade(database_url)
    web_port, gateway_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GATEWAY_URL": gateway_url,
        "GATEWAY_API_KEY": GATEWAY_API_KEY,  # the gateway requires it, the web app and the worker send it
        "GATEWAY_SIMULATOR_DATABASE_URL": f"sqlite:///{directory / 'gateway.sqlite3'}",
        "SHOP_DEMO_MODE": "1" if demo_mode else "0",
        "WEB_THREADS": "8",
        **web_environment(),  # demo mode, with an operator key for tests that read as an operator
    }
    worker = ["worker", "--concurrency", "4"]
    if worker_registry is not None:
        worker += ["--registry", worker_registry]
    with Processes(directory, environment=environment) as processes:
        shop = RunningShop(f"http://127.0.0.1:{web_port}", gateway_url, database_url, processes)
        processes.start("gateway", shop_command("gateway", "--port", str(gateway_port), "--workers", "1"))
        processes.start("web", shop_command("web", "--port", str(web_port), "--workers", "1"))
        processes.start("worker", shop_command(*worker))
        processes.wait_until(
            answering(f"{gateway_url}/healthz", f"{shop.web_url}/readyz"),
            what="the gateway and the web app answer",
        )
        yield shop
