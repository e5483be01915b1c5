"""``shop demo``: the whole system in one command, on the embedded default database.

It migrates the database, then starts what a deployment would run, each as its own process:
the payment gateway simulator (``shop gateway``), the web app (``shop web``, gunicorn) and queue workers
(``shop worker``, which also run the shipping dispatcher and the repair of dangling references on their
schedules). It places a few sample orders over HTTP, prints where to look, and stops everything on
Ctrl-C. Each process logs to ``var/demo-logs/<name>.log`` (readable by its owner only).
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import click
import httpx
from flask.cli import with_appcontext

from shop import migrations
from shop.cli.database import checked_database_url, explained_database_errors
from shop.cli.ports import check_port_is_free
from shop.config import REPO_ROOT, app_settings
from shop.private_files import create_private_file, make_private_directory, open_private_log

LOG_DIR = REPO_ROOT / "var" / "demo-logs"
SECRET_KEY_FILE = REPO_ROOT / "var" / "demo-secret-key"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0
FINAL_STATES = {"shipped", "rejected", "payment_failed", "cancelled"}
SAMPLE_SKUS = [
    "CRUNCHY-ARMCHAIR",
    "WOBBLY-TABLE",
    "SHINY-LAMP",
    "FLUFFY-RUG",
    "TINY-TEAPOT",
    "HEAVY-BOOKSHELF",
]


@dataclass
class Child:
    """One process the demo started, with the log file it writes to."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]


@click.command("demo")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Web port.")
@click.option("--gateway-port", type=click.IntRange(1, 65535), default=8001, show_default=True)
@click.option("--workers", type=click.IntRange(1, 8), default=1, show_default=True, help="Worker processes.")
@click.option("--orders", "order_count", type=click.IntRange(0, 500), default=12, show_default=True)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=LOG_DIR,
    show_default=True,
    help="Where each process writes its log.",
)
@click.option(
    "--exit-when-settled",
    is_flag=True,
    help="Stop once every sample order has settled, and exit 1 if one did not (for checks and CI).",
)
@with_appcontext
def demo_command(
    port: int, gateway_port: int, workers: int, order_count: int, log_dir: Path, exit_when_settled: bool
) -> None:
    """Run the gateway, the web app and workers, place sample orders, and print where to look."""
    settings = app_settings()
    if port == gateway_port:
        raise click.BadParameter(
            f"the gateway needs a port of its own, not {port}", param_hint="'--gateway-port'"
        )
    # Before anything is migrated or started: sample orders must never go to another program's port.
    check_port_is_free("127.0.0.1", port)
    check_port_is_free("127.0.0.1", gateway_port, option="--gateway-port")
    shown_url = checked_database_url(settings.database_url)
    with explained_database_errors(shown_url):
        migrations.upgrade(settings.database_url)
    click.echo(f"Database: {shown_url} (migrated)")
    web_url = f"http://127.0.0.1:{port}"
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    environment = {**os.environ, "DATABASE_URL": settings.database_url, "GATEWAY_URL": gateway_url}
    environment["SHOP_DEMO_MODE"] = "1"  # anyone may press the pages' buttons; every page says so
    # The command's own app holds a throwaway key (``shop.cli.main``); the web app needs one that lasts.
    environment["SHOP_SECRET_KEY"] = os.environ.get("SHOP_SECRET_KEY") or _demo_secret_key(SECRET_KEY_FILE)
    # The gateway, the web app and the workers share one API key: the environment's, else a new one for
    # this run. Given through the environment, not argv, which every user of the machine can read.
    environment["GATEWAY_API_KEY"] = settings.gateway_api_key or secrets.token_urlsafe(32)
    commands = [
        # A gateway that misbehaves now and then, so retries and declines show up in the demo.
        ("gateway", ["gateway", "--port", str(gateway_port), "--latency-ms", "150", "--transient-error-rate",
                     "0.15", "--decline-rate", "0.1", "--timeout-rate", "0.02", "--hang-seconds", "8"]),
        ("web", ["web", "--port", str(port), "--workers", "1"]),
        *[(f"worker-{n}", ["worker", "--concurrency", "4"]) for n in range(1, workers + 1)],
    ]  # fmt: skip
    make_private_directory(log_dir)
    with _children(commands, environment, log_dir) as children:
        _wait_until_up(children, [f"{gateway_url}/healthz", f"{web_url}/readyz"])
        click.echo(f"Gateway simulator: {gateway_url}   Logs: {log_dir}")
        placed = _place_sample_orders(web_url, order_count)
        click.echo(f"\nThe shop is running: open {web_url}/")
        click.echo(f"  orders and their tasks: {web_url}/orders")
        click.echo(f"  the queue:              {web_url}/queue")
        click.echo(f"  the API, try it out:    {web_url}/api/docs")
        if exit_when_settled:
            settled = _wait_until_settled(children, web_url, placed)
            if not settled:
                raise click.ClickException(f"some sample orders did not settle; see the logs in {log_dir}")
            return
        click.echo("Press Ctrl-C to stop.")
        _wait_for_interrupt(children)


