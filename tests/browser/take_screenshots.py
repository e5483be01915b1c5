"""Take the README's screenshots of every page: ``python -m tests.browser.take_screenshots [--out DIR]``.

It starts the shop the way the browser tests do (gateway, web app, worker on SQLite in a temporary
directory), places a few orders (one that fraud screening rejects), makes one dead task, waits until the
first orders shipped, slows the gateway down and places a few more so that some are in flight, and saves
a PNG of each page with Debian's Chromium (``/usr/bin/chromium``). About half a minute.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright
from sqlalchemy.orm import Session

from shop.database import create_engine_from_url
from tests.browser.flaky_tasks import fails_first_time
from tests.browser.processes import CHROMIUM, CHROMIUM_ARGS, RunningShop, running_shop
from tests.support.gateway_requests import GATEWAY_HEADERS
from tests.support.processes import REPO_ROOT

DEFAULT_OUT = REPO_ROOT / "docs" / "screenshots"
SKUS = ["CRUNCHY-ARMCHAIR", "WOBBLY-TABLE", "SHINY-LAMP", "FLUFFY-RUG", "TINY-TEAPOT", "HEAVY-BOOKSHELF"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Where the PNG files go.")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as directory,
        running_shop(Path(directory), worker_registry="tests.browser.flaky_tasks:build_registry") as shop,
    ):
        first = _place(shop, 10)
        _make_a_dead_task(shop)
        _wait_until_settled(shop, first)
        batch = httpx.get(f"{shop.web_url}/api/orders/{first[0]}/shipment").json()["batch_task"]["id"]
        # A slow gateway keeps the next orders' charges in flight while the pictures are taken.
        slow = {"latency_ms": 4000}
        httpx.put(
            f"{shop.gateway_url}/v1/failure-injection", json=slow, headers=GATEWAY_HEADERS
        ).raise_for_status()
        _place(shop, 6, start=10)
        time.sleep(1.5)
        pages = {
            "orders": "/orders",
            "queue": "/queue",
            "shop": "/",
            "task-explorer": f"/tasks/{batch}",
            "how-it-works": "/how-it-works",
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(base_url=shop.web_url, viewport={"width": 1400, "height": 900})
            for name, path in pages.items():
                page.goto(path)
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=name != "how-it-works")
                print(f"{args.out / name}.png  <- {path}")
            browser.close()


def _place(shop: RunningShop, count: int, start: int = 0) -> list[str]:
    placed = []
    with httpx.Client(base_url=shop.web_url, timeout=10.0) as client:
        for n in range(start, start + count):
            email = "mallory@fraud.example" if n == 1 else f"shopper{n}@example.com"
            lines = [{"sku": SKUS[(n + k) % len(SKUS)], "quantity": 1 + k} for k in range(1 + n % 2)]
            body = {"customer_email": email, "shipping_country": ["DE", "FR", "NL"][n % 3], "lines": lines}
            response = client.post("/api/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
            response.raise_for_status()
            placed.append(response.json()["id"])
    return placed


def _make_a_dead_task(shop: RunningShop) -> None:
    engine = create_engine_from_url(shop.database_url)
    try:
        with Session(engine) as session:
            fails_first_time.enqueue(session)
            session.commit()
    finally:
        engine.dispose()


def _wait_until_settled(shop: RunningShop, order_ids: list[str], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    final = {"shipped", "rejected", "payment_failed", "cancelled"}
    with httpx.Client(base_url=shop.web_url, timeout=10.0) as client:
        while time.monotonic() < deadline:
            states = {client.get(f"/api/orders/{order_id}").json()["state"] for order_id in order_ids}
            if states <= final:
                return
            time.sleep(0.5)
    raise SystemExit(f"the orders did not settle within {seconds:.0f} s:\n{shop.logs()}")


if __name__ == "__main__":
    main()
