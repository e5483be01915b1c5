"""Placing an order: priced from the catalogue, two argument-free tasks pointed at, idempotent by key."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from orders import services
from orders.models import Order, OrderState
from orders.services import IdempotencyKeyReused, UnknownProducts
from queue_core import state_of
from queue_core._models import task_table
from queue_core.testing import assert_enqueued
from shop.bootstrap import session_info
from tests.integration.orders.support import ALL_ORDER_TASKS, load, place, tasks_named
from tests.support.domain import EventRecorder, recording_session
from tests.support.inprocess import DEADLINE_SECONDS, wait_for


def count_orders(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Order)) or 0


def test_placing_an_order_points_it_at_its_two_screening_tasks(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.SCREENING
    with Session(engine) as session:
        [fraud_task] = assert_enqueued(session, "orders.screen_for_fraud")
        [stock_task] = assert_enqueued(session, "orders.reserve_stock")
    assert (order.fraud_check_task_id, order.stock_reservation_task_id) == (fraud_task.id, stock_task.id)
    for task in (fraud_task, stock_task):
        assert (task.state, task.queue, task.args) == ("pending", "orders", None)
    assert recorder.events == []  # nothing is announced until screening ends


def test_prices_come_from_the_catalogue_never_from_the_client(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, lines=[("CRUNCHY-ARMCHAIR", 2), ("TINY-TEAPOT", 3)])

    order = load(engine, order_id)
    assert [(line.line_number, line.sku, line.quantity, line.unit_price_cents) for line in order.lines] == [
        (1, "CRUNCHY-ARMCHAIR", 2, 24_900),
        (2, "TINY-TEAPOT", 3, 1_450),
    ]
    assert (order.total_cents, order.currency) == (2 * 24_900 + 3 * 1_450, "EUR")


def test_unknown_products_are_named_and_nothing_is_stored(engine: Engine, recorder: EventRecorder) -> None:
    with pytest.raises(UnknownProducts) as raised:
        place(engine, recorder, lines=[("INVISIBLE-SOFA", 1), ("CRUNCHY-ARMCHAIR", 1), ("GHOST-CHAIR", 2)])

    assert raised.value.skus == ["GHOST-CHAIR", "INVISIBLE-SOFA"]
    assert count_orders(engine) == 0
    assert tasks_named(engine, *ALL_ORDER_TASKS) == []


def test_the_same_key_and_request_give_back_the_first_order(engine: Engine, recorder: EventRecorder) -> None:
    first = place(engine, recorder, idempotency_key="order-CRUNCHY-ARMCHAIR-1")
    with recording_session(engine, recorder) as session:
        again = services.place_order(
            session,
            customer_email="ADA@Example.com",  # the email's case is not part of the request's identity
            shipping_country="DE",
            lines=[("CRUNCHY-ARMCHAIR", 1)],
            idempotency_key="order-CRUNCHY-ARMCHAIR-1",
        )
        assert (again.order.id, again.replayed) == (first, True)

    assert count_orders(engine) == 1
    assert len(tasks_named(engine, *ALL_ORDER_TASKS)) == 2


def test_a_key_reused_for_a_different_request_is_refused(engine: Engine, recorder: EventRecorder) -> None:
    place(engine, recorder, idempotency_key="order-CRUNCHY-ARMCHAIR-1")

    with pytest.raises(IdempotencyKeyReused):
        place(engine, recorder, lines=[("CRUNCHY-ARMCHAIR", 2)], idempotency_key="order-CRUNCHY-ARMCHAIR-1")
    assert count_orders(engine) == 1
    assert len(tasks_named(engine, *ALL_ORDER_TASKS)) == 2  # the refused order's tasks went with it


def test_orders_without_a_key_are_never_merged(engine: Engine, recorder: EventRecorder) -> None:
    assert place(engine, recorder) != place(engine, recorder)
    assert count_orders(engine) == 2
    assert len(tasks_named(engine, *ALL_ORDER_TASKS)) == 4


@pytest.mark.postgres_only
def test_two_concurrent_requests_with_one_key_make_one_order(engine: Engine, recorder: EventRecorder) -> None:
    """The second INSERT waits on the unique index for the first transaction, then reads its order."""
    key = "checkout-click-twice"
    first_placed = threading.Event()
    results: dict[str, tuple[uuid.UUID, bool]] = {}  # request -> (order ID, replayed)
    failures: list[BaseException] = []

    def first_request() -> None:
        try:
            with recording_session(engine, recorder) as session:
                placed = services.place_order(
                    session, customer_email="ada@example.com", shipping_country="DE",
                    lines=[("CRUNCHY-ARMCHAIR", 1)], idempotency_key=key,
                )  # fmt: skip
                results["first"] = (placed.order.id, placed.replayed)
                first_placed.set()
                # Hold the transaction open until the second request is blocked on the unique index.
                wait_for(second_is_waiting_for_a_lock, what="the second INSERT waiting on the first")
        except BaseException as exc:
            failures.append(exc)
            first_placed.set()

    def second_request() -> None:
        try:
            first_placed.wait(DEADLINE_SECONDS)
            with recording_session(engine, recorder) as session:
                placed = services.place_order(
                    session, customer_email="ada@example.com", shipping_country="DE",
                    lines=[("CRUNCHY-ARMCHAIR", 1)], idempotency_key=key,
                )  # fmt: skip
                results["second"] = (placed.order.id, placed.replayed)
        except BaseException as exc:
            failures.append(exc)

    def second_is_waiting_for_a_lock() -> bool:
        with engine.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query ILIKE 'INSERT INTO orders%'"
                )
            ).scalar_one()
        return bool(waiting)

    threads = [threading.Thread(target=first_request), threading.Thread(target=second_request)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS * 2)
    assert not failures, failures

    order_id = results["first"][0]
    assert results == {"first": (order_id, False), "second": (order_id, True)}
    assert count_orders(engine) == 1
    tasks = tasks_named(engine, *ALL_ORDER_TASKS)
    assert len(tasks) == 2  # the loser's tasks vanished with its savepoint
    order = load(engine, order_id)
    assert {order.fraud_check_task_id, order.stock_reservation_task_id} == {task["id"] for task in tasks}


def test_the_tasks_exist_exactly_when_the_order_does(engine: Engine, recorder: EventRecorder) -> None:
    """A placement that rolls back leaves neither an order nor a task behind."""
    with Session(engine, info=session_info(react=recorder)) as session:
        placed = services.place_order(
            session, customer_email="ada@example.com", shipping_country="DE", lines=[("SHINY-LAMP", 1)]
        )
        fraud_task = placed.order.fraud_check_task_id
        assert fraud_task is not None
        session.rollback()

    assert count_orders(engine) == 0
    with engine.connect() as connection:
        assert (
            connection.execute(select(task_table.c.id).where(task_table.c.id == fraud_task)).first() is None
        )
        with pytest.raises(LookupError):
            state_of(connection, fraud_task)
