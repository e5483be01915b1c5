"""The payments context's table: one payment per order, with the tasks that charge and refund it.

``processing_task_id`` is the one-to-one cardinality: the task charging this payment, UNIQUE, so a task
serves zero or one payment. It is set in the transaction that creates the payment and cleared, in the
transaction that records the gateway's answer, by the handler that got it. ``refund_task_id`` works the
same way for the refund. ``idempotency_key`` is what the gateway sees on every attempt: however often a
charge is retried, it is one charge to the gateway.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import CheckConstraint, Index, Integer, MetaData, String, Uuid, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from queue_core import uuid7
from queue_core.clock import UtcDateTime
from queue_core.models import NAMING  # the same constraint names everywhere make migrations readable


class PaymentsBase(DeclarativeBase):
    """Declarative base of the payments context; its metadata holds only this context's tables."""

    metadata = MetaData(naming_convention=NAMING)


class PaymentState(enum.StrEnum):
    PENDING = "pending"  # the charge task is queued or running
    CAPTURED = "captured"
    DECLINED = "declined"  # the gateway said no; final
    FAILED = "failed"  # the gateway could not be reached within the retry budget; final
    CANCELLED = "cancelled"  # cancelled before any charge
    REFUNDING = "refunding"  # captured, then the order was cancelled: the refund task is queued or running
    REFUNDED = "refunded"


_STATE_LIST = ", ".join(f"'{state.value}'" for state in PaymentState)


class InvalidTransition(Exception):  # noqa: N818 - reads as the problem it names
    """The payment is not in a state that allows this change."""


class Payment(PaymentsBase):
    """The charge for one order (referred to by ID only: orders are another context's)."""

    __tablename__ = "payments"
    __table_args__ = (
        # UNIQUE over the open pointers only: it enforces "one task serves at most one row" and, holding
        # no NULLs, makes "what is being processed" (``IS NOT NULL``) a scan of the in-flight rows alone.
        Index(
            "uq_payments_processing_task_id",
            "processing_task_id",
            unique=True,
            postgresql_where=text("processing_task_id IS NOT NULL"),
            sqlite_where=text("processing_task_id IS NOT NULL"),
        ),
        Index(
            "uq_payments_refund_task_id",
            "refund_task_id",
            unique=True,
            postgresql_where=text("refund_task_id IS NOT NULL"),
            sqlite_where=text("refund_task_id IS NOT NULL"),
        ),
        CheckConstraint(f"state IN ({_STATE_LIST})", name="known_state"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    state: Mapped[str] = mapped_column(String(20), default=PaymentState.PENDING.value)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    # One-to-one cardinality: UNIQUE, so zero or one payment per task.
    processing_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    refund_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    gateway_charge_id: Mapped[str | None] = mapped_column(String(64))
    gateway_refund_status: Mapped[str | None] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    captured_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    refunded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    updated_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, server_default=func.current_timestamp(), onupdate=func.current_timestamp()
    )

    @property
    def payment_state(self) -> PaymentState:
        return PaymentState(self.state)

    def _move(self, allowed_from: set[PaymentState], to: PaymentState) -> None:
        if self.payment_state not in allowed_from:
            raise InvalidTransition(f"payment {self.id} is {self.state}; it cannot become {to.value}")
        self.state = to.value
