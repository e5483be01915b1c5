"""The Shop page in a real browser: an order placed in the form is watched all the way to "shipped"."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import Visited
from tests.browser.processes import RunningShop
from tests.support.credentials import OPERATOR_HEADERS

SHIPPING_SECONDS = 60


def test_an_order_placed_in_the_form_is_watched_until_it_is_shipped(
    page: Page, shop: RunningShop, visited: Visited
) -> None:
    page.goto("/")
    page.fill("#customer_email", "grace@example.com")
    page.fill("#shipping_country", "NL")
    page.select_option("select[name=line-0-sku]", "TINY-TEAPOT")
    page.fill("input[name=line-0-quantity]", "2")
    page.click("#place-order")

    expect(page.locator(".flash.ok")).to_contain_text("placed")
    order_id = re.search(r"placed=([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]
    row = page.locator(f"#recent-orders tr[data-order-id='{order_id}']")
    expect(row.locator("[data-task-id]").first).to_be_visible()  # it points at its screening tasks
    # The page refreshes itself (static/live.js): no reload here, the row moves on its own.
    expect(row.locator("[data-order-state=shipped]")).to_be_visible(timeout=SHIPPING_SECONDS * 1000)
    expect(row.locator("[data-task-state=succeeded]")).to_contain_text("batch")
    assert visited.foreign(shop.web_url) == []
    placed = httpx.get(f"{shop.web_url}/api/orders/{order_id}", headers=OPERATOR_HEADERS).json()
    assert placed["customer_email"] == "grace@example.com"
    assert [(line["sku"], line["quantity"]) for line in placed["lines"]] == [("TINY-TEAPOT", 2)]


def test_a_bad_form_shows_each_fields_message_and_places_nothing(page: Page, shop: RunningShop) -> None:
    before = httpx.get(f"{shop.web_url}/api/orders", params={"limit": 100}, headers=OPERATOR_HEADERS).json()[
        "orders"
    ]
    page.goto("/")
    page.fill("#customer_email", "not-an-email")
    page.fill("#shipping_country", "germany")
    page.fill("input[name=line-0-quantity]", "0")

    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.click("#place-order")

    assert answer.value.status == 422
    expect(page.locator("[data-error-for=customer_email]")).to_have_text("Not a valid email address.")
    expect(page.locator("[data-error-for=shipping_country]")).to_contain_text("two upper-case letters")
    expect(page.locator("[data-error-for=line-0-quantity]")).to_have_text("Must be between 1 and 100.")
    expect(page.locator("#customer_email")).to_have_value("not-an-email")  # what was typed stays
    after = httpx.get(f"{shop.web_url}/api/orders", params={"limit": 100}, headers=OPERATOR_HEADERS).json()[
        "orders"
    ]
    assert len(after) == len(before)
