"""The web pages' pure parts, without a database: settings, CSRF and same-origin checks, links, a chart."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from queue_core import MinuteBucket
from shop.config import REPO_ROOT, Settings, SettingsError
from shop.pages import how_it_works
from shop.pages.charts import throughput_chart
from shop.web.app import create_app
from tests.support.credentials import OPERATOR_KEY, web_settings


def test_demo_mode_comes_from_the_environment() -> None:
    assert Settings.from_env({"SHOP_DEMO_MODE": "yes"}).demo_mode is True
    assert Settings.from_env({}).demo_mode is False
    assert Settings.from_env({"SHOP_DEMO_MODE": "0"}).demo_mode is False


def test_demo_mode_must_be_a_yes_or_a_no() -> None:
    with pytest.raises(SettingsError, match="SHOP_DEMO_MODE='maybe' is neither true nor false"):
        Settings.from_env({"SHOP_DEMO_MODE": "maybe"})


def _client(*, demo_mode: bool = False) -> FlaskClient:
    return create_app(web_settings("sqlite://", demo_mode=demo_mode)).test_client()


def _form_token(client: FlaskClient) -> str:
    """The CSRF token a page's form carries, read off the page as a browser would."""
    html = client.get("/sign-in").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_a_post_without_the_csrf_token_is_refused_before_anything_else() -> None:
    client = _client(demo_mode=True)

    response = client.post("/tasks/01a2026e-aa95-7927-a04d-2f26f203e440/retry", data={})

    assert response.status_code == 400
    assert "The form has expired" in response.text


def test_a_token_from_another_browser_is_refused() -> None:
    first, second = _client(demo_mode=True), _client(demo_mode=True)
    token_of_first = _form_token(first)
    _form_token(second)  # the second browser has a session (and a token) of its own

    response = second.post("/sign-out", data={"csrf_token": token_of_first})

    assert response.status_code == 400


def test_a_forged_token_is_refused() -> None:
    client = _client(demo_mode=True)
    _form_token(client)

    response = client.post("/sign-out", data={"csrf_token": "a-forged-one"})

    assert response.status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_form_sent_from_another_site_is_refused_even_with_a_valid_token(headers: dict[str, str]) -> None:
    client = _client(demo_mode=True)
    token = _form_token(client)

    response = client.post("/sign-out", data={"csrf_token": token}, headers=headers)

    assert response.status_code == 403
    assert "another site" in response.text


def test_a_form_sent_from_the_shops_own_page_is_accepted() -> None:
    client = _client(demo_mode=True)
    token = _form_token(client)

    response = client.post("/sign-out", data={"csrf_token": token}, headers={"Origin": "http://localhost"})

    assert response.status_code == 303


def test_outside_demo_mode_a_button_needs_a_signed_in_operator() -> None:
    client = _client()
    token = _form_token(client)

    response = client.post("/tasks/01a2026e-aa95-7927-a04d-2f26f203e440/cancel", data={"csrf_token": token})

    assert response.status_code == 403
    assert "Sign in first" in response.text


def test_an_operator_key_is_never_needed_to_read_the_sign_in_page_and_never_echoed() -> None:
    html = _client().get("/sign-in").get_data(as_text=True)

    assert 'name="key"' in html
    assert OPERATOR_KEY not in html


def test_every_how_it_works_link_names_a_function_that_exists() -> None:
    links = [link for comparison in how_it_works.COMPARISONS for link in comparison.code]

    assert len(links) >= 8
    missing = [link.anchor for link in links if not how_it_works.defines(link.path, link.function)]
    assert missing == []


def test_every_how_it_works_operation_of_the_issue_is_there() -> None:
    operations = {comparison.operation for comparison in how_it_works.COMPARISONS}

    assert {"Validate", "Prevent duplicates", "Cancel", "Find what is in process"} <= operations


@pytest.mark.parametrize(
    "path",
    ["../pyproject.toml", "shop/../../etc/x.py", "tests/conftest.py", "orders/nothing.py", ".venv/x.py"],
)
def test_the_source_view_shows_only_the_applications_own_python(path: str) -> None:
    assert how_it_works.shown_file(path) is None
    assert _client().get(f"/source/{path}").status_code == 404


def test_the_source_view_answers_a_name_too_long_for_the_filesystem_with_a_404() -> None:
    response = _client().get(f"/source/orders/{'a' * 300}.py")

    assert response.status_code == 404
    assert "No such file" in response.text


def test_the_source_view_puts_an_anchor_at_each_function() -> None:
    response = _client().get("/source/orders/tasks.py")

    assert response.status_code == 200
    assert 'id="_order_pointing_at"' in response.text


@pytest.fixture
def untracked_module() -> Iterator[str]:
    """A Python file dropped into a shown package but never added to git; removed afterwards."""
    relative = f"shop/scratch_{uuid.uuid4().hex}.py"
    file = REPO_ROOT / relative
    file.write_text('PASSWORD = "CRUNCHY-ARMCHAIR"\n')
    try:
        yield relative
    finally:
        file.unlink()


def test_the_source_view_does_not_show_a_file_git_does_not_track(untracked_module: str) -> None:
    response = _client().get(f"/source/{untracked_module}")

    assert response.status_code == 404
    assert "CRUNCHY-ARMCHAIR" not in response.text


def test_outside_a_git_checkout_the_source_view_shows_nothing_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "unpacked-shop"
    (copy / "orders").mkdir(parents=True)
    (copy / "orders" / "tasks.py").write_text((REPO_ROOT / "orders" / "tasks.py").read_text())
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above the copy either
    monkeypatch.setattr(how_it_works, "REPO_ROOT", copy)
    how_it_works.tracked_files.cache_clear()
    try:
        response = _client().get("/source/orders/tasks.py")
    finally:
        how_it_works.tracked_files.cache_clear()

    assert response.status_code == 404
    assert "not a git checkout" in response.text
    assert "_order_pointing_at" not in response.text


def test_the_chart_draws_a_bar_per_minute_and_a_latency_line_with_no_script() -> None:
    start = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    minutes = [
        MinuteBucket(
            start + dt.timedelta(minutes=n), succeeded=n * 3, unsuccessful=n % 2, p50_pickup_ms=10.0 * n
        )
        for n in range(10)
    ]

    svg = str(throughput_chart(minutes))

    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="bar ok"') == 10
    assert svg.count('class="bar bad"') == 5
    assert "<polyline" in svg
    assert "<script" not in svg


def test_an_empty_chart_is_still_a_chart() -> None:
    start = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    minutes = [MinuteBucket(start + dt.timedelta(minutes=n), 0, 0, None) for n in range(10)]

    svg = str(throughput_chart(minutes))

    assert "<polyline" not in svg and svg.count('class="bar ok"') == 10
