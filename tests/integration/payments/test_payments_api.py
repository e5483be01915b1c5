"""The payments API shows each payment with the tasks working on it, and answers every bad request in JSON.

Payments are made the way the application makes them (the services, a real worker, the simulator) on
the same database the app serves.
"""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete

from queue_core._models import task_table
from tests.integration.payments.conftest import PaymentsDesk


def test_a_pending_payment_shows_its_charge_task_and_its_key(desk: PaymentsDesk, client: FlaskClient) -> None:
    requested = desk.request(amount_cents=12_999, currency="GBP")

    response = client.get(f"/api/payments/{requested.id}")

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == str(requested.id)
    assert body["order_id"] == str(requested.order_id)
    assert (body["state"], body["amount_cents"], body["currency"]) == ("pending", 12_999, "GBP")
    assert body["idempotency_key"] == f"payment-{requested.id}"
    assert body["being_processed"] is True
    assert body["charge_task"] == {"id": str(requested.processing_task_id), "state": "pending"}
    assert body["refund_task"] is None
    assert body["gateway_charge_id"] is None
    assert body["created_at"].endswith("+00:00")


def test_a_captured_payment_shows_the_gateways_charge_and_no_open_task(
    desk: PaymentsDesk, client: FlaskClient
) -> None:
    requested = desk.request()
    desk.work()

    body = client.get(f"/api/orders/{requested.order_id}/payment").get_json()

    assert body["id"] == str(requested.id)
    assert body["state"] == "captured"
    assert body["being_processed"] is False
    assert (body["charge_task"], body["refund_task"]) == (None, None)
    [charge] = desk.gateway.ledger(requested.id)["charges"]
    assert body["gateway_charge_id"] == charge["id"]
    assert body["captured_at"] is not None


def test_a_cancelled_payment_shows_the_task_voiding_its_key(desk: PaymentsDesk, client: FlaskClient) -> None:
    requested = desk.request()
    cancelled = desk.cancel(requested.order_id)
    assert cancelled is not None

    body = client.get(f"/api/payments/{requested.id}").get_json()

    assert body["state"] == "cancelled"
    assert body["charge_task"] is None
    assert body["refund_task"] == {"id": str(cancelled.refund_task_id), "state": "pending"}
    assert body["being_processed"] is True


def test_a_task_pruned_from_under_a_payment_shows_a_null_state(
    desk: PaymentsDesk, client: FlaskClient
) -> None:
    requested = desk.request()
    with desk.engine.begin() as connection:
        connection.execute(delete(task_table).where(task_table.c.id == requested.processing_task_id))

    body = client.get(f"/api/payments/{requested.id}").get_json()

    assert body["charge_task"] == {"id": str(requested.processing_task_id), "state": None}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/payments/{uuid.uuid4()}",
        f"/api/orders/{uuid.uuid4()}/payment",
        "/api/payments/CRUNCHY-ARMCHAIR",
        "/api/orders/not-a-uuid/payment",
    ],
)
def test_an_unknown_or_malformed_id_is_answered_404_in_json(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["code"] == 404


def test_the_list_filters_by_state_and_by_being_processed(desk: PaymentsDesk, client: FlaskClient) -> None:
    captured = desk.request()
    desk.work()
    charging = desk.request()
    cancelled = desk.request()
    desk.cancel(cancelled.order_id)

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/payments{query}")
        assert response.status_code == 200, response.get_json()
        return [payment["id"] for payment in response.get_json()["payments"]]

    assert ids("") == newest_first(cancelled.id, charging.id, captured.id)
    assert ids("?being_processed=true") == newest_first(cancelled.id, charging.id)
    assert ids("?state=captured") == [str(captured.id)]
    assert ids("?state=pending&being_processed=true") == [str(charging.id)]
    assert ids("?state=refunded") == []


def test_the_list_pages_with_next_before_until_it_is_null(desk: PaymentsDesk, client: FlaskClient) -> None:
    made = [desk.request(amount_cents=100 + n).id for n in range(5)]

    seen: list[str] = []
    query = "?limit=2"
    pages = 0
    while True:
        body = client.get(f"/api/payments{query}").get_json()
        seen.extend(payment["id"] for payment in body["payments"])
        pages += 1
        if body["next_before"] is None:
            break
        query = f"?limit=2&before={body['next_before']}"

    assert seen == newest_first(*made)
    assert pages == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=lost_in_the_post", "state"),
        ("being_processed=perhaps", "being_processed"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("before=CRUNCHY-ARMCHAIR", "before"),
        ("colour=teal", "colour"),
    ],
)
def test_a_bad_list_query_is_answered_422_naming_the_field(
    client: FlaskClient, query: str, field: str
) -> None:
    response = client.get(f"/api/payments?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["query"]


def newest_first(*payment_ids: uuid.UUID) -> list[str]:
    """UUIDv7 order: creation order to the millisecond (IDs made in the same millisecond order at random)."""
    return [str(payment_id) for payment_id in sorted(payment_ids, reverse=True)]
