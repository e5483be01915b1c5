"""The orders HTTP API through the real app: status codes, headers, field errors, 404s and 409s."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from orders.tasks import registry
from shop.bootstrap import session_info
from shop.web.database import engine_of
from tests.support.credentials import bearer
from tests.support.domain import EventRecorder
from tests.support.inprocess import run_until_idle

ORDER = {
    "customer_email": "ada@example.com",
    "shipping_country": "DE",
    "lines": [{"sku": "CRUNCHY-ARMCHAIR", "quantity": 2}, {"sku": "TINY-TEAPOT", "quantity": 1}],
}


def post_order(client: FlaskClient, body: Any = None, **headers: str) -> Any:
    return client.post("/api/orders", json=ORDER if body is None else body, headers=headers)


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**ORDER, **changes}


def field_errors(response: Any, location: str = "json") -> dict[str, Any]:
    assert response.status_code == 422, response.get_data(as_text=True)
    errors: dict[str, Any] = response.get_json()["errors"][location]
    return errors


def screen(app: Flask) -> None:
    """Run the screening tasks, with events recorded instead of reaching payments."""
    run_until_idle(engine_of(app), registry, session_info=session_info(react=EventRecorder()))


# -- placing ---------------------------------------------------------------------------------------------


def test_placing_and_cancelling_each_take_one_connection_and_one_transaction(
    app: Flask, client: FlaskClient
) -> None:
    engine = engine_of(app)
    post_order(client)  # the first request builds the pool; count from the second
    counted = {"checkout": 0, "commit": 0}

    def count_checkout(*_args: Any) -> None:
        counted["checkout"] += 1

    def count_commit(*_args: Any) -> None:
        counted["commit"] += 1

    event.listen(engine.pool, "checkout", count_checkout)
    event.listen(engine, "commit", count_commit)
    try:
        placed = post_order(client, **{"Idempotency-Key": "basket-of-one-transaction"})
        placing = dict(counted)
        cancelled = client.post(f"/api/orders/{placed.get_json()['id']}/cancel")
    finally:
        event.remove(engine.pool, "checkout", count_checkout)
        event.remove(engine, "commit", count_commit)

    assert placed.status_code == 202 and cancelled.status_code == 200
    assert placing == {"checkout": 1, "commit": 1}  # the answer, task states included, read before commit
    assert counted == {"checkout": 2, "commit": 2}


def test_placing_an_order_is_accepted_with_where_to_watch_it(client: FlaskClient) -> None:
    response = post_order(client)

    assert response.status_code == 202
    order = response.get_json()
    assert response.headers["Location"] == f"/api/orders/{order['id']}"
    assert "Idempotent-Replayed" not in response.headers
    assert order["state"] == "screening"
    assert (order["total_cents"], order["currency"]) == (2 * 24_900 + 1_450, "EUR")
    assert [(line["sku"], line["quantity"], line["unit_price_cents"]) for line in order["lines"]] == [
        ("CRUNCHY-ARMCHAIR", 2, 24_900),
        ("TINY-TEAPOT", 1, 1_450),
    ]
    assert order["fraud_check_task"]["state"] == order["stock_reservation_task"]["state"] == "pending"
    token = order.pop("access_token")
    customer = client.application.test_client()  # no operator key: only the order's token
    assert customer.get(response.headers["Location"], headers=bearer(token)).get_json() == order


def test_the_same_key_and_body_give_back_the_same_order_marked_as_a_replay(client: FlaskClient) -> None:
    first = post_order(client, **{"Idempotency-Key": "basket-CRUNCHY-1"})
    again = post_order(client, **{"Idempotency-Key": "basket-CRUNCHY-1"})

    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_json() == first.get_json()
    assert len(client.get("/api/orders").get_json()["orders"]) == 1


def test_a_key_reused_with_another_body_is_refused_naming_the_header(client: FlaskClient) -> None:
    post_order(client, **{"Idempotency-Key": "basket-CRUNCHY-1"})
    response = post_order(
        client, with_changes(shipping_country="FR"), **{"Idempotency-Key": "basket-CRUNCHY-1"}
    )

    assert list(field_errors(response, "headers")) == ["Idempotency-Key"]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("k" * 256, id="256-characters"),
        pytest.param("basket\x00CRUNCHY", id="nul"),
        pytest.param("basket\x07CRUNCHY", id="control-character"),
        pytest.param("basket CRUNCHY", id="space"),
        pytest.param("basket-CRÜNCHY", id="not-ascii"),
    ],
)
def test_an_idempotency_key_must_be_1_to_255_visible_ascii_characters(client: FlaskClient, key: str) -> None:
    response = post_order(client, **{"Idempotency-Key": key})
    assert list(field_errors(response, "headers")) == ["Idempotency-Key"]


def test_unknown_products_are_a_field_error_on_lines(client: FlaskClient) -> None:
    response = post_order(client, with_changes(lines=[{"sku": "INVISIBLE-SOFA", "quantity": 1}]))

    assert field_errors(response) == {"lines": ["unknown products: INVISIBLE-SOFA"]}


BAD_FIELDS = [
    pytest.param(with_changes(customer_email="not-an-email"), "customer_email", id="email-format"),
    pytest.param(with_changes(customer_email=f"{'a' * 250}@example.com"), "customer_email", id="email-long"),
    pytest.param(with_changes(customer_email=42), "customer_email", id="email-type"),
    pytest.param(with_changes(customer_email="ada\x00@example.com"), "customer_email", id="email-nul"),
    pytest.param(with_changes(customer_email="ada@\ud800.example"), "customer_email", id="email-surrogate"),
    pytest.param(with_changes(customer_email='"ada\x01"@example.com'), "customer_email", id="email-control"),
    pytest.param(with_changes(shipping_country="de"), "shipping_country", id="country-lower-case"),
    pytest.param(with_changes(shipping_country="DEU"), "shipping_country", id="country-three-letters"),
    pytest.param(with_changes(shipping_country="D1"), "shipping_country", id="country-digit"),
    pytest.param(with_changes(shipping_country="DE\n"), "shipping_country", id="country-newline"),
    pytest.param(with_changes(shipping_country="D\x00"), "shipping_country", id="country-nul"),
    pytest.param(with_changes(shipping_country="D\udc00"), "shipping_country", id="country-surrogate"),
    pytest.param(with_changes(lines=[]), "lines", id="no-lines"),
    pytest.param(
        with_changes(lines=[{"sku": f"SKU-{n}", "quantity": 1} for n in range(21)]), "lines", id="21-lines"
    ),
    pytest.param(with_changes(lines="CRUNCHY-ARMCHAIR"), "lines", id="lines-not-a-list"),
    pytest.param(
        with_changes(lines=[{"sku": "TINY-TEAPOT", "quantity": 1}, {"sku": "TINY-TEAPOT", "quantity": 2}]),
        "lines",
        id="duplicate-sku",
    ),
    pytest.param(with_changes(lines=[{"sku": "TINY-TEAPOT", "quantity": 0}]), "lines", id="quantity-0"),
    pytest.param(with_changes(lines=[{"sku": "TINY-TEAPOT", "quantity": 101}]), "lines", id="quantity-101"),
    pytest.param(with_changes(lines=[{"sku": "TINY-TEAPOT", "quantity": "2"}]), "lines", id="quantity-text"),
    pytest.param(with_changes(lines=[{"sku": "TINY-TEAPOT", "quantity": 1.5}]), "lines", id="quantity-float"),
    pytest.param(with_changes(lines=[{"sku": "TINY-TEAPOT"}]), "lines", id="quantity-missing"),
    pytest.param(with_changes(lines=[{"sku": "", "quantity": 1}]), "lines", id="sku-empty"),
    pytest.param(with_changes(lines=[{"sku": "X" * 41, "quantity": 1}]), "lines", id="sku-long"),
    pytest.param(with_changes(lines=[{"sku": "TINY-TEAPOT\x00", "quantity": 1}]), "lines", id="sku-nul"),
    pytest.param(with_changes(lines=[{"sku": "TINY-\ud800", "quantity": 1}]), "lines", id="sku-surrogate"),
    pytest.param(with_changes(lines=[{"sku": "tiny-teapot", "quantity": 1}]), "lines", id="sku-lower-case"),
    pytest.param(with_changes(lines=[{"sku": "TINY TEAPOT", "quantity": 1}]), "lines", id="sku-space"),
    pytest.param(
        with_changes(lines=[{"sku": "TINY-TEAPOT", "quantity": 1, "unit_price_cents": 1}]),
        "lines",
        id="price-in-a-line",
    ),
    pytest.param(with_changes(total_cents=1), "total_cents", id="unknown-field"),
    pytest.param({k: v for k, v in ORDER.items() if k != "customer_email"}, "customer_email", id="no-email"),
    pytest.param(
        {k: v for k, v in ORDER.items() if k != "shipping_country"}, "shipping_country", id="no-country"
    ),
    pytest.param({k: v for k, v in ORDER.items() if k != "lines"}, "lines", id="no-lines-field"),
]


@pytest.mark.parametrize(("body", "field"), BAD_FIELDS)
def test_every_bad_field_is_named_with_a_message(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = post_order(client, body)

    errors = field_errors(response)
    assert list(errors) == [field]
    assert errors[field]  # a message (or, for a line, the messages per line and field)


def test_a_sku_outside_the_sku_alphabet_is_a_422_naming_the_line_field_and_the_format(
    client: FlaskClient,
) -> None:
    response = post_order(client, with_changes(lines=[{"sku": "CRUNCHY\x00ARMCHAIR", "quantity": 1}]))

    assert field_errors(response) == {
        "lines": {
            "0": {"sku": ["Must be 1 to 40 upper-case letters, digits or hyphens, like CRUNCHY-ARMCHAIR."]}
        }
    }


def test_a_body_that_is_not_an_object_is_refused(client: FlaskClient) -> None:
    assert post_order(client, ["CRUNCHY-ARMCHAIR"]).status_code == 422
    assert client.post("/api/orders", data="{not json", content_type="application/json").status_code == 400


# -- reading ---------------------------------------------------------------------------------------------


def test_after_screening_the_order_points_at_no_task(app: Flask, client: FlaskClient) -> None:
    location = post_order(client).headers["Location"]
    screen(app)

    order = client.get(location).get_json()
    assert order["state"] == "awaiting_payment"
    assert (order["fraud_check_task"], order["stock_reservation_task"]) == (None, None)


@pytest.mark.parametrize("path", ["/api/orders/not-a-uuid", f"/api/orders/{uuid.uuid4()}"])
def test_an_unknown_or_malformed_order_id_is_404(client: FlaskClient, path: str) -> None:
    for response in (client.get(path), client.post(f"{path}/cancel"), client.delete(path)):
        assert response.status_code == 404
        assert response.is_json or path.endswith("not-a-uuid")


def test_being_processed_lists_the_orders_still_screening(app: Flask, client: FlaskClient) -> None:
    screened = post_order(client).get_json()["id"]
    screen(app)
    waiting = post_order(client).get_json()["id"]

    processing = client.get("/api/orders?being_processed=true").get_json()["orders"]
    everything = client.get("/api/orders").get_json()["orders"]
    awaiting = client.get("/api/orders?state=awaiting_payment").get_json()["orders"]

    assert [order["id"] for order in processing] == [waiting]
    assert processing[0]["fraud_check_task"]["state"] == "pending"
    assert [order["id"] for order in everything] == [waiting, screened]
    assert [order["id"] for order in awaiting] == [screened]


def test_orders_are_paged_newest_first(client: FlaskClient) -> None:
    ids = [post_order(client).get_json()["id"] for _ in range(3)]

    first = client.get("/api/orders?limit=2").get_json()
    rest = client.get(f"/api/orders?limit=2&before={first['next_before']}").get_json()

    assert [o["id"] for o in first["orders"] + rest["orders"]] == ids[::-1]
    assert first["next_before"] == ids[1]
    assert rest["next_before"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=lost", "state"),
        ("being_processed=maybe", "being_processed"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("before=yesterday", "before"),
        ("colour=red", "colour"),
    ],
)
def test_every_bad_query_argument_is_named(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/orders?{query}")
    assert list(field_errors(response, "query")) == [field]


def test_the_catalogue_shows_what_is_still_available(app: Flask, client: FlaskClient) -> None:
    post_order(client)
    screen(app)

    products = {product["sku"]: product for product in client.get("/api/products").get_json()}
    assert products["CRUNCHY-ARMCHAIR"] == {
        "sku": "CRUNCHY-ARMCHAIR",
        "name": "Crunchy armchair",
        "unit_price_cents": 24_900,
        "currency": "EUR",
        "on_hand": 1_000_000,
        "reserved": 2,
        "available": 999_998,
    }
    assert len(products) == 6


# -- cancel and delete -----------------------------------------------------------------------------------


def test_cancelling_answers_the_cancelled_order_and_again_changes_nothing(client: FlaskClient) -> None:
    location = post_order(client).headers["Location"]

    first = client.post(f"{location}/cancel")
    again = client.post(f"{location}/cancel")

    assert first.status_code == again.status_code == 200
    assert first.get_json()["state"] == "cancelled"
    assert (first.get_json()["fraud_check_task"], first.get_json()["stock_reservation_task"]) == (None, None)
    assert again.get_json() == first.get_json()


def test_a_rejected_order_cannot_be_cancelled_409(app: Flask, client: FlaskClient) -> None:
    location = post_order(client, with_changes(customer_email="mallory@fraud.example")).headers["Location"]
    screen(app)

    response = client.post(f"{location}/cancel")
    assert response.status_code == 409
    assert "rejected; it cannot become cancelled" in response.get_json()["message"]


def test_deleting_an_order_is_204_and_then_it_is_gone(client: FlaskClient) -> None:
    location = post_order(client).headers["Location"]

    response = client.delete(location)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert client.get(location).status_code == 404


def test_a_cancelled_order_cannot_be_deleted_409_and_its_key_still_replays_it(client: FlaskClient) -> None:
    key = {"Idempotency-Key": "basket-CRUNCHY-CANCELLED"}
    placed = post_order(client, **key)
    location = placed.headers["Location"]
    assert client.post(f"{location}/cancel").status_code == 200

    response = client.delete(location)
    assert response.status_code == 409
    assert "cannot be deleted" in response.get_json()["message"]
    again = post_order(client, **key)  # a retried POST gets the old order, never a new one to charge
    assert (again.status_code, again.headers["Location"]) == (202, location)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_an_order_awaiting_payment_cannot_be_deleted_409(app: Flask, client: FlaskClient) -> None:
    location = post_order(client).headers["Location"]
    screen(app)

    response = client.delete(location)
    assert response.status_code == 409
    assert client.get(location).status_code == 200
