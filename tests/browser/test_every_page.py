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
    problems = problems_on(page)

    page.goto(path)

    expect(page.locator("h1")).to_have_text(heading)
    assert visited and visited[0] == f"{shop.web_url}{path}"
    assert visited.foreign(shop.web_url) == []
    assert problems == []


def test_the_api_docs_render_under_their_content_security_policy(
    page: Page, shop: RunningShop, visited: Visited
) -> None:
    problems = problems_on(page)

    page.goto("/api/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Inverted shop")
    page.locator(".opblock-summary-path", has_text="/api/products").first.click()  # open it, and run it
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".live-responses-table tbody .response-col_status").first).to_have_text("200")
    assert visited.foreign(shop.web_url) == []
    assert problems == []


def problems_on(page: Page) -> list[str]:
    """A list that fills with the page's console errors (a script failing, a resource its policy blocked)."""
    problems: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems
