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

from sqlalchemy import CheckConstraint, Integer, MetaData, String, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# The queue's naming convention everywhere: the same constraint names make migrations readable.
from queue_core import NAMING_CONVENTION, UtcDateTime, unique_task_pointer, uuid7


class PaymentsBase(DeclarativeBase):
    """Declarative base of the payments context; its metadata holds only this context's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PaymentState(enum.StrEnum):
    PENDING = "pending"  # the charge task is queued or running
    CAPTURED = "captured"
    DECLINED = "declined"  # the gateway said no; final
    FAILED = "failed"  # the gateway could not be reached within the retry budget; final
    CANCELLED = "cancelled"  # cancelled before any charge
    REFUNDING = "refunding"  # captured, then the order was cancelled: the refund task is queued or running
    REFUNDED = "refunded"


# A payment that ended without a capture: its key is voided at the gateway, since a charge attempt that
# timed out (or was still running when it was cancelled) may have reached it.
VOIDABLE_STATES = frozenset({PaymentState.FAILED, PaymentState.CANCELLED})
REASON_LENGTH = 500
_STATE_LIST = ", ".join(f"'{state.value}'" for state in PaymentState)


class InvalidTransition(Exception):  # noqa: N818 - reads as the problem it names
    """The payment is not in a state that allows this change."""


class Payment(PaymentsBase):
    """The charge for one order (referred to by ID only: orders are another context's)."""

    __tablename__ = "payments"
    __table_args__ = (
        # One task serves at most one row; "being processed" (``IS NOT NULL``) reads in-flight rows alone.
        unique_task_pointer("payments", "processing_task_id"),
        unique_task_pointer("payments", "refund_task_id"),
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
    failure_reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    captured_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    refunded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    updated_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, server_default=func.current_timestamp(), onupdate=func.current_timestamp()
    )

    @classmethod
    def for_order(cls, order_id: uuid.UUID, amount_cents: int, currency: str) -> Payment:
        """A new ``pending`` payment, with an idempotency key of its own for every attempt to charge it."""
        payment_id = uuid7()
        return cls(
            id=payment_id,
            order_id=order_id,
            amount_cents=amount_cents,
            currency=currency,
            idempotency_key=f"payment-{payment_id}",
            state=PaymentState.PENDING.value,
        )

    @property
    def payment_state(self) -> PaymentState:
        return PaymentState(self.state)

    @property
    def is_being_processed(self) -> bool:
        """A charge or a refund task is queued or running for this payment."""
        return self.processing_task_id is not None or self.refund_task_id is not None

    def _move(self, allowed_from: set[PaymentState], to: PaymentState) -> None:
        if self.payment_state not in allowed_from:
            raise InvalidTransition(f"payment {self.id} is {self.state}; it cannot become {to.value}")
        self.state = to.value

    def capture(self, charge_id: str) -> None:
        """The gateway took the money: allowed once, from pending."""
        self._move({PaymentState.PENDING}, PaymentState.CAPTURED)
        self.gateway_charge_id = charge_id
        self.captured_at = _now()

    def decline(self, reason: str) -> None:
        """The gateway said no: final."""
        self._move({PaymentState.PENDING}, PaymentState.DECLINED)
        self.failure_reason = _clip(f"declined: {reason}")

    def fail(self, reason: str) -> None:
        """The charge will not be attempted again (gateway unreachable, request refused): final."""
        self._move({PaymentState.PENDING}, PaymentState.FAILED)
        self.failure_reason = _clip(reason)

    def cancel(self) -> None:
        """The order was cancelled before the charge was known to have happened."""
        self._move({PaymentState.PENDING}, PaymentState.CANCELLED)

    def start_refund(self, task_id: uuid.UUID) -> None:
        """A captured charge is to be given back by the refund task ``task_id``."""
        self._move({PaymentState.CAPTURED}, PaymentState.REFUNDING)
        self._attach_refund_task(task_id)

    def start_void(self, task_id: uuid.UUID) -> None:
        """A payment that ended without a capture gets the refund task ``task_id`` that voids its key.

        An attempt that timed out, or one still running when the payment was cancelled, may yet reach
        the gateway; the void refunds it if it did and stops it if it did not. The state stays.
        """
        if self.payment_state not in VOIDABLE_STATES:
            raise InvalidTransition(
                f"payment {self.id} is {self.state}; only a failed or cancelled one is voided"
            )
        self._attach_refund_task(task_id)

    def finish_refund(self, status: str) -> None:
        """Record the gateway's answer to the refund (``refunded``, ``voided``, ``nothing_to_refund``).

        A refunding payment becomes refunded; a voided (failed or cancelled) one keeps its state.
        """
        allowed = {PaymentState.REFUNDING, *VOIDABLE_STATES}
        if self.payment_state not in allowed:
            raise InvalidTransition(f"payment {self.id} is {self.state}; it has no refund to finish")
        self.gateway_refund_status = status
        if self.payment_state is PaymentState.REFUNDING:
            self._move({PaymentState.REFUNDING}, PaymentState.REFUNDED)
            self.refunded_at = _now()

    def _attach_refund_task(self, task_id: uuid.UUID) -> None:
        if self.refund_task_id is not None:
            raise InvalidTransition(f"payment {self.id} already has refund task {self.refund_task_id}")
        self.refund_task_id = task_id


def _clip(reason: str) -> str:
    return reason if len(reason) <= REASON_LENGTH else reason[: REASON_LENGTH - 1] + "…"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
