"""Fixtures of the browser tier: the shop as real processes, and Debian's Chromium driven by Playwright.

The whole tier is skipped, with the reason, when ``/usr/bin/chromium`` is missing (``apt-get install
chromium``; ``.ci/run`` installs it). Playwright never downloads a browser here: it is pointed at the
system's. One shop (gateway, web app, worker on SQLite) serves every test of the session; each test gets
a fresh browser context, which records every URL the page asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.browser.processes import CHROMIUM, CHROMIUM_ARGS, RunningShop, running_shop

WORKER_REGISTRY = "tests.browser.flaky_tasks:build_registry"


@pytest.fixture(scope="session")
def chromium() -> str:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` to run the browser tests")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def shop(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningShop]:
    with running_shop(tmp_path_factory.mktemp("browser-shop"), worker_registry=WORKER_REGISTRY) as started:
        yield started


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Visited(list[str]):
    """Every URL a page requested, in order."""

    def foreign(self, base_url: str) -> list[str]:
        """The requests that went anywhere but the shop (a CDN, a font service...)."""
        home = urlsplit(base_url).netloc
        web = ("http", "https")
        return [url for url in self if urlsplit(url).scheme in web and urlsplit(url).netloc != home]


@pytest.fixture
def visited() -> Visited:
    return Visited()


@pytest.fixture
def page(browser: Browser, shop: RunningShop, visited: Visited) -> Iterator[Page]:
    """A fresh page on the shop; a request anywhere else is recorded and refused (no page may need one)."""
    context = browser.new_context(base_url=shop.web_url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    home = urlsplit(shop.web_url).netloc

    def only_the_shop(route: Route) -> None:
        visited.append(route.request.url)
        if urlsplit(route.request.url).netloc == home:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_shop)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()
        shop.check_alive()
