"""The task explorer and the dashboard in a real browser: a batch task's orders, and a dead task re-queued."""

from __future__ import annotations

import time
import uuid

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from shop.database import create_engine_from_url
from tests.browser.flaky_tasks import fails_first_time
from tests.browser.processes import RunningShop

SETTLE_SECONDS = 60


def _place_orders(shop: RunningShop, count: int) -> list[str]:
    placed = []
    with httpx.Client(base_url=shop.web_url, timeout=10.0) as client:
        for n in range(count):
            body = {
                "customer_email": f"batch{n}@example.com",
                "shipping_country": "FR",
                "lines": [{"sku": "SHINY-LAMP", "quantity": 1}],
            }
            response = client.post("/api/orders", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
            response.raise_for_status()
            placed.append(response.json()["id"])
    return placed


def _batches_once_shipped(shop: RunningShop, ids: list[str]) -> dict[str, set[str]]:
    """Wait until every order is shipped; then each batch task with the orders whose shipment points at it."""
    deadline = time.monotonic() + SETTLE_SECONDS
    with httpx.Client(base_url=shop.web_url, timeout=10.0) as client:
        while True:
            states = {order_id: client.get(f"/api/orders/{order_id}").json()["state"] for order_id in ids}
            if all(state == "shipped" for state in states.values()):
                break
            assert time.monotonic() < deadline, f"not all shipped: {states}\n{shop.logs()}"
            time.sleep(0.5)
        batches: dict[str, set[str]] = {}
        for order_id in ids:
            shipment = client.get(f"/api/orders/{order_id}/shipment").json()
            batches.setdefault(shipment["batch_task"]["id"], set()).add(order_id)
    return batches


def test_a_batch_task_shows_every_order_that_shipped_in_it(page: Page, shop: RunningShop) -> None:
    order_ids = _place_orders(shop, 4)
    batches = _batches_once_shipped(shop, order_ids)
    first_order = order_ids[0]
    [batch_task] = [task_id for task_id, members in batches.items() if first_order in members]

    page.goto("/orders?show=all")
    page.locator(f"tr[data-order-id='{first_order}'] td[data-column=batch] a").click()

    expect(page.locator("h1")).to_contain_text(batch_task)
    expect(page.locator("h1")).to_contain_text("succeeded")
    rows = page.locator("#referrers tr[data-referrer='shipments.shipping_task_id']")
    shown = set(rows.evaluate_all("rows => rows.map(row => row.dataset.orderId)"))
    assert batches[batch_task] <= shown  # every order of ours that left in this batch, and
    with httpx.Client(base_url=shop.web_url) as client:  # exactly the batch's shipments, per the API
        members = client.get(f"/api/shipping/batches/{batch_task}").json()
    assert shown == {shipment["order_id"] for shipment in members["shipments"]}
    expect(rows.locator("[data-order-state=shipped]")).to_have_count(len(shown))


def test_a_dead_task_requeued_from_the_dashboard_succeeds_on_its_second_attempt(
    page: Page, shop: RunningShop
) -> None:
    engine = create_engine_from_url(shop.database_url)
    try:
        with Session(engine) as session:
            task_id = fails_first_time.enqueue(session)
            session.commit()
    finally:
        engine.dispose()

    page.goto("/queue")
    dead_row = page.locator(f"#dead-tasks tr[data-dead-task='{task_id}']")
    expect(dead_row).to_be_visible(timeout=SETTLE_SECONDS * 1000)  # the dashboard refreshes itself
    dead_row.get_by_role("button", name="Re-queue").click()

    expect(page.locator(".flash.ok")).to_contain_text(f"Re-queued task {task_id}")
    page.goto(f"/tasks/{task_id}")
    expect(page.locator("dd[data-task-state]")).to_have_attribute(
        "data-task-state", "succeeded", timeout=SETTLE_SECONDS * 1000
    )
    expect(page.locator("#attempts")).to_have_text("2")
    expect(page.locator("#attempts-and-errors")).to_contain_text("the CRUNCHY-ARMCHAIR fell off the truck")
    expect(page.locator("ol.timeline")).to_contain_text("attempt 1 failed: RuntimeError")