def _demo_secret_key(path: Path) -> str:
    """The demo's secret key: made once and kept (owner-only), so orders' tokens outlive a restart."""
    if not path.exists():
        create_private_file(path)  # 0600, in 0700 directories, before the key is written into it
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


@contextmanager
def _children(
    commands: Sequence[tuple[str, list[str]]], environment: dict[str, str], log_dir: Path
) -> Iterator[list[Child]]:
    """Start every command as ``python -m shop ...``; on leaving, SIGTERM them all and wait (then kill)."""
    children: list[Child] = []
    try:
        for name, arguments in commands:
            log_path = log_dir / f"{name}.log"
            log = open_private_log(log_path)
            process = subprocess.Popen(
                [sys.executable, "-m", "shop", *arguments],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            children.append(Child(name, process, log_path, log))
        yield children
    finally:
        for child in children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for child in children:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.log.close()
        click.echo("Stopped the gateway, the web app and the workers.")


def _check_alive(children: Sequence[Child]) -> None:
    for child in children:
        code = child.process.poll()
        if code is not None:
            tail = child.log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise click.ClickException(
                f"{child.name} exited with code {code}; the end of {child.log_path}:\n  " + "\n  ".join(tail)
            )


def _wait_until_up(children: Sequence[Child], urls: Sequence[str]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    for url in urls:
        while True:
            _check_alive(children)
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise click.ClickException(f"{url} did not answer within {STARTUP_SECONDS:.0f} s")
            time.sleep(0.2)


def _place_sample_orders(web_url: str, count: int) -> list[str]:
    """Place ``count`` orders: most ordinary, one a fraud screening rejects, one cancelled at once."""
    rng = random.Random()
    placed: list[str] = []
    with httpx.Client(base_url=web_url, timeout=10.0) as client:
        for n in range(count):
            email = "mallory@fraud.example" if n == 1 else f"customer{n}@example.com"
            skus = rng.sample(SAMPLE_SKUS, k=rng.randint(1, 3))
            body = {
                "customer_email": email,
                "shipping_country": rng.choice(["DE", "FR", "NL", "GB", "US"]),
                "lines": [{"sku": sku, "quantity": rng.randint(1, 3)} for sku in skus],
            }
            response = client.post(
                "/api/orders", json=body, headers={"Idempotency-Key": f"demo-{time.time_ns()}"}
            )
            response.raise_for_status()
            order_id = response.json()["id"]
            placed.append(order_id)
            if n == 2:
                _cancel(client, order_id)
    click.echo(
        f"Placed {len(placed)} sample orders (one from a fraud.example address, one cancelled at once)."
    )
    return placed


def _cancel(client: httpx.Client, order_id: str) -> None:
    """Cancel an order, sending the request again while the shop answers 409 with Retry-After (busy rows)."""
    for _attempt in range(10):
        response = client.post(f"/api/orders/{order_id}/cancel")
        if response.status_code == 409 and "Retry-After" in response.headers:
            time.sleep(float(response.headers["Retry-After"]))
            continue
        response.raise_for_status()
        return
    raise click.ClickException(f"could not cancel sample order {order_id}: the shop kept answering 409")


def _wait_until_settled(children: Sequence[Child], web_url: str, order_ids: Sequence[str]) -> bool:
    """Poll until every order is in a final state; prints the tally. False if that takes too long."""
    deadline = time.monotonic() + 120.0
    states: dict[str, str] = {}
    with httpx.Client(base_url=web_url, timeout=10.0) as client:
        while time.monotonic() < deadline:
            _check_alive(children)
            states = {
                order_id: client.get(f"/api/orders/{order_id}").json()["state"] for order_id in order_ids
            }
            if len(states) == len(order_ids) and all(state in FINAL_STATES for state in states.values()):
                break
            time.sleep(1.0)
    tally: dict[str, int] = {}
    for state in states.values():
        tally[state] = tally.get(state, 0) + 1
    click.echo("Sample orders: " + ", ".join(f"{count} {state}" for state, count in sorted(tally.items())))
    return len(states) == len(order_ids) and all(state in FINAL_STATES for state in states.values())


def _wait_for_interrupt(children: Sequence[Child]) -> None:
    stop = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stop:
            _check_alive(children)
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("")
