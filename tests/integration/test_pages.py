"""The web pages against real databases (SQLite and PostgreSQL): forms, filters, the explorer, the dashboard.

The app runs in demo mode (anyone may act); the browser tier (tests/browser) drives the same pages in
Chromium against real processes. Here every form is posted as a browser would, CSRF cookie included.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import gateway_simulator
import queue_core
from payments.gateway_client import GatewayClient
from queue_core import RunningTask, TaskRegistry
from shop import bootstrap
from shop.tasks import build_registry
from shop.web.app import create_app
from shop.web.database import dispose_engine, engine_of
from tests.support.credentials import OPERATOR_KEY, bearer, web_settings
from tests.support.gateway_process import running_gateway
from tests.support.gateway_requests import GATEWAY_API_KEY
from tests.support.inprocess import fast_settings, run_until_idle, running_worker, wait_for

UNREACHABLE_GATEWAY = "http://127.0.0.1:9"
FINAL_STATES = {"shipped", "rejected", "payment_failed", "cancelled"}
PAGES = ["/", "/orders", "/tasks", "/queue", "/how-it-works", "/sign-in", "/source/orders/tasks.py"]


@pytest.fixture
def pages_app(database_url: str) -> Iterator[Flask]:
    app = create_app(web_settings(database_url, demo_mode=True, gateway_url=UNREACHABLE_GATEWAY))
    app.config["TESTING"] = True
    yield app
    dispose_engine(app)


@pytest.fixture
def browser(pages_app: Flask) -> FlaskClient:
    """A client that has visited the shop once, so it holds its CSRF cookie like a browser."""
    client = pages_app.test_client()
    assert client.get("/").status_code == 200
    return client


def csrf(client: FlaskClient) -> str:
    """The CSRF token of this browser's session, read off a page's form as a browser would."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").get_data(as_text=True))
    assert found is not None
    return found.group(1)


def order_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    form = {
        "csrf_token": csrf(client),
        "customer_email": "ada@example.com",
        "shipping_country": "DE",
        "line-0-sku": "CRUNCHY-ARMCHAIR",
        "line-0-quantity": "1",
        "idempotency_key": str(uuid.uuid4()),
    }
    form.update(fields)
    return form


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-error-for="([^"]+)">([^<]*)<', html))


def placed_order_id(response: Any) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    found = re.search(r"placed=([0-9a-f-]{36})", response.headers["Location"])
    assert found is not None
    return found.group(1)


def test_an_order_placed_with_the_form_shows_both_screening_tasks_linked_and_coloured(
    browser: FlaskClient,
) -> None:
    order_id = placed_order_id(browser.post("/shop/orders", data=order_form(browser)))

    page = browser.get("/orders?show=being_processed").get_data(as_text=True)

    row = page[page.index(f'data-order-id="{order_id}"') :].split("</tr>")[0]
    links = re.findall(r'href="/tasks/([0-9a-f-]{36})"[^>]*data-task-state="(\w+)"', row)
    assert [state for _, state in links] == ["pending", "pending"]
    assert 'data-column="fraud check"' in row and "state-pending" in row
    order = browser.get(f"/api/orders/{order_id}").get_json()
    assert {task_id for task_id, _ in links} == {
        order["fraud_check_task"]["id"],
        order["stock_reservation_task"]["id"],
    }


def test_sending_the_same_form_twice_places_one_order(browser: FlaskClient) -> None:
    form = order_form(browser)

    first = placed_order_id(browser.post("/shop/orders", data=form))
    second = placed_order_id(browser.post("/shop/orders", data=form))

    assert first == second


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"customer_email": "not-an-email"}, {"customer_email": "Not a valid email address."}),
        ({"customer_email": "ada\x00@example.com"}, {"customer_email": "Must not contain control"}),
        ({"shipping_country": "germany"}, {"shipping_country": "Must be two upper-case letters"}),
        ({"line-0-quantity": "0"}, {"line-0-quantity": "Must be between 1 and 100."}),
        ({"line-0-quantity": "²"}, {"line-0-quantity": "Not a valid integer."}),
        ({"line-0-quantity": "many"}, {"line-0-quantity": "Not a valid integer."}),
        ({"line-0-sku": "crunchy armchair"}, {"line-0-sku": "Must be 1 to 40 upper-case letters"}),
        ({"line-0-sku": "NO-SUCH-SOFA"}, {"lines": "unknown products: NO-SUCH-SOFA"}),
        ({"line-0-sku": "", "line-0-quantity": ""}, {"lines": "Must have between 1 and 20 lines."}),
        (
            {"line-1-sku": "CRUNCHY-ARMCHAIR", "line-1-quantity": "2"},
            {"lines": "Each product may appear once; repeated: CRUNCHY-ARMCHAIR."},
        ),
    ],
)
def test_bad_form_input_is_shown_field_by_field_and_places_nothing(
    browser: FlaskClient, fields: dict[str, str], expected: dict[str, str]
) -> None:
    response = browser.post("/shop/orders", data=order_form(browser, **fields))

    assert response.status_code == 422
    shown = field_errors(response.get_data(as_text=True))
    for name, message in expected.items():
        assert shown.get(name, "").startswith(message), shown
    assert browser.get("/api/orders").get_json()["orders"] == []


def test_fifty_random_orders_are_placed_with_one_button(browser: FlaskClient) -> None:
    response = browser.post("/shop/random-orders", data={"csrf_token": csrf(browser)})

    assert response.status_code == 303
    assert len(browser.get("/api/orders?limit=100").get_json()["orders"]) == 50
    assert "50 random orders placed" in browser.get(response.headers["Location"]).get_data(as_text=True)


@pytest.fixture
def gateway(tmp_path: Path) -> GatewayClient:
    """The gateway simulator in-process: well behaved, so every ordinary order ships."""
    app = gateway_simulator.create_app(f"sqlite:///{tmp_path / 'gateway.sqlite3'}", api_key=GATEWAY_API_KEY)
    return GatewayClient(
        "http://gateway.test", api_key=GATEWAY_API_KEY, transport=httpx.WSGITransport(app=app)
    )


def test_a_whole_run_shows_on_the_orders_page_the_explorer_and_the_dashboard(
    pages_app: Flask, browser: FlaskClient, gateway: GatewayClient
) -> None:
    ordinary = [
        placed_order_id(
            browser.post("/shop/orders", data=order_form(browser, customer_email=f"c{n}@example.com"))
        )
        for n in range(3)
    ]
    fraud = placed_order_id(
        browser.post("/shop/orders", data=order_form(browser, customer_email="mallory@fraud.example"))
    )
    session_info = bootstrap.session_info(gateway=gateway)

    def settled() -> bool:
        states = [browser.get(f"/api/orders/{o}").get_json()["state"] for o in [*ordinary, fraud]]
        return all(state in FINAL_STATES for state in states)

    with running_worker(engine_of(pages_app), build_registry(), fast_settings(concurrency=4), session_info):
        wait_for(settled, what="every order settled", timeout=60)
        dashboard = browser.get("/queue").get_data(as_text=True)

    assert 'data-worker="' in dashboard  # the live worker, with its heartbeat
    assert "<svg" in dashboard and 'class="bar ok"' in dashboard
    assert 'id="no-dangling"' in dashboard
    failed = browser.get("/orders?show=failed").get_data(as_text=True)
    assert f'data-order-id="{fraud}"' in failed and "email domain fraud.example is blocked" in failed
    assert all(f'data-order-id="{o}"' not in failed for o in ordinary)
    assert 'data-order-id="' not in browser.get("/orders?show=being_processed").get_data(as_text=True)
    assert 'data-order-id="' not in browser.get("/orders?show=waiting_for_shipping").get_data(as_text=True)
    every = browser.get("/orders").get_data(as_text=True)
    batch_links = set(re.findall(r'data-column="batch"><a [^>]*href="/tasks/([0-9a-f-]{36})"', every))
    assert batch_links
    shown_orders: set[str] = set()
    for batch in batch_links:
        task_page = browser.get(f"/tasks/{batch}").get_data(as_text=True)
        assert "shipping.send_manifest" in task_page
        shown_orders |= set(
            re.findall(r'data-referrer="shipments.shipping_task_id" data-order-id="([^"]+)"', task_page)
        )
    assert shown_orders == set(ordinary)


def test_a_pending_task_is_cancelled_then_requeued_from_its_page(browser: FlaskClient) -> None:
    order_id = placed_order_id(browser.post("/shop/orders", data=order_form(browser)))
    task_id = browser.get(f"/api/orders/{order_id}").get_json()["fraud_check_task"]["id"]
    page = browser.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'id="cancel"' in page and 'id="retry"' not in page
    assert 'data-referrer="orders.fraud_check_task_id"' in page  # the order points at it

    cancelled = browser.post(f"/tasks/{task_id}/cancel", data={"csrf_token": csrf(browser)})
    page = browser.get(cancelled.headers["Location"]).get_data(as_text=True)
    assert 'data-task-state="cancelled"' in page and 'id="retry"' in page

    requeued = browser.post(f"/tasks/{task_id}/retry", data={"csrf_token": csrf(browser)})
    page = browser.get(requeued.headers["Location"]).get_data(as_text=True)
    assert 'data-task-state="pending"' in page and "Re-queued" in page
    again = browser.post(f"/tasks/{task_id}/retry", data={"csrf_token": csrf(browser)})
    assert "did=not_retryable" in again.headers["Location"]


def test_a_task_that_does_not_exist_is_a_404_page(browser: FlaskClient) -> None:
    missing = browser.get(f"/tasks/{queue_core.uuid7()}")
    malformed = browser.get("/tasks/not-a-task")

    assert missing.status_code == 404 and "No task" in missing.get_data(as_text=True)
    assert malformed.status_code == 404
    assert (
        browser.post(f"/tasks/{queue_core.uuid7()}/retry", data={"csrf_token": csrf(browser)}).status_code
        == 404
    )


@pytest.mark.parametrize("query", ["?show=nonsense", "?state=zombie", "?id=not-a-uuid", "?show=%00"])
def test_odd_query_strings_are_explained_never_a_500(browser: FlaskClient, query: str) -> None:
    for path in ("/orders", "/tasks"):
        assert browser.get(path + query).status_code == 200


def test_every_page_loads_only_files_served_by_the_app(browser: FlaskClient) -> None:
    for path in PAGES:
        response = browser.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        foreign = re.findall(r'(?:src|href|action)="((?:https?:)?//[^"]*)"', html)
        assert foreign == [], (path, foreign)
        for asset in re.findall(r'(?:src|href)="(/pages/static/[^"]+)"', html):
            served = browser.get(asset)
            assert served.status_code == 200
            served.close()


def test_outside_demo_mode_a_visitor_is_sent_to_sign_in_and_cannot_press_a_button(database_url: str) -> None:
    app = create_app(web_settings(database_url))
    try:
        client = app.test_client()
        shown = client.get("/")
        sign_in_page = client.get("/sign-in").get_data(as_text=True)
        refused = client.post("/shop/orders", data=order_form(client))
    finally:
        dispose_engine(app)

    assert (shown.status_code, shown.headers["Location"]) == (303, "/sign-in")
    assert "read-only" in sign_in_page
    assert refused.status_code == 403 and "Sign in first" in refused.get_data(as_text=True)


def test_outside_demo_mode_the_shop_page_neither_asks_the_gateway_nor_sets_its_failure_injection(
    database_url: str,
) -> None:
    app = create_app(web_settings(database_url, gateway_url=UNREACHABLE_GATEWAY))
    try:
        operator = app.test_client()
        signed_in = operator.post("/sign-in", data={"csrf_token": csrf(operator), "key": OPERATOR_KEY})
        assert signed_in.status_code == 303
        page = operator.get("/")
        knobs = {"latency_ms": "0", "transient_error_rate": "0", "timeout_rate": "0", "decline_rate": "0"}
        applied = operator.post("/shop/failure-injection", data={"csrf_token": csrf(operator), **knobs})
    finally:
        dispose_engine(app)

    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "available in demo mode only" in html
    assert UNREACHABLE_GATEWAY not in html and "cannot connect" not in html  # never asked, never named
    assert applied.status_code == 403 and "available in demo mode only" in applied.get_data(as_text=True)


class SofaTooWideError(Exception):
    """What the failing handler below raises: a message a visitor may read."""


def dead_task_with_a_traceback(engine: Engine) -> uuid.UUID:
    """A task whose only attempt raised, so the queue keeps its error type, message and traceback."""
    registry = TaskRegistry()

    @registry.task("deliver-sofa")
    def deliver_sofa(task: RunningTask, session: Session) -> None:
        raise SofaTooWideError("the sofa does not fit through the door")

    with Session(engine) as session, session.begin():
        task_id = queue_core.enqueue(session, "deliver-sofa", max_attempts=1)
    run_until_idle(engine, registry)
    return task_id


