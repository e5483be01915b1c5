"""The web pages' pure parts, without a database: settings, CSRF and the admin token, links, the chart."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from shop.app import create_app
from shop.config import REPO_ROOT, Settings, SettingsError
from shop.pages import how_it_works
from shop.pages.charts import throughput_chart
from shop.pages.readings import MinuteBucket
from shop.pages.security import ADMIN_COOKIE, CSRF_COOKIE, admin_proof, is_operator

TOKEN = "CRUNCHY-ARMCHAIR-0123456789"


def test_the_admin_token_and_demo_mode_come_from_the_environment() -> None:
    settings = Settings.from_env({"SHOP_ADMIN_TOKEN": TOKEN, "SHOP_DEMO_MODE": "yes"})

    assert settings.admin_token == TOKEN
    assert settings.demo_mode is True
    assert Settings.from_env({}).admin_token is None
    assert Settings.from_env({}).demo_mode is False
    assert Settings.from_env({"SHOP_DEMO_MODE": "0"}).demo_mode is False


@pytest.mark.parametrize("token", ["short", "has a space in it, sadly", "naïve-token-0123456789"])
def test_a_weak_or_odd_admin_token_is_a_settings_error_that_does_not_echo_it(token: str) -> None:
    with pytest.raises(SettingsError, match="SHOP_ADMIN_TOKEN must be at least 16") as raised:
        Settings.from_env({"SHOP_ADMIN_TOKEN": token})

    assert token not in str(raised.value)


def test_demo_mode_must_be_a_yes_or_a_no() -> None:
    with pytest.raises(SettingsError, match="SHOP_DEMO_MODE='maybe' is neither true nor false"):
        Settings.from_env({"SHOP_DEMO_MODE": "maybe"})


def _client(*, demo_mode: bool = False, admin_token: str | None = None) -> FlaskClient:
    settings = Settings(database_url="sqlite://", demo_mode=demo_mode, admin_token=admin_token)
    return create_app(settings).test_client()


def test_a_post_without_the_csrf_token_is_refused_before_anything_else() -> None:
    client = _client(demo_mode=True)

    response = client.post("/tasks/01a2026e-aa95-7927-a04d-2f26f203e440/retry", data={})

    assert response.status_code == 400
    assert "The form has expired" in response.text


def test_a_post_whose_token_does_not_match_its_cookie_is_refused() -> None:
    client = _client(demo_mode=True)
    client.set_cookie(CSRF_COOKIE, "the-real-one")

    response = client.post("/sign-out", data={"csrf_token": "a-forged-one"})

    assert response.status_code == 400


def test_outside_demo_mode_a_button_needs_the_admin_token() -> None:
    client = _client(admin_token=TOKEN)
    client.set_cookie(CSRF_COOKIE, "tok")

    response = client.post("/tasks/01a2026e-aa95-7927-a04d-2f26f203e440/cancel", data={"csrf_token": "tok"})

    assert response.status_code == 403
    assert "Sign in first" in response.text


def test_without_a_token_or_demo_mode_the_pages_are_read_only() -> None:
    client = _client()
    client.set_cookie(CSRF_COOKIE, "tok")

    response = client.post("/shop/random-orders", data={"csrf_token": "tok"})

    assert response.status_code == 403
    assert "SHOP_ADMIN_TOKEN" in response.text


def test_signing_in_keeps_a_proof_of_the_token_never_the_token() -> None:
    client = _client(admin_token=TOKEN)
    client.set_cookie(CSRF_COOKIE, "tok")

    wrong = client.post("/sign-in", data={"csrf_token": "tok", "token": "WOBBLY-TABLE-0123456789"})
    right = client.post("/sign-in", data={"csrf_token": "tok", "token": TOKEN})

    assert wrong.status_code == 403
    assert right.status_code == 303
    cookie = client.get_cookie(ADMIN_COOKIE)
    assert cookie is not None
    assert cookie.value == admin_proof(TOKEN)
    assert TOKEN not in cookie.value
    assert cookie.http_only and cookie.same_site == "Strict"


def test_the_first_page_with_a_form_hands_out_an_http_only_strict_csrf_cookie() -> None:
    client = _client()

    client.get("/sign-in")  # a page with a form

    cookie = client.get_cookie(CSRF_COOKIE)
    assert cookie is not None and len(cookie.value) >= 32
    assert cookie.http_only and cookie.same_site == "Strict"


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


def test_only_a_browser_holding_the_admin_cookie_is_an_operator_demo_mode_or_not() -> None:
    settings = Settings(database_url="sqlite://", demo_mode=True, admin_token=TOKEN)
    app = create_app(settings)
    signed_in = {"Cookie": f"{ADMIN_COOKIE}={admin_proof(TOKEN)}"}
    forged = {"Cookie": f"{ADMIN_COOKIE}={admin_proof('SHINY-LAMP-0123456789')}"}

    def operator(headers: dict[str, str], settings: Settings = settings) -> bool:
        with app.test_request_context("/", headers=headers):
            return is_operator(settings)

    assert operator(signed_in)
    assert not operator({}) and not operator(forged)
    assert not operator(signed_in, replace(settings, admin_token=None))  # no token configured, no operator


def test_the_chart_draws_a_bar_per_minute_and_a_latency_line_with_no_script() -> None:
    start = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    minutes = [
        MinuteBucket(start + dt.timedelta(minutes=n), succeeded=n * 3, failed=n % 2, p50_pickup_ms=10.0 * n)
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
