"""Cancelling stops the tasks through the IDs on the order; deleting leaves them to find nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine

from orders import services
from orders.events import OrderCancelled, OrderReadyForPayment
from orders.models import InvalidTransition, OrderState
from orders.services import OrderNotFound
from queue_core import TaskState, state_of
from tests.integration.orders.support import (
    hold_back,
    let_go,
    load,
    order_exists,
    place,
    stock_of,
    work,
)
from tests.support.domain import EventRecorder, recording_session
from tests.support.inprocess import error_rows, task_row


def cancel(engine: Engine, recorder: EventRecorder, order_id: uuid.UUID) -> None:
    with recording_session(engine, recorder) as session:
        services.cancel_order(session, order_id)


def delete(engine: Engine, recorder: EventRecorder, order_id: uuid.UUID) -> None:
    with recording_session(engine, recorder) as session:
        services.delete_order(session, order_id)


def task_state(engine: Engine, task_id: uuid.UUID | None) -> TaskState:
    assert task_id is not None
    with engine.connect() as connection:
        return state_of(connection, task_id)


def paid_order(engine: Engine, recorder: EventRecorder, lines: list[tuple[str, int]]) -> uuid.UUID:
    order_id = place(engine, recorder, lines=lines)
    work(engine, recorder)
    with recording_session(engine, recorder) as session:
        services.mark_paid(session, order_id)
    return order_id


# -- cancel ----------------------------------------------------------------------------------------------


def test_cancelling_a_screening_order_cancels_both_pending_tasks_through_its_ids(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder)
    placed = load(engine, order_id)

    cancel(engine, recorder, order_id)

    order = load(engine, order_id)
    assert (order.order_state, order.failure_reason) == (OrderState.CANCELLED, "cancelled by the customer")
    assert (order.fraud_check_task_id, order.stock_reservation_task_id) == (None, None)
    assert task_state(engine, placed.fraud_check_task_id) is TaskState.CANCELLED
    assert task_state(engine, placed.stock_reservation_task_id) is TaskState.CANCELLED
    assert recorder.events == [OrderCancelled(order_id)]

    work(engine, recorder)  # nothing left to run
    assert load(engine, order_id).order_state is OrderState.CANCELLED
    assert recorder.of_type(OrderReadyForPayment) == []


def test_cancelling_after_stock_was_reserved_gives_it_back_and_stops_the_other_step(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, lines=[("SHINY-LAMP", 4)])
    placed = load(engine, order_id)
    hold_back(engine, placed.fraud_check_task_id)  # type: ignore[arg-type]
    work(engine, recorder)
    assert stock_of(engine, "SHINY-LAMP") == (1_000_000, 4)

    cancel(engine, recorder, order_id)

    assert stock_of(engine, "SHINY-LAMP") == (1_000_000, 0)
    assert task_state(engine, placed.fraud_check_task_id) is TaskState.CANCELLED
    assert task_state(engine, placed.stock_reservation_task_id) is TaskState.SUCCEEDED


def test_cancelling_a_paid_order_gives_its_stock_back_and_is_announced(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = paid_order(engine, recorder, [("FLUFFY-RUG", 2)])

    cancel(engine, recorder, order_id)

    assert load(engine, order_id).order_state is OrderState.CANCELLED
    assert stock_of(engine, "FLUFFY-RUG") == (1_000_000, 0)
    assert recorder.events[-1] == OrderCancelled(order_id)


def test_cancelling_twice_changes_nothing_the_second_time(engine: Engine, recorder: EventRecorder) -> None:
    order_id = place(engine, recorder)
    cancel(engine, recorder, order_id)
    cancel(engine, recorder, order_id)

    assert recorder.events == [OrderCancelled(order_id)]


def test_a_shipped_order_cannot_be_cancelled(engine: Engine, recorder: EventRecorder) -> None:
    order_id = paid_order(engine, recorder, [("TINY-TEAPOT", 1)])
    with recording_session(engine, recorder) as session:
        services.mark_shipped(session, order_id)

    with pytest.raises(InvalidTransition, match="shipped; it cannot become cancelled"):
        cancel(engine, recorder, order_id)
    assert load(engine, order_id).order_state is OrderState.SHIPPED
    assert recorder.of_type(OrderCancelled) == []


def test_a_rejected_order_cannot_be_cancelled(engine: Engine, recorder: EventRecorder) -> None:
    order_id = place(engine, recorder, customer_email="mallory@fraud.example")
    work(engine, recorder)

    with pytest.raises(InvalidTransition):
        cancel(engine, recorder, order_id)


def test_cancelling_an_unknown_order_says_so(engine: Engine, recorder: EventRecorder) -> None:
    with pytest.raises(OrderNotFound):
        cancel(engine, recorder, uuid.uuid4())


# -- delete ----------------------------------------------------------------------------------------------


def test_an_order_deleted_before_its_tasks_ran_leaves_them_discarded_after_one_attempt(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder)
    placed = load(engine, order_id)

    delete(engine, recorder, order_id)
    assert not order_exists(engine, order_id)
    work(engine, recorder)

    for task_id in (placed.fraud_check_task_id, placed.stock_reservation_task_id):
        assert task_id is not None
        row = task_row(engine, task_id)
        assert (row["state"], row["attempts"]) == ("discarded", 1)  # no retry storm
        [error] = error_rows(engine, task_id)
        assert error["error_type"] == "queue_core.Discard"
        assert "no order points at task" in error["message"]
    assert recorder.events == []
    assert stock_of(engine, "CRUNCHY-ARMCHAIR") == (1_000_000, 0)


def test_deleting_a_screening_order_gives_back_the_stock_already_reserved(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, lines=[("HEAVY-BOOKSHELF", 3)])
    placed = load(engine, order_id)
    hold_back(engine, placed.fraud_check_task_id)  # type: ignore[arg-type]
    work(engine, recorder)
    assert stock_of(engine, "HEAVY-BOOKSHELF") == (1_000_000, 3)

    delete(engine, recorder, order_id)
    assert stock_of(engine, "HEAVY-BOOKSHELF") == (1_000_000, 0)

    let_go(engine, placed.fraud_check_task_id)  # type: ignore[arg-type]
    work(engine, recorder)
    row = task_row(engine, placed.fraud_check_task_id)  # type: ignore[arg-type]
    assert (row["state"], row["attempts"]) == ("discarded", 1)


def test_a_rejected_order_never_reached_payment_and_can_be_deleted(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, customer_email="mallory@fraud.example")
    work(engine, recorder)
    assert load(engine, order_id).order_state is OrderState.REJECTED

    delete(engine, recorder, order_id)
    assert not order_exists(engine, order_id)


# A cancelled order is kept even when cancelled while screening: its state does not say whether a payment
# was asked for, and keeping its key is what stops a retried POST from placing (and charging) a new order.
@pytest.mark.parametrize("how", ["cancelled awaiting payment", "payment failed", "cancelled screening"])
def test_a_cancelled_or_payment_failed_order_cannot_be_deleted_and_keeps_its_key(
    engine: Engine, recorder: EventRecorder, how: str
) -> None:
    order_id = place(engine, recorder, idempotency_key="basket-HEAVY-BOOKSHELF-7")
    if how != "cancelled screening":
        work(engine, recorder)  # awaiting payment: the payments context has been asked to charge
    if how == "payment failed":
        with recording_session(engine, recorder) as session:
            services.mark_payment_failed(session, order_id, "card declined")
    else:
        cancel(engine, recorder, order_id)

    with pytest.raises(InvalidTransition, match="it cannot be deleted"):
        delete(engine, recorder, order_id)
    assert order_exists(engine, order_id)
    assert load(engine, order_id).idempotency_key == "basket-HEAVY-BOOKSHELF-7"


def test_an_order_awaiting_payment_cannot_be_deleted(engine: Engine, recorder: EventRecorder) -> None:
    order_id = place(engine, recorder)
    work(engine, recorder)

    with pytest.raises(InvalidTransition, match="awaiting_payment; it cannot be deleted"):
        delete(engine, recorder, order_id)
    assert order_exists(engine, order_id)