def test_a_visitor_sees_a_failed_attempts_error_but_not_its_traceback_even_in_demo_mode(
    pages_app: Flask, browser: FlaskClient
) -> None:
    task_id = dead_task_with_a_traceback(engine_of(pages_app))

    page = browser.get(f"/tasks/{task_id}").get_data(as_text=True)

    assert "SofaTooWideError" in page and "the sofa does not fit through the door" in page
    assert "Traceback" not in page and 'class="traceback"' not in page
    assert __file__ not in page  # no absolute path from the worker's machine


def test_a_signed_in_operator_sees_the_full_traceback(database_url: str) -> None:
    app = create_app(web_settings(database_url, demo_mode=True))
    try:
        task_id = dead_task_with_a_traceback(engine_of(app))
        operator = app.test_client()
        signed_in = operator.post("/sign-in", data={"csrf_token": csrf(operator), "key": OPERATOR_KEY})
        assert signed_in.status_code == 303

        page = operator.get(f"/tasks/{task_id}").get_data(as_text=True)
    finally:
        dispose_engine(app)

    assert 'class="traceback"' in page and "Traceback (most recent call last)" in page
    assert "in deliver_sofa" in page and "SofaTooWideError" in page


@pytest.mark.slow
def test_the_failure_injection_form_changes_the_running_gateway(database_url: str, tmp_path: Path) -> None:
    with running_gateway(f"sqlite:///{tmp_path / 'gateway.sqlite3'}", tmp_path / "logs") as gateway:
        settings = web_settings(
            database_url,
            demo_mode=True,
            gateway_url=gateway.base_url.replace("//", "//clerk:s3cret@"),  # ignored: the API key is sent
            gateway_api_key=gateway.api_key,
        )
        app = create_app(settings)
        try:
            client = app.test_client()
            page = client.get("/").get_data(as_text=True)
            assert 'value="0.0"' in page
            assert f"<code>{gateway.base_url}</code>" in page and "s3cret" not in page
            form = {
                "csrf_token": csrf(client),
                "latency_ms": "25",
                "transient_error_rate": "0.5",
                "timeout_rate": "0",
                "decline_rate": "0.25",
            }
            bad = client.post("/shop/failure-injection", data={**form, "decline_rate": "1.5"})
            good = client.post("/shop/failure-injection", data=form)
        finally:
            dispose_engine(app)
        now = httpx.get(f"{gateway.base_url}/v1/failure-injection", headers=bearer(gateway.api_key)).json()

    assert bad.status_code == 422 and field_errors(bad.get_data(as_text=True)) == {
        "decline_rate": "Must be 0 to 1."
    }
    assert good.status_code == 303
    assert now["latency_ms"] == 25 and now["transient_error_rate"] == 0.5 and now["decline_rate"] == 0.25


@pytest.mark.parametrize("action", ["show", "apply"])
def test_the_shop_page_never_shows_the_credentials_in_the_gateway_url(database_url: str, action: str) -> None:
    gateway_url = UNREACHABLE_GATEWAY.replace("//", "//clerk:s3cret@")
    app = create_app(web_settings(database_url, demo_mode=True, gateway_url=gateway_url))
    try:
        client = app.test_client()
        response = client.get("/")
        if action == "apply":
            knobs = {"latency_ms": "0", "transient_error_rate": "0", "timeout_rate": "0", "decline_rate": "0"}
            response = client.post("/shop/failure-injection", data={"csrf_token": csrf(client), **knobs})
    finally:
        dispose_engine(app)

    html = response.get_data(as_text=True)
    assert response.status_code == (200 if action == "show" else 502)
    assert f"<code>{UNREACHABLE_GATEWAY}</code>" in html
    assert "cannot connect; is it running?" in html
    assert "s3cret" not in html and "clerk" not in html


@pytest.mark.slow
def test_a_gateway_refusing_the_shops_key_is_explained_without_showing_a_secret(
    database_url: str, tmp_path: Path
) -> None:
    stranger = "WOBBLY-TABLE-not-the-gateway-key-0123456789"
    with running_gateway(f"sqlite:///{tmp_path / 'gateway.sqlite3'}", tmp_path / "logs") as gateway:
        gateway_url = gateway.base_url.replace("//", "//clerk:s3cret@")
        settings = web_settings(
            database_url, gateway_url=gateway_url, gateway_api_key=stranger, demo_mode=True
        )
        app = create_app(settings)
        try:
            html = app.test_client().get("/").get_data(as_text=True)
        finally:
            dispose_engine(app)

    assert "it refused the shop&#39;s GATEWAY_API_KEY" in html
    assert "s3cret" not in html and stranger not in html and gateway.api_key not in html
