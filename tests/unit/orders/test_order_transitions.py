"""Order: every state change is guarded by the model, and the join needs both screening steps."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from orders.models import InvalidTransition, Order, OrderState

NOON = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def order_in(state: OrderState) -> Order:
    return Order(
        id=uuid.uuid4(),
        state=state.value,
        customer_email="ada@example.com",
        shipping_country="DE",
        currency="EUR",
        total_cents=24_900,
    )


def screened_order() -> Order:
    order = order_in(OrderState.SCREENING)
    order.record_fraud_cleared(NOON)
    order.record_stock_reserved(NOON)
    return order


ALL_STATES = list(OrderState)


def test_the_join_moves_a_screened_order_to_awaiting_payment() -> None:
    order = screened_order()
    order.await_payment()
    assert order.order_state is OrderState.AWAITING_PAYMENT


@pytest.mark.parametrize(
    ("fraud_cleared", "stock_reserved"), [(False, False), (True, False), (False, True)], ids=str
)
def test_the_join_refuses_an_order_missing_a_verdict(fraud_cleared: bool, stock_reserved: bool) -> None:
    order = order_in(OrderState.SCREENING)
    if fraud_cleared:
        order.record_fraud_cleared(NOON)
    if stock_reserved:
        order.record_stock_reserved(NOON)
    assert not order.screening_passed
    with pytest.raises(InvalidTransition, match="has not passed both screening steps"):
        order.await_payment()
    assert order.order_state is OrderState.SCREENING


def test_the_join_happens_only_once() -> None:
    order = screened_order()
    order.await_payment()
    with pytest.raises(InvalidTransition, match="awaiting_payment; it cannot become awaiting_payment"):
        order.await_payment()


@pytest.mark.parametrize("state", [s for s in ALL_STATES if s is not OrderState.SCREENING])
def test_verdicts_are_recorded_only_while_screening(state: OrderState) -> None:
    order = order_in(state)
    with pytest.raises(InvalidTransition):
        order.record_fraud_cleared(NOON)
    with pytest.raises(InvalidTransition):
        order.record_stock_reserved(NOON)


def test_rejecting_keeps_the_reason() -> None:
    order = order_in(OrderState.SCREENING)
    order.reject("out of stock: CRUNCHY-ARMCHAIR")
    assert (order.order_state, order.failure_reason) == (
        OrderState.REJECTED,
        "out of stock: CRUNCHY-ARMCHAIR",
    )


def test_a_very_long_reason_is_cut_to_the_column_width() -> None:
    order = order_in(OrderState.SCREENING)
    order.reject("x" * 2000)
    assert order.failure_reason == "x" * 500


# (method, the states it is allowed from, the state it leads to)
TRANSITIONS = [
    ("reject", {OrderState.SCREENING}, OrderState.REJECTED),
    ("mark_paid", {OrderState.AWAITING_PAYMENT}, OrderState.PAID),
    ("mark_payment_failed", {OrderState.AWAITING_PAYMENT}, OrderState.PAYMENT_FAILED),
    ("mark_shipped", {OrderState.PAID}, OrderState.SHIPPED),
    (
        "cancel",
        {OrderState.SCREENING, OrderState.AWAITING_PAYMENT, OrderState.PAID},
        OrderState.CANCELLED,
    ),
]
CASES = [
    pytest.param(method, state, state in allowed, target, id=f"{method}-from-{state.value}")
    for method, allowed, target in TRANSITIONS
    for state in ALL_STATES
]


def call(order: Order, method: str) -> None:
    if method in ("reject", "mark_payment_failed"):
        getattr(order, method)("the card was declined")
    else:
        getattr(order, method)()


@pytest.mark.parametrize(("method", "state", "allowed", "target"), CASES)
def test_each_transition_is_allowed_only_from_its_states(
    method: str, state: OrderState, allowed: bool, target: OrderState
) -> None:
    order = order_in(state)
    if allowed:
        call(order, method)
        assert order.order_state is target
    else:
        with pytest.raises(InvalidTransition, match=f"order {order.id} is {state.value}"):
            call(order, method)
        assert order.order_state is state


def test_cancelling_records_why() -> None:
    order = order_in(OrderState.PAID)
    order.cancel()
    assert order.failure_reason == "cancelled by the customer"


@pytest.mark.parametrize("state", ALL_STATES)
def test_only_orders_that_never_reached_payment_may_be_deleted(state: OrderState) -> None:
    order = order_in(state)
    deletable = state in {OrderState.SCREENING, OrderState.REJECTED}
    if deletable:
        order.check_deletable()
    else:
        with pytest.raises(InvalidTransition, match="cannot be deleted"):
            order.check_deletable()


def test_releasing_stock_forgets_the_reservation() -> None:
    order = screened_order()
    order.record_stock_released()
    assert order.stock_reserved_at is None
    assert not order.screening_passed


@pytest.mark.parametrize("state", ALL_STATES)
def test_final_states_are_final(state: OrderState) -> None:
    assert order_in(state).is_final == (
        state in {OrderState.SHIPPED, OrderState.REJECTED, OrderState.PAYMENT_FAILED, OrderState.CANCELLED}
    )
