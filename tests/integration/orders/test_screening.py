"""The two screening handlers: they read the order fresh, join exactly once, and reject cleanly."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from orders.events import OrderReadyForPayment
from orders.models import Order, OrderState
from orders.tasks import registry, reserve_stock, screen_for_fraud
from queue_core import RunningTask, TaskRegistry, TaskState, state_of
from shop.bootstrap import session_info
from tests.integration.orders.support import (
    ALL_ORDER_TASKS,
    hold_back,
    let_go,
    load,
    place,
    set_stock,
    stock_of,
    tasks_named,
    work,
)
from tests.support.domain import EventRecorder
from tests.support.inprocess import error_rows, fast_settings, run_until_idle, task_row


def task_state(engine: Engine, task_id: uuid.UUID) -> TaskState:
    with engine.connect() as connection:
        return state_of(connection, task_id)


def test_an_order_that_passes_both_steps_awaits_payment_and_is_announced_once(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, lines=[("CRUNCHY-ARMCHAIR", 2), ("TINY-TEAPOT", 1)])
    before = load(engine, order_id)

    work(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.AWAITING_PAYMENT
    assert (order.fraud_check_task_id, order.stock_reservation_task_id) == (None, None)
    assert order.fraud_cleared_at is not None and order.stock_reserved_at is not None
    assert recorder.events == [OrderReadyForPayment(order_id, 2 * 24_900 + 1_450, "EUR")]
    assert stock_of(engine, "CRUNCHY-ARMCHAIR") == (1_000_000, 2)
    assert stock_of(engine, "TINY-TEAPOT") == (1_000_000, 1)
    for task_id in (before.fraud_check_task_id, before.stock_reservation_task_id):
        assert task_id is not None
        row = task_row(engine, task_id)
        assert (row["state"], row["attempts"]) == ("succeeded", 1)


def test_a_handler_reads_the_order_as_it_is_when_it_runs_not_as_it_was_placed(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, customer_email="ada@example.com")
    with Session(engine) as session, session.begin():  # after the tasks were enqueued, before they run
        order = session.get(Order, order_id)
        assert order is not None
        order.customer_email = "mallory@fraud.example"

    work(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.REJECTED
    assert order.failure_reason == "fraud screening: email domain fraud.example is blocked"


def test_a_fraud_verdict_rejects_the_order_and_cancels_the_stock_task_through_its_id(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, customer_email="mallory@fraud.example")
    placed = load(engine, order_id)
    assert placed.stock_reservation_task_id is not None
    hold_back(engine, placed.stock_reservation_task_id)  # fraud screening runs first

    work(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.REJECTED
    assert order.failure_reason == "fraud screening: email domain fraud.example is blocked"
    assert (order.fraud_check_task_id, order.stock_reservation_task_id) == (None, None)
    assert task_state(engine, placed.stock_reservation_task_id) is TaskState.CANCELLED
    assert recorder.of_type(OrderReadyForPayment) == []
    assert stock_of(engine, "CRUNCHY-ARMCHAIR") == (1_000_000, 0)


def test_a_fraud_verdict_after_the_stock_was_reserved_gives_the_stock_back(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, customer_email="mallory@fraud.example", lines=[("SHINY-LAMP", 3)])
    placed = load(engine, order_id)
    assert placed.fraud_check_task_id is not None and placed.stock_reservation_task_id is not None
    hold_back(engine, placed.fraud_check_task_id)
    work(engine, recorder)
    assert stock_of(engine, "SHINY-LAMP") == (1_000_000, 3)  # reserved while fraud screening waited

    let_go(engine, placed.fraud_check_task_id)
    work(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.REJECTED
    assert order.stock_reserved_at is None
    assert stock_of(engine, "SHINY-LAMP") == (1_000_000, 0)
    assert task_state(engine, placed.stock_reservation_task_id) is TaskState.SUCCEEDED
    assert recorder.of_type(OrderReadyForPayment) == []


@pytest.mark.parametrize(
    ("email", "country", "lines", "reason"),
    [
        ("ada@example.com", "KP", [("TINY-TEAPOT", 1)], "fraud screening: shipping to KP is embargoed"),
        (
            "ada@example.com",
            "DE",
            [("CRUNCHY-ARMCHAIR", 50)],
            "fraud screening: total 1245000 cents is over the limit of 1000000",
        ),
    ],
    ids=["embargoed", "too-large"],
)
def test_each_fraud_rule_rejects_with_its_reason(
    engine: Engine,
    recorder: EventRecorder,
    email: str,
    country: str,
    lines: list[tuple[str, int]],
    reason: str,
) -> None:
    order_id = place(engine, recorder, customer_email=email, shipping_country=country, lines=lines)
    work(engine, recorder)

    order = load(engine, order_id)
    assert (order.order_state, order.failure_reason) == (OrderState.REJECTED, reason)
    assert [sku_stock[1] for sku_stock in (stock_of(engine, sku) for sku, _ in lines)] == [0] * len(lines)


def test_an_order_short_of_one_product_reserves_nothing_and_is_rejected(
    engine: Engine, recorder: EventRecorder
) -> None:
    set_stock(engine, "WOBBLY-TABLE", on_hand=1)
    # CRUNCHY-ARMCHAIR comes first in SKU order and is reserved, then rolled back with the savepoint.
    order_id = place(engine, recorder, lines=[("WOBBLY-TABLE", 2), ("CRUNCHY-ARMCHAIR", 1)])
    placed = load(engine, order_id)
    assert placed.fraud_check_task_id is not None
    hold_back(engine, placed.fraud_check_task_id)

    work(engine, recorder)

    order = load(engine, order_id)
    assert (order.order_state, order.failure_reason) == (OrderState.REJECTED, "out of stock: WOBBLY-TABLE")
    assert stock_of(engine, "WOBBLY-TABLE") == (1, 0)
    assert stock_of(engine, "CRUNCHY-ARMCHAIR") == (1_000_000, 0)
    assert task_state(engine, placed.fraud_check_task_id) is TaskState.CANCELLED
    assert recorder.events == []


def test_the_last_unit_goes_to_one_order_only(engine: Engine, recorder: EventRecorder) -> None:
    set_stock(engine, "HEAVY-BOOKSHELF", on_hand=1)
    first = place(engine, recorder, lines=[("HEAVY-BOOKSHELF", 1)])
    second = place(engine, recorder, lines=[("HEAVY-BOOKSHELF", 1)])

    work(engine, recorder)

    states = sorted(load(engine, order_id).order_state.value for order_id in (first, second))
    assert states == ["awaiting_payment", "rejected"]
    assert stock_of(engine, "HEAVY-BOOKSHELF") == (1, 1)
    assert len(recorder.of_type(OrderReadyForPayment)) == 1


# -- the join under real concurrency ---------------------------------------------------------------------


def barrier_registry(engine: Engine, met: list[uuid.UUID]) -> TaskRegistry:
    """The orders tasks, each made to wait for its sibling before calling the real handler.

    Both handlers of an order pass the barrier together and then race for the order's row lock, which is
    the moment the join must survive.
    """
    barriers: dict[uuid.UUID, threading.Barrier] = {}
    guard = threading.Lock()

    def order_of(task_id: uuid.UUID) -> uuid.UUID:
        with Session(engine) as session:
            found = session.scalar(
                select(Order.id).where(
                    (Order.fraud_check_task_id == task_id) | (Order.stock_reservation_task_id == task_id)
                )
            )
        assert found is not None
        return found

    def together(real: RunningTask) -> None:
        order_id = order_of(real.id)
        with guard:
            barrier = barriers.setdefault(order_id, threading.Barrier(2))
        if barrier.wait(timeout=10) == 0:
            met.append(order_id)

    synced = TaskRegistry()
    for definition in (screen_for_fraud, reserve_stock):

        def handler(task: RunningTask, session: Session, real=definition.handler) -> None:
            together(task)
            real(task, session)

        synced.task(definition.name, queue="orders", retry=definition.options.retry)(handler)
    for reference in registry.references:
        synced.track_reference(reference.column, repair=reference.repair)
    return synced


@pytest.mark.postgres_only
def test_both_handlers_finishing_at_the_same_instant_join_exactly_once(
    engine: Engine, recorder: EventRecorder
) -> None:
    orders = [place(engine, recorder, lines=[("FLUFFY-RUG", 1)]) for _ in range(20)]
    met: list[uuid.UUID] = []

    # Two runner threads, one task per commit: the two tasks of an order run side by side.
    run_until_idle(
        engine,
        barrier_registry(engine, met),
        fast_settings(concurrency=2, prefetch=2, group_size=1),
        session_info=session_info(react=recorder),
    )

    assert sorted(met) == sorted(orders)  # every pair really met at the barrier
    ready = recorder.of_type(OrderReadyForPayment)
    assert sorted(event.order_id for event in ready) == sorted(orders)  # exactly one each
    assert {load(engine, order_id).order_state for order_id in orders} == {OrderState.AWAITING_PAYMENT}
    assert stock_of(engine, "FLUFFY-RUG") == (1_000_000, 20)
    for task in tasks_named(engine, *ALL_ORDER_TASKS):
        assert (task["state"], task["attempts"]) == ("succeeded", 1)
        assert error_rows(engine, task["id"]) == []
