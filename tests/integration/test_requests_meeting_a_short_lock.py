"""A request that meets another transaction's short lock is run again and answered, not bounced.

No transaction in the shop holds a row lock across a remote call, so the locks a request can meet last
milliseconds (a handler recording a gateway's answer). ``request_session.transaction`` rolls a refused
request back and runs it again; only a lock held past its patience is answered 409 with Retry-After. The
locks here are held by the test itself: the payment row a cancellation takes with NOWAIT, and the order
row it waits for (the web app's lock_timeout bounds that wait).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from orders.models import Order
from orders.tasks import registry as screening
from payments.models import Payment, PaymentState
from request_session import LOCK_WAIT_SECONDS, MAX_PAUSE_SECONDS, PATIENCE_SECONDS
from shop.bootstrap import session_info
from shop.web.database import engine_of
from tests.support.inprocess import run_until_idle

pytestmark = pytest.mark.postgres_only  # NOWAIT is PostgreSQL's; SQLite has one writer at a time

ORDER = {
    "customer_email": "grace@example.com",
    "shipping_country": "NL",
    "lines": [{"sku": "TINY-TEAPOT", "quantity": 1}],
}


def order_awaiting_its_charge(app: Flask, client: FlaskClient) -> uuid.UUID:
    """An order through screening, its payment pending with a charge task that no worker runs."""
    order_id = uuid.UUID(client.post("/api/orders", json=ORDER).get_json()["id"])
    run_until_idle(engine_of(app), screening, session_info=session_info())
    return order_id


@contextmanager
def locked_for(engine: Engine, rows: Select[Any], seconds: float) -> Iterator[None]:
    """Hold the row lock of ``rows`` (one row) for ``seconds`` from another session."""
    locked = threading.Event()

    def hold() -> None:
        with Session(engine) as session, session.begin():
            session.scalars(rows.with_for_update()).one()
            locked.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10), "the test could not take the lock"
        yield
    finally:
        holder.join()


def payment_locked_for(engine: Engine, order_id: uuid.UUID, seconds: float) -> AbstractContextManager[None]:
    """The order's payment locked, as a handler recording the gateway's answer holds it (briefly)."""
    return locked_for(engine, select(Payment).where(Payment.order_id == order_id), seconds)


def order_locked_for(engine: Engine, order_id: uuid.UUID, seconds: float) -> AbstractContextManager[None]:
    """The order locked, as a stalled transaction (a frozen worker) would hold it."""
    return locked_for(engine, select(Order).where(Order.id == order_id), seconds)


def timed_cancel(client: FlaskClient, order_id: uuid.UUID) -> tuple[TestResponse, float]:
    """Cancel the order; the answer, and how long it took to come."""
    started = time.monotonic()
    response = client.post(f"/api/orders/{order_id}/cancel")
    return response, time.monotonic() - started


def payment_state(engine: Engine, order_id: uuid.UUID) -> PaymentState:
    with Session(engine) as session:
        return session.scalars(select(Payment).where(Payment.order_id == order_id)).one().payment_state


def test_a_cancellation_meeting_a_lock_held_for_a_moment_is_run_again_and_answered(
    app: Flask, client: FlaskClient
) -> None:
    order_id = order_awaiting_its_charge(app, client)

    with payment_locked_for(engine_of(app), order_id, seconds=0.3):
        response, waited = timed_cancel(client, order_id)

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["state"] == "cancelled"
    assert 0.2 < waited < PATIENCE_SECONDS  # refused at once, then run again until the lock went
    assert payment_state(engine_of(app), order_id) is PaymentState.CANCELLED


def test_a_lock_held_past_the_patience_is_answered_409_asking_to_retry_and_changes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    order_id = order_awaiting_its_charge(app, client)

    with payment_locked_for(engine_of(app), order_id, seconds=PATIENCE_SECONDS + 1.5):
        response, waited = timed_cancel(client, order_id)

    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    # Tried until another attempt would no longer fit, and answered within the patience.
    assert PATIENCE_SECONDS - LOCK_WAIT_SECONDS - MAX_PAUSE_SECONDS <= waited <= PATIENCE_SECONDS + 0.2
    assert client.get(f"/api/orders/{order_id}").get_json()["state"] == "awaiting_payment"
    assert payment_state(engine_of(app), order_id) is PaymentState.PENDING
    # Sent again once the lock is gone, it is answered.
    assert client.post(f"/api/orders/{order_id}/cancel").status_code == 200


def test_a_request_waiting_on_a_lock_that_stays_held_is_answered_after_its_patience_not_when_it_goes(
    app: Flask, client: FlaskClient
) -> None:
    # The cancellation waits for the order's row lock (it is the first lock it takes); the web app's
    # lock_timeout ends each wait, and the refusal is answered like any collision that outlasts the patience.
    order_id = order_awaiting_its_charge(app, client)

    # Held past the patience, but not past the web's idle_in_transaction limit, which would end the holder.
    with order_locked_for(engine_of(app), order_id, seconds=PATIENCE_SECONDS + 1.5):
        response, waited = timed_cancel(client, order_id)

    assert response.status_code == 409
    assert response.headers["Retry-After"] == "1"
    assert PATIENCE_SECONDS - LOCK_WAIT_SECONDS - MAX_PAUSE_SECONDS <= waited <= PATIENCE_SECONDS + 0.2
    assert client.get(f"/api/orders/{order_id}").get_json()["state"] == "awaiting_payment"
