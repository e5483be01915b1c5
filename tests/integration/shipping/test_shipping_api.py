"""The shipping API shows each shipment with its batch's task, each batch with its shipments, and answers
every bad request in JSON (never a 500).

Shipments are made the way the application makes them (the services, a real worker) on the same database
the app serves.
"""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, delete

from queue_core import TaskRegistry
from queue_core._models import task_table
from shipping import services
from shop.bootstrap import session_info
from tests.integration.shipping.conftest import dispatch, load, ready_shipments
from tests.support.domain import EventRecorder, recording_session
from tests.support.inprocess import run_until_idle


def test_a_ready_shipment_shows_no_batch(
    engine: Engine, recorder: EventRecorder, client: FlaskClient
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)
    [shipment] = load(engine, [shipment_id])

    response = client.get(f"/api/shipments/{shipment_id}")

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == str(shipment_id)
    assert body["order_id"] == str(shipment.order_id)
    assert (body["state"], body["destination_country"]) == ("ready", "NL")
    assert body["batch_task"] is None
    assert (body["manifest_number"], body["tracking_number"], body["dispatched_at"]) == (None, None, None)
    assert body["created_at"].endswith("+00:00")


def test_a_batched_shipment_shows_its_pending_manifest_task(
    engine: Engine, recorder: EventRecorder, client: FlaskClient
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)
    task_id = dispatch(engine, recorder)
    [shipment] = load(engine, [shipment_id])

    body = client.get(f"/api/orders/{shipment.order_id}/shipment").get_json()

    assert body["id"] == str(shipment_id)
    assert body["state"] == "in_batch"
    assert body["batch_task"] == {"id": str(task_id), "state": "pending"}


def test_a_dispatched_shipment_shows_its_manifest_tracking_number_and_sent_batch(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry, client: FlaskClient
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)
    task_id = dispatch(engine, recorder)
    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))
    [shipment] = load(engine, [shipment_id])

    body = client.get(f"/api/shipments/{shipment_id}").get_json()

    assert body["state"] == "dispatched"
    assert body["batch_task"] == {"id": str(task_id), "state": "succeeded"}
    assert body["manifest_number"] == shipment.manifest_number
    assert body["tracking_number"] == shipment.tracking_number
    assert body["dispatched_at"].endswith("+00:00")


def test_a_batch_shows_its_task_and_every_shipment_pointing_at_it(
    engine: Engine, recorder: EventRecorder, manual_registry: TaskRegistry, client: FlaskClient
) -> None:
    armchair, table, lamp = ready_shipments(engine, recorder, 3)
    task_id = dispatch(engine, recorder)
    [withdrawn] = load(engine, [table])
    with recording_session(engine, recorder) as session:
        services.cancel_shipment_for_order(session, withdrawn.order_id)

    pending = client.get(f"/api/shipping/batches/{task_id}").get_json()
    run_until_idle(engine, manual_registry, session_info=session_info(react=recorder))
    sent = client.get(f"/api/shipping/batches/{task_id}").get_json()

    assert pending["task"] == {"id": str(task_id), "state": "pending"}
    assert [s["id"] for s in pending["shipments"]] == [str(armchair), str(lamp)]
    assert {s["state"] for s in pending["shipments"]} == {"in_batch"}
    assert sent["task"] == {"id": str(task_id), "state": "succeeded"}
    assert {s["state"] for s in sent["shipments"]} == {"dispatched"}
    assert len({s["manifest_number"] for s in sent["shipments"]}) == 1


def test_a_batch_whose_shipments_were_all_withdrawn_is_shown_empty(
    engine: Engine, recorder: EventRecorder, client: FlaskClient
) -> None:
    [shipment_id] = ready_shipments(engine, recorder, 1)
    task_id = dispatch(engine, recorder)
    [shipment] = load(engine, [shipment_id])
    with recording_session(engine, recorder) as session:
        services.cancel_shipment_for_order(session, shipment.order_id)

    body = client.get(f"/api/shipping/batches/{task_id}").get_json()

    assert body == {"task": {"id": str(task_id), "state": "pending"}, "shipments": []}


def test_a_batch_whose_task_is_gone_is_shown_with_a_null_state(
    engine: Engine, recorder: EventRecorder, client: FlaskClient
) -> None:
    ready_shipments(engine, recorder, 2)
    task_id = dispatch(engine, recorder)
    with engine.begin() as connection:
        connection.execute(delete(task_table).where(task_table.c.id == task_id))

    body = client.get(f"/api/shipping/batches/{task_id}").get_json()

    assert body["task"] == {"id": str(task_id), "state": None}
    assert len(body["shipments"]) == 2
    assert {s["batch_task"]["state"] for s in body["shipments"]} == {None}


def test_the_list_pages_newest_first_and_filters_by_state(
    engine: Engine, recorder: EventRecorder, client: FlaskClient
) -> None:
    oldest, middle = ready_shipments(engine, recorder, 2)
    dispatch(engine, recorder)
    [newest] = ready_shipments(engine, recorder, 1)

    first_page = client.get("/api/shipments?limit=2").get_json()
    second_page = client.get(f"/api/shipments?limit=2&before={first_page['next_before']}").get_json()
    batched = client.get("/api/shipments?state=in_batch").get_json()

    assert [s["id"] for s in first_page["shipments"]] == [str(newest), str(middle)]
    assert first_page["next_before"] == str(middle)
    assert [s["id"] for s in second_page["shipments"]] == [str(oldest)]
    assert second_page["next_before"] is None
    assert [s["id"] for s in batched["shipments"]] == [str(middle), str(oldest)]
    assert client.get("/api/shipments?state=cancelled").get_json() == {"shipments": [], "next_before": None}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/shipments/{uuid.uuid4()}",
        f"/api/orders/{uuid.uuid4()}/shipment",
        f"/api/shipping/batches/{uuid.uuid4()}",
        "/api/shipments/CRUNCHY-ARMCHAIR",
        "/api/orders/not-an-order/shipment",
        "/api/shipping/batches/12345",
    ],
)
def test_unknown_or_malformed_ids_are_answered_404_in_json(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["code"] == 404


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=lost_in_the_post", "state"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=lots", "limit"),
        ("before=yesterday", "before"),
        ("colour=teal", "colour"),
    ],
)
def test_bad_list_parameters_are_refused_with_field_messages(
    client: FlaskClient, query: str, field: str
) -> None:
    response = client.get(f"/api/shipments?{query}")

    assert response.status_code == 422
    assert field in response.get_json()["errors"]["query"]


def test_shipments_cannot_be_created_or_changed_over_http(client: FlaskClient) -> None:
    assert client.post("/api/shipments", json={"order_id": str(uuid.uuid4())}).status_code == 405
    assert client.delete(f"/api/shipping/batches/{uuid.uuid4()}").status_code == 405
