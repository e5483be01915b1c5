"""Every page in a real browser: it renders, its script runs without an error, and it asks nothing of
the internet (no CDN, no web font): the demo works offline."""

from __future__ import annotations

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import Visited
from tests.browser.processes import RunningShop


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/", "Shop"),
        ("/orders", "Orders"),
        ("/tasks", "Tasks"),
        ("/queue", "Queue"),
        ("/how-it-works", "How it works"),
    ],
)
def test_the_page_renders_offline_and_without_script_errors(
    page: Page, shop: RunningShop, visited: Visited, path: str, heading: str
) -> None:
    problems: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(path)

    expect(page.locator("h1")).to_have_text(heading)
    assert visited and visited[0] == f"{shop.web_url}{path}"
    assert visited.foreign(shop.web_url) == []
    assert problems == []
