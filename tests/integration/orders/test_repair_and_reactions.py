"""Repairing dangling pointers, the reactions other contexts trigger, and the queries the API answers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

import queue_core
from orders import services
from orders.models import InvalidTransition, OrderState
from orders.services import OrderNotFound
from orders.tasks import registry
from queue_core import TaskState, find_dangling, repair_dangling, state_of, uuid7
from tests.integration.orders.support import change_order, hold_back, load, place, stock_of, work
from tests.support.domain import EventRecorder, recording_session


def repair(engine: Engine, recorder: EventRecorder) -> None:
    with recording_session(engine, recorder) as session:
        assert repair_dangling(session, registry.references) == []  # every column has a repair function


# -- repair ----------------------------------------------------------------------------------------------


def test_an_order_whose_stock_task_was_cancelled_by_hand_is_rejected_by_repair(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, lines=[("SHINY-LAMP", 1)])
    placed = load(engine, order_id)
    assert placed.fraud_check_task_id is not None and placed.stock_reservation_task_id is not None
    with Session(engine) as session, session.begin():  # an operator cancels the task, not the order
        queue_core.cancel(session, placed.stock_reservation_task_id)
    with engine.connect() as connection:
        [dangling] = find_dangling(connection, registry.references)
    assert (dangling.column, dangling.task_state) == ("stock_reservation_task_id", "cancelled")

    repair(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.REJECTED
    assert order.failure_reason == (
        f"stock reservation did not complete: task {placed.stock_reservation_task_id} is cancelled"
    )
    assert (order.fraud_check_task_id, order.stock_reservation_task_id) == (None, None)
    with engine.connect() as connection:
        assert state_of(connection, placed.fraud_check_task_id) is TaskState.CANCELLED  # the sibling
        assert find_dangling(connection, registry.references) == []
    assert recorder.events == []


def test_an_order_whose_fraud_task_vanished_is_rejected_and_its_stock_released(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, lines=[("FLUFFY-RUG", 2)])
    placed = load(engine, order_id)
    hold_back(engine, placed.fraud_check_task_id)  # type: ignore[arg-type]
    work(engine, recorder)  # the stock is reserved
    missing = uuid7()
    change_order(engine, order_id, fraud_check_task_id=missing)  # points at a task that does not exist

    repair(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.REJECTED
    assert order.failure_reason == f"fraud screening did not complete: task {missing} is missing"
    assert stock_of(engine, "FLUFFY-RUG") == (1_000_000, 0)


def test_an_order_that_moved_on_only_loses_its_stale_pointer(engine: Engine, recorder: EventRecorder) -> None:
    order_id = place(engine, recorder)
    work(engine, recorder)
    change_order(engine, order_id, stock_reservation_task_id=uuid7())

    repair(engine, recorder)

    order = load(engine, order_id)
    assert order.order_state is OrderState.AWAITING_PAYMENT
    assert order.stock_reservation_task_id is None
    assert stock_of(engine, "CRUNCHY-ARMCHAIR") == (1_000_000, 1)


def test_a_dead_screening_task_is_repaired_like_a_cancelled_one(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder)
    placed = load(engine, order_id)
    with engine.begin() as connection:  # as if every attempt had failed
        connection.execute(
            queue_core._models.task_table.update()
            .where(queue_core._models.task_table.c.id == placed.fraud_check_task_id)
            .values(state="dead")
        )

    repair(engine, recorder)

    order = load(engine, order_id)
    assert (
        order.failure_reason == f"fraud screening did not complete: task {placed.fraud_check_task_id} is dead"
    )


def test_a_repair_leaves_alone_an_order_whose_task_an_operator_requeued_since_it_was_found(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = place(engine, recorder, lines=[("SHINY-LAMP", 1)])
    placed = load(engine, order_id)
    assert placed.fraud_check_task_id is not None
    with Session(engine) as session, session.begin():  # an operator cancels the task, not the order
        queue_core.cancel(session, placed.fraud_check_task_id)
    with engine.connect() as connection:
        found = find_dangling(connection, registry.references)  # the repair's search...
    assert [(ref.column, ref.task_state) for ref in found] == [("fraud_check_task_id", "cancelled")]
    with Session(engine) as session, session.begin():  # ...then the operator thinks again and re-queues it
        assert queue_core.requeue(session, placed.fraud_check_task_id) is TaskState.PENDING

    with recording_session(engine, recorder) as session:
        repair_dangling(session, registry.references, found)  # ...then the repair locks the row

    order = load(engine, order_id)
    assert (order.order_state, order.fraud_check_task_id) == (
        OrderState.SCREENING,
        placed.fraud_check_task_id,
    )
    work(engine, recorder)  # the re-queued task screens the order, which passes
    assert load(engine, order_id).order_state is OrderState.AWAITING_PAYMENT


# -- reactions -------------------------------------------------------------------------------------------


def awaiting_payment(engine: Engine, recorder: EventRecorder, lines: list[tuple[str, int]]) -> uuid.UUID:
    order_id = place(engine, recorder, lines=lines)
    work(engine, recorder)
    return order_id


def test_shipping_an_order_leaves_what_is_available_unchanged_and_touches_no_product_row(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = awaiting_payment(engine, recorder, [("WOBBLY-TABLE", 2)])
    with recording_session(engine, recorder) as session:
        services.mark_paid(session, order_id)
    assert load(engine, order_id).order_state is OrderState.PAID
    sold = stock_of(engine, "WOBBLY-TABLE")
    assert sold == (1_000_000, 2)  # received, sold: 999,998 available

    statements: list[str] = []

    def remember(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", remember)
    try:
        with recording_session(engine, recorder) as session:
            services.mark_shipped(session, order_id)
    finally:
        event.remove(engine, "before_cursor_execute", remember)

    assert load(engine, order_id).order_state is OrderState.SHIPPED
    assert stock_of(engine, "WOBBLY-TABLE") == sold  # shipped units stay counted as sold
    assert statements and not [statement for statement in statements if "products" in statement]


def test_a_failed_payment_ends_the_order_and_gives_its_stock_back(
    engine: Engine, recorder: EventRecorder
) -> None:
    order_id = awaiting_payment(engine, recorder, [("WOBBLY-TABLE", 2)])
    with recording_session(engine, recorder) as session:
        services.mark_payment_failed(session, order_id, "card declined")

    order = load(engine, order_id)
    assert (order.order_state, order.failure_reason) == (OrderState.PAYMENT_FAILED, "card declined")
    assert stock_of(engine, "WOBBLY-TABLE") == (1_000_000, 0)


def test_reactions_refuse_orders_in_the_wrong_state(engine: Engine, recorder: EventRecorder) -> None:
    order_id = place(engine, recorder)  # still screening
    for react in (services.mark_paid, services.mark_shipped):
        with pytest.raises(InvalidTransition), recording_session(engine, recorder) as session:
            react(session, order_id)
    with pytest.raises(InvalidTransition), recording_session(engine, recorder) as session:
        services.mark_payment_failed(session, order_id, "card declined")


def test_shipping_learns_the_destination_and_nothing_more(engine: Engine, recorder: EventRecorder) -> None:
    order_id = place(engine, recorder, shipping_country="PT")
    with Session(engine) as session:
        assert services.destination_of(session, order_id) == "PT"
        with pytest.raises(OrderNotFound):
            services.destination_of(session, uuid.uuid4())


# -- queries ---------------------------------------------------------------------------------------------


def test_being_processed_lists_exactly_the_orders_pointing_at_a_task(
    engine: Engine, recorder: EventRecorder
) -> None:
    done = place(engine, recorder)
    work(engine, recorder)
    half_done = place(engine, recorder)
    hold_back(engine, load(engine, half_done).fraud_check_task_id)  # type: ignore[arg-type]
    work(engine, recorder)  # stock reserved; fraud screening still pending
    fresh = place(engine, recorder)

    with Session(engine) as session:
        processing = services.list_orders(session, being_processed=True)
        everything = services.list_orders(session)
        screening = services.list_orders(session, state=OrderState.SCREENING)
        awaiting = services.list_orders(session, state="awaiting_payment")
        assert [o.id for o in processing] == [fresh, half_done]
        assert [o.id for o in everything] == [fresh, half_done, done]
        assert [o.id for o in screening] == [fresh, half_done]
        assert [o.id for o in awaiting] == [done]


def test_pages_follow_each_other_newest_first(engine: Engine, recorder: EventRecorder) -> None:
    placed = [place(engine, recorder) for _ in range(5)]
    with Session(engine) as session:
        first = services.list_orders(session, limit=2)
        second = services.list_orders(session, limit=2, before=first[-1].id)
        third = services.list_orders(session, limit=2, before=second[-1].id)
        pages = [[o.id for o in page] for page in (first, second, third)]
    assert pages == [placed[4:2:-1], placed[2:0:-1], placed[0:1]]


@pytest.mark.postgres_only
def test_being_processed_is_answered_from_the_partial_indexes(
    engine: Engine, recorder: EventRecorder
) -> None:
    """The service's own SELECT, explained: both partial unique indexes serve it, no join, no task table."""
    for _ in range(3):
        place(engine, recorder)
    sent: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        sent.append((statement, parameters))

    with Session(engine) as session, session.begin():
        session.execute(text("SET LOCAL enable_seqscan = off"))  # a three-row table would be scanned anyway
        event.listen(engine, "before_cursor_execute", capture)
        try:
            assert len(services.list_orders(session, being_processed=True)) == 3
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        statement, parameters = next((s, p) for s, p in sent if s.lstrip().startswith("SELECT orders.id"))
        assert "queue_tasks" not in statement
        plan = "\n".join(session.connection().exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
    assert "uq_orders_fraud_check_task_id" in plan
    assert "uq_orders_stock_reservation_task_id" in plan
