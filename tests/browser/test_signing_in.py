"""An operator in a real browser, outside demo mode: sent to sign in, then sees all, until signing out."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.processes import RunningShop, running_shop
from tests.support.credentials import OPERATOR_KEY


@pytest.fixture(scope="module")
def guarded_shop(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningShop]:
    """A shop as it runs in production: demo mode off, one operator key configured."""
    with running_shop(tmp_path_factory.mktemp("guarded-shop"), demo_mode=False) as started:
        yield started


@pytest.fixture
def guarded_page(browser: Browser, guarded_shop: RunningShop) -> Iterator[Page]:
    context = browser.new_context(base_url=guarded_shop.web_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_an_operator_signs_in_sees_the_orders_with_emails_whole_and_signs_out_for_good(
    guarded_page: Page, guarded_shop: RunningShop
) -> None:
    page = guarded_page
    body = {
        "customer_email": "grace.hopper@example.com",
        "shipping_country": "NL",
        "lines": [{"sku": "TINY-TEAPOT", "quantity": 1}],
    }
    httpx.post(f"{guarded_shop.web_url}/api/orders", json=body).raise_for_status()

    page.goto("/orders")
    expect(page).to_have_url(f"{guarded_shop.web_url}/sign-in")  # the shop's data is for operators
    expect(page.locator("header .who")).to_contain_text("read-only")

    page.fill("#key", OPERATOR_KEY)
    page.click("form.card button[type=submit]")
    expect(page).to_have_url(f"{guarded_shop.web_url}/queue")
    expect(page.locator("header .who")).to_contain_text("signed in")
    page.goto("/orders")
    expect(page.locator("main")).to_contain_text("grace.hopper@example.com")

    page.goto("/sign-in")
    page.click("text=Sign out")
    expect(page.locator("header .who")).to_contain_text("read-only")
    page.goto("/orders")
    expect(page).to_have_url(f"{guarded_shop.web_url}/sign-in")


def test_a_wrong_key_is_refused_on_the_page(guarded_page: Page) -> None:
    guarded_page.goto("/sign-in")
    guarded_page.fill("#key", "FLUFFY-RUG-not-the-operator-key-0123456789")
    guarded_page.click("form.card button[type=submit]")

    expect(guarded_page.locator(".flash.error")).to_have_text("That is not an operator key.")
    expect(guarded_page.locator("header .who")).to_contain_text("read-only")
