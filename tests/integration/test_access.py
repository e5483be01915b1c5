"""Who may do what, through the whole app on a real database: customers, operators, anyone else.

Anyone may read the catalogue and place an order; the 202 carries the order's access token, which opens
that order (read, cancel, delete, its payment and shipment) and no other. Operators present a key, to the
API as a bearer token or once on /sign-in; their page session ends for good when they sign out.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shop.access.api_policy import RULES
from shop.access.operator_keys import OperatorKeys
from shop.web.app import create_app
from shop.web.database import dispose_engine
from tests.support.credentials import OPERATOR_KEY, bearer, web_settings

ORDER = {
    "customer_email": "ada.lovelace@example.com",
    "shipping_country": "DE",
    "lines": [{"sku": "CRUNCHY-ARMCHAIR", "quantity": 1}],
}
WWW_AUTHENTICATE = 'Bearer realm="inverted-shop"'


def place(client: FlaskClient, email: str = "ada.lovelace@example.com", **headers: str) -> dict[str, Any]:
    response = client.post("/api/orders", json={**ORDER, "customer_email": email}, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    placed: dict[str, Any] = response.get_json()
    return placed


def form_token(client: FlaskClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/sign-in").get_data(as_text=True))
    assert found is not None
    return found.group(1)


def sign_in(client: FlaskClient, key: str = OPERATOR_KEY) -> Any:
    return client.post("/sign-in", data={"csrf_token": form_token(client), "key": key})


# -- customers ------------------------------------------------------------------------------------------


def test_anyone_may_read_the_catalogue_and_place_an_order_and_gets_its_token(
    anonymous_client: FlaskClient,
) -> None:
    assert anonymous_client.get("/api/products").status_code == 200

    order = place(anonymous_client)

    assert len(order["access_token"]) >= 40
    assert order["customer_email"] == "ada.lovelace@example.com"  # the customer's own, unmasked


def test_an_orders_token_opens_that_order_its_payment_and_shipment_and_lets_it_be_cancelled(
    anonymous_client: FlaskClient,
) -> None:
    order = place(anonymous_client)
    mine = bearer(order["access_token"])

    read = anonymous_client.get(f"/api/orders/{order['id']}", headers=mine)
    payment = anonymous_client.get(f"/api/orders/{order['id']}/payment", headers=mine)
    shipment = anonymous_client.get(f"/api/orders/{order['id']}/shipment", headers=mine)
    cancelled = anonymous_client.post(f"/api/orders/{order['id']}/cancel", headers=mine)

    assert read.status_code == 200 and read.get_json()["customer_email"] == "ada.lovelace@example.com"
    assert payment.status_code == shipment.status_code == 404  # not requested yet: the order is screening
    assert cancelled.status_code == 200 and cancelled.get_json()["state"] == "cancelled"


def test_anonymous_cancel_or_delete_of_someone_elses_order_is_refused_and_changes_nothing(
    anonymous_client: FlaskClient, client: FlaskClient
) -> None:
    victim = place(anonymous_client, "victim@example.com")
    mallory = place(anonymous_client, "mallory@example.com")
    path = f"/api/orders/{victim['id']}"

    no_credential = anonymous_client.post(f"{path}/cancel")
    other_token = anonymous_client.post(f"{path}/cancel", headers=bearer(mallory["access_token"]))
    delete_with_other_token = anonymous_client.delete(path, headers=bearer(mallory["access_token"]))
    read_with_other_token = anonymous_client.get(path, headers=bearer(mallory["access_token"]))
    forged = anonymous_client.get(path, headers=bearer("not-a-token-at-all"))

    assert no_credential.status_code == 401
    assert no_credential.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
    assert no_credential.get_json()["message"].startswith("This needs the order's access token")
    assert [r.status_code for r in (other_token, delete_with_other_token, read_with_other_token, forged)] == [
        403,
        403,
        403,
        403,
    ]
    assert client.get(path).get_json()["state"] == "screening"


def test_sending_the_order_again_with_its_idempotency_key_gives_back_the_same_token(
    anonymous_client: FlaskClient,
) -> None:
    first = place(anonymous_client, **{"Idempotency-Key": "basket-CRUNCHY-ARMCHAIR-1"})
    again = place(anonymous_client, **{"Idempotency-Key": "basket-CRUNCHY-ARMCHAIR-1"})

    assert again["access_token"] == first["access_token"]


# -- operators ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/orders", "/api/payments", "/api/shipments"])
def test_lists_need_an_operator_key_and_an_order_token_is_not_one(
    anonymous_client: FlaskClient, client: FlaskClient, path: str
) -> None:
    order = place(anonymous_client)

    anonymous = anonymous_client.get(path)
    customer = anonymous_client.get(path, headers=bearer(order["access_token"]))
    operator = client.get(path)

    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
    assert customer.status_code == 403
    assert operator.status_code == 200


def test_an_operator_reads_every_customers_email_whole(
    anonymous_client: FlaskClient, client: FlaskClient
) -> None:
    place(anonymous_client, "grace.hopper@example.com")

    [listed] = client.get("/api/orders").get_json()["orders"]

    assert listed["customer_email"] == "grace.hopper@example.com"


def test_a_scan_with_no_credentials_reads_only_the_catalogue_and_the_docs(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    order = place(anonymous_client)
    known = {"order_id": order["id"], "payment_id": uuid.uuid4(), "shipment_id": uuid.uuid4()}
    known["task_id"] = order["fraud_check_task"]["id"]
    answered: dict[str, int] = {}
    for url_rule in app.url_map.iter_rules():
        if not url_rule.rule.startswith("/api/") or url_rule.rule.startswith("/api/docs/assets/"):
            continue  # Swagger UI's own files are public, like the page that loads them
        path = url_rule.rule
        for name in url_rule.arguments:
            path = re.sub(rf"<[^>]*:?{name}>", str(known[name]), path)
        for method in sorted((url_rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = anonymous_client.open(path, method=method, json=ORDER if method == "POST" else None)
            answered[f"{method} {url_rule.rule}"] = response.status_code

    opened = {call: status for call, status in answered.items() if status != 401}
    assert opened == {
        "GET /api/products": 200,
        "POST /api/orders": 202,
        "GET /api/openapi.json": 200,
        "GET /api/docs": 200,
    }
    assert len(answered) >= 14


def test_without_operator_keys_the_operator_endpoints_say_what_is_missing(database_url: str) -> None:
    app = create_app(web_settings(database_url, operator_keys=OperatorKeys()))
    try:
        response = app.test_client().get("/api/orders", headers=bearer(OPERATOR_KEY))
    finally:
        dispose_engine(app)

    assert response.status_code == 403
    assert "SHOP_OPERATOR_KEYS" in response.get_json()["message"]


# -- demo mode ------------------------------------------------------------------------------------------


def test_in_demo_mode_anyone_may_act_but_sees_other_customers_emails_masked(database_url: str) -> None:
    app = create_app(web_settings(database_url, demo_mode=True))
    try:
        visitor = app.test_client()
        order = place(visitor, "grace.hopper@example.com")
        listed = visitor.get("/api/orders").get_json()["orders"]
        read = visitor.get(f"/api/orders/{order['id']}").get_json()
        own = visitor.get(f"/api/orders/{order['id']}", headers=bearer(order["access_token"])).get_json()
        cancelled = visitor.post(f"/api/orders/{order['id']}/cancel")
        page = visitor.get("/orders").get_data(as_text=True)
    finally:
        dispose_engine(app)

    assert [o["customer_email"] for o in listed] == [read["customer_email"]] == ["g***@example.com"]
    assert own["customer_email"] == "grace.hopper@example.com"
    assert cancelled.status_code == 200
    assert "g***@example.com" in page and "grace.hopper" not in page
    assert "demo mode: anyone may act" in page


# -- the OpenAPI document -------------------------------------------------------------------------------


def test_the_openapi_document_says_which_token_each_operation_takes(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    document = anonymous_client.get("/api/openapi.json").get_json()
    schemes = document["components"]["securitySchemes"]
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "delete", "put", "patch"}
    }

    assert {name: scheme["scheme"] for name, scheme in schemes.items()} == {
        "operatorKey": "bearer",
        "orderToken": "bearer",
    }
    assert operations["POST /api/orders"]["security"] == []
    assert operations["GET /api/products"]["security"] == []
    assert operations["POST /api/orders/{order_id}/cancel"]["security"] == [
        {"orderToken": []},
        {"operatorKey": []},
    ]
    assert operations["GET /api/orders"]["security"] == [{"operatorKey": []}]
    assert {"401", "403"} <= set(operations["GET /api/payments"]["responses"])
    assert all("security" in operation for operation in operations.values())  # none left to chance
    assert {rule.endpoint for rule in app.url_map.iter_rules()} >= set(RULES)  # no rule names a lost route


# -- the pages' operator sessions -----------------------------------------------------------------------


def test_signing_in_starts_a_session_whose_cookie_is_http_only_lax_and_expiring(
    anonymous_client: FlaskClient,
) -> None:
    response = sign_in(anonymous_client)

    assert response.status_code == 303
    cookie = anonymous_client.get_cookie("shop_session")
    assert cookie is not None
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    assert cookie.expires is not None
    assert OPERATOR_KEY not in cookie.value
    assert "signed in" in anonymous_client.get("/").get_data(as_text=True)


def test_over_https_the_session_cookie_is_secure(app: Flask) -> None:
    browser = app.test_client()
    found = re.search(
        r'name="csrf_token" value="([^"]+)"',
        browser.get("/sign-in", base_url="https://shop.example").get_data(as_text=True),
    )
    assert found is not None

    browser.post(
        "/sign-in", data={"csrf_token": found.group(1), "key": OPERATOR_KEY}, base_url="https://shop.example"
    )

    cookie = browser.get_cookie("shop_session", domain="shop.example")
    assert cookie is not None and cookie.secure


def test_a_session_cookie_copied_before_sign_out_is_refused_afterwards(app: Flask) -> None:
    operator = app.test_client()
    sign_in(operator)
    cookie = operator.get_cookie("shop_session")
    assert cookie is not None
    copied = cookie.value
    assert operator.get("/api/orders").status_code == 200  # reading the API from the signed-in browser

    operator.post("/sign-out", data={"csrf_token": form_token(operator)})
    replay = app.test_client()
    replay.set_cookie("shop_session", copied)

    assert replay.get("/api/orders").status_code == 401
    token = form_token(replay)
    refused = replay.post("/shop/random-orders", data={"csrf_token": token})
    assert refused.status_code == 403 and "Sign in first" in refused.get_data(as_text=True)


def test_a_page_session_reads_the_api_but_never_changes_it(app: Flask, anonymous_client: FlaskClient) -> None:
    order = place(anonymous_client)
    operator = app.test_client()
    sign_in(operator)

    assert operator.get(f"/api/orders/{order['id']}").status_code == 200
    assert operator.post(f"/api/orders/{order['id']}/cancel").status_code == 401  # a cookie is not a bearer


def test_removing_a_key_from_the_configuration_ends_the_sessions_it_started(database_url: str) -> None:
    before = create_app(web_settings(database_url))
    try:
        browser = before.test_client()
        sign_in(browser)
        cookie = browser.get_cookie("shop_session")
        assert cookie is not None
    finally:
        dispose_engine(before)
    rotated = web_settings(database_url)
    rotated = dataclasses.replace(
        rotated, operator_keys=OperatorKeys.parse("SHINY-LAMP-the-new-operator-key-0123456789")
    )
    after = create_app(rotated)
    try:
        replay = after.test_client()
        replay.set_cookie("shop_session", cookie.value)
        response = replay.get("/orders")
    finally:
        dispose_engine(after)

    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"


def test_a_wrong_key_is_refused_and_guessing_is_stopped_after_five_wrong_keys_a_minute(
    anonymous_client: FlaskClient,
) -> None:
    attempts = [
        sign_in(anonymous_client, f"FLUFFY-RUG-guess-number-{n:02d}-0123456789").status_code for n in range(6)
    ]

    assert attempts == [403, 403, 403, 403, 403, 429]
    locked_out = sign_in(anonymous_client)
    assert locked_out.status_code == 429  # the right key too, until the minute is over
    assert 1 <= int(locked_out.headers["Retry-After"]) <= 60


def test_a_foreign_site_cannot_use_up_an_operators_sign_in_attempts(anonymous_client: FlaskClient) -> None:
    token = form_token(anonymous_client)
    forged = {"csrf_token": token, "key": "FLUFFY-RUG-guess-from-a-foreign-page-012345"}

    refused = [
        anonymous_client.post("/sign-in", data=forged, headers={"Origin": "https://evil.example"}).status_code
        for _ in range(8)
    ]

    assert refused == [403] * 8
    assert sign_in(anonymous_client).status_code == 303  # none of them counted


def test_signing_in_again_ends_the_browsers_previous_session(app: Flask) -> None:
    browser = app.test_client()
    sign_in(browser)
    first = browser.get_cookie("shop_session")
    assert first is not None

    sign_in(browser)
    replay = app.test_client()
    replay.set_cookie("shop_session", first.value)

    assert replay.get("/api/orders").status_code == 401


def test_outside_demo_mode_the_pages_with_the_shops_data_are_for_operators_only(
    app: Flask, anonymous_client: FlaskClient
) -> None:
    place(anonymous_client, "grace.hopper@example.com")
    operator = app.test_client()
    sign_in(operator)

    for path in ("/", "/orders", "/tasks", "/queue"):
        response = anonymous_client.get(path)
        assert (response.status_code, response.headers.get("Location")) == (303, "/sign-in"), path
    assert anonymous_client.get("/how-it-works").status_code == 200
    style = anonymous_client.get("/pages/static/pages.css")  # the sign-in page needs it too
    style.close()
    assert style.status_code == 200
    assert "grace.hopper@example.com" in operator.get("/orders").get_data(as_text=True)
