"""The payments table keeps its promises: one payment per order, one payment per task, and "being
processed" as a direct query on the task pointers."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payments import services
from payments.models import Payment, PaymentState
from queue_core import TaskState, state_of, uuid7
from queue_core._models import task_table
from tests.integration.payments.conftest import PaymentsDesk
from tests.support.domain import EventRecorder, recording_session
from tests.support.inprocess import DEADLINE_SECONDS


def payment_row(order_id: uuid.UUID | None = None, **pointers: uuid.UUID | None) -> Payment:
    payment_id = uuid7()
    return Payment(
        id=payment_id,
        order_id=order_id or uuid.uuid4(),
        amount_cents=1_500,
        currency="EUR",
        idempotency_key=f"payment-{payment_id}",
        state=PaymentState.PENDING.value,
        **pointers,
    )


def test_requesting_a_payment_enqueues_its_charge_task_in_the_same_transaction(engine: Engine) -> None:
    with Session(engine) as session:
        payment = services.request_payment(session, order_id=uuid.uuid4(), amount_cents=2_500, currency="USD")
        charge_task = payment.processing_task_id
        assert charge_task is not None
        assert state_of(session, charge_task) is TaskState.PENDING
        session.rollback()

    with Session(engine) as session:
        assert session.get(Payment, payment.id) is None
        with pytest.raises(LookupError):
            state_of(session, charge_task)  # gone with the payment: neither exists without the other


def test_requesting_a_payment_twice_for_one_order_returns_the_first(desk: PaymentsDesk) -> None:
    first = desk.request()
    with recording_session(desk.engine, desk.recorder) as session:
        second = services.request_payment(
            session, order_id=first.order_id, amount_cents=9_999, currency="USD"
        )
        assert (second.id, second.processing_task_id) == (first.id, first.processing_task_id)
        assert (second.amount_cents, second.currency) == (4_200, "EUR")


@pytest.mark.postgres_only
def test_two_racing_requests_for_one_order_end_with_one_payment_and_one_open_task(engine: Engine) -> None:
    order_id = uuid.uuid4()
    answers: list[uuid.UUID] = []
    with Session(engine) as first:
        mine = services.request_payment(first, order_id=order_id, amount_cents=700, currency="EUR").id

        def request_meanwhile() -> None:
            # It finds no payment (ours is not committed), inserts, and waits on the UNIQUE order_id.
            with Session(engine) as second, second.begin():
                theirs = services.request_payment(second, order_id=order_id, amount_cents=700, currency="EUR")
                answers.append(theirs.id)

        racer = threading.Thread(target=request_meanwhile)
        racer.start()
        racer.join(timeout=0.5)
        assert racer.is_alive(), "the second request should wait for the first transaction"
        first.commit()
        racer.join(timeout=DEADLINE_SECONDS)

    assert answers == [mine]
    with Session(engine) as session:
        assert services.list_payments(session, being_processed=True) == [session.get(Payment, mine)]
        open_charges = session.scalar(
            select(func.count()).select_from(task_table).where(task_table.c.name == "payments.charge")
        )
        assert open_charges == 1  # the loser's task rolled back with its payment


@pytest.mark.parametrize(("amount_cents", "currency"), [(0, "EUR"), (-5, "EUR"), (100, "eur"), (100, "EURO")])
def test_a_payment_needs_a_positive_amount_and_an_iso_currency(
    engine: Engine, amount_cents: int, currency: str
) -> None:
    with Session(engine) as session, pytest.raises(ValueError):
        services.request_payment(session, order_id=uuid.uuid4(), amount_cents=amount_cents, currency=currency)


@pytest.mark.parametrize("column", ["processing_task_id", "refund_task_id"])
def test_the_database_refuses_two_payments_pointing_at_one_task(engine: Engine, column: str) -> None:
    shared_task = uuid7()
    with Session(engine) as session:
        session.add(payment_row(**{column: shared_task}))
        session.add(payment_row(**{column: shared_task}))
        with pytest.raises(IntegrityError, match=column):
            session.flush()


def test_any_number_of_payments_point_at_no_task(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.add_all([payment_row(), payment_row(), payment_row()])


def test_being_processed_lists_exactly_the_payments_whose_charge_or_refund_task_is_open(
    desk: PaymentsDesk,
) -> None:
    charged = desk.request()
    refunding = desk.request()
    desk.work()
    desk.cancel(refunding.order_id)
    charging = desk.request()
    cancelled = desk.request()
    desk.cancel(cancelled.order_id)

    with Session(desk.engine) as session:
        in_flight = services.list_payments(session, being_processed=True)
        everything = services.list_payments(session)
        captured = services.list_payments(session, state=PaymentState.CAPTURED)
        pending_in_flight = services.list_payments(session, state=PaymentState.PENDING, being_processed=True)

    assert {p.id for p in in_flight} == {refunding.id, charging.id, cancelled.id}
    assert [p.id for p in everything] == newest_first([cancelled.id, charging.id, refunding.id, charged.id])
    assert [p.id for p in captured] == [charged.id]
    assert [p.id for p in pending_in_flight] == [charging.id]


def test_payments_page_newest_first_before_a_given_payment(engine: Engine) -> None:
    recorder = EventRecorder()
    with recording_session(engine, recorder) as session:
        made = [
            services.request_payment(session, order_id=uuid.uuid4(), amount_cents=100 + n, currency="EUR").id
            for n in range(5)
        ]

    with Session(engine) as session:
        first_page = services.list_payments(session, limit=2)
        second_page = services.list_payments(session, limit=2, before=first_page[-1].id)
        last_page = services.list_payments(session, limit=2, before=second_page[-1].id)

    assert [p.id for p in first_page + second_page + last_page] == newest_first(made)


def newest_first(payment_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """UUIDv7 order: creation order to the millisecond (IDs made in the same millisecond order at random)."""
    return sorted(payment_ids, reverse=True)
