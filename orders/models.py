"""The orders context's tables: orders, their lines, and the product catalogue with its stock.

An order points at the two tasks that screen it in parallel, fraud screening and stock reservation.
Each pointer is set in the transaction that places the order and cleared by the handler that finishes
the step, so ``fraud_check_task_id IS NOT NULL`` means "being screened for fraud right now". Each is
UNIQUE: one task serves at most one order. Methods guard every state change; a handler or a service
never assigns ``state`` itself.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Sequence

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, MetaData, String, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# The queue's naming convention everywhere: the same constraint names make migrations readable.
from queue_core import NAMING_CONVENTION, UtcDateTime, unique_task_pointer, uuid7


class OrdersBase(DeclarativeBase):
    """Declarative base of the orders context; its metadata holds only this context's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OrderState(enum.StrEnum):
    SCREENING = "screening"  # fraud screening and stock reservation run in parallel
    AWAITING_PAYMENT = "awaiting_payment"  # both passed; the payments context is charging
    PAID = "paid"  # waiting for the carrier
    SHIPPED = "shipped"
    REJECTED = "rejected"  # failed fraud screening or out of stock
    PAYMENT_FAILED = "payment_failed"
    CANCELLED = "cancelled"


FINAL_ORDER_STATES = frozenset(
    {OrderState.SHIPPED, OrderState.REJECTED, OrderState.PAYMENT_FAILED, OrderState.CANCELLED}
)
# Never reached payment: no other context holds a record of such an order, and no money was ever asked
# for. A cancelled or payment-failed order may have had a charge (captured then refunded, or a key voided
# at the gateway); it stays, as the record of that money, and keeps its Idempotency-Key, so a retried POST
# with that key gets the old order back instead of placing and charging a new one.
DELETABLE_ORDER_STATES = frozenset({OrderState.SCREENING, OrderState.REJECTED})
_STATE_LIST = ", ".join(f"'{state.value}'" for state in OrderState)


class InvalidTransition(Exception):  # noqa: N818 - reads as the problem it names
    """The order is not in a state that allows this change (answered 409 by the API)."""


class Product(OrdersBase):
    """A product that can be ordered, with its stock.

    ``on_hand`` counts the units the warehouse received, ``reserved`` the units sold (promised to an open
    order, or shipped); ``on_hand - reserved`` is what can still be ordered. Shipping changes neither.
    """

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("unit_price_cents >= 0", name="price_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_stock"),
    )

    sku: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    on_hand: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)


class Order(OrdersBase):
    """A customer's order. It owns the pointers to the tasks screening it; see the module docstring."""

    __tablename__ = "orders"
    __table_args__ = (
        # One task serves at most one row; "being processed" (``IS NOT NULL``) reads in-flight rows alone.
        unique_task_pointer("orders", "fraud_check_task_id"),
        unique_task_pointer("orders", "stock_reservation_task_id"),
        CheckConstraint(f"state IN ({_STATE_LIST})", name="known_state"),
        CheckConstraint("total_cents >= 0", name="total_not_negative"),
        Index("ix_orders_state_created_at", "state", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    state: Mapped[str] = mapped_column(String(20), default=OrderState.SCREENING.value)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    customer_email: Mapped[str] = mapped_column(String(254))
    shipping_country: Mapped[str] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3))
    total_cents: Mapped[int] = mapped_column(Integer)
    # Idempotent placement: a client's key, and a fingerprint of the body it first came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # Parallel cardinality: two tasks at once, each pointer UNIQUE (a task serves at most one order).
    fraud_check_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    stock_reservation_task_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    fraud_cleared_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    stock_reserved_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, server_default=func.current_timestamp())
    updated_at: Mapped[dt.datetime] = mapped_column(
        UtcDateTime, server_default=func.current_timestamp(), onupdate=func.current_timestamp()
    )

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        order_by="OrderLine.line_number",
        lazy="selectin",
    )

    @classmethod
    def for_customer(
        cls,
        customer_email: str,
        shipping_country: str,
        currency: str,
        priced_lines: Sequence[tuple[str, int, int]],
        *,
        idempotency_key: str | None,
        request_fingerprint: str,
    ) -> Order:
        """A new order, ``screening``, from lines of (SKU, quantity, unit price in cents), numbered from 1."""
        return cls(
            id=uuid7(),
            state=OrderState.SCREENING.value,
            customer_email=customer_email,
            shipping_country=shipping_country,
            currency=currency,
            total_cents=sum(quantity * price for _, quantity, price in priced_lines),
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint,
            lines=[
                OrderLine(line_number=number, sku=sku, quantity=quantity, unit_price_cents=price)
                for number, (sku, quantity, price) in enumerate(priced_lines, start=1)
            ],
        )

    @property
    def order_state(self) -> OrderState:
        return OrderState(self.state)

    @property
    def is_final(self) -> bool:
        return self.order_state in FINAL_ORDER_STATES

    @property
    def screening_passed(self) -> bool:
        """Both parallel steps succeeded: the join condition."""
        return self.fraud_cleared_at is not None and self.stock_reserved_at is not None

    def _move(self, allowed_from: set[OrderState], to: OrderState, reason: str | None = None) -> None:
        if self.order_state not in allowed_from:
            raise InvalidTransition(f"order {self.id} is {self.state}; it cannot become {to.value}")
        self.state = to.value
        if reason is not None:
            self.failure_reason = reason[:500]  # the column's width: a long reason is cut, never refused

    def record_fraud_cleared(self, at: dt.datetime) -> None:
        """Fraud screening passed (one half of the join); only while the order is screening."""
        self._require({OrderState.SCREENING}, "be cleared of fraud")
        self.fraud_cleared_at = at

    def record_stock_reserved(self, at: dt.datetime) -> None:
        """Its units are held in ``products.reserved`` (the other half of the join); only while screening."""
        self._require({OrderState.SCREENING}, "have stock reserved")
        self.stock_reserved_at = at

    def record_stock_released(self) -> None:
        """Its units were given back (the order ended unshipped): releasing again finds nothing to release."""
        self.stock_reserved_at = None

    def check_deletable(self) -> None:
        """Only an order that never reached payment may be erased: still screening, or rejected."""
        self._require(DELETABLE_ORDER_STATES, "be deleted")

    def _require(self, allowed: frozenset[OrderState] | set[OrderState], action: str) -> None:
        if self.order_state not in allowed:
            raise InvalidTransition(f"order {self.id} is {self.state}; it cannot {action}")

    def await_payment(self) -> None:
        """The join's transition: allowed once, from screening, when both steps passed."""
        if not self.screening_passed:
            raise InvalidTransition(f"order {self.id} has not passed both screening steps")
        self._move({OrderState.SCREENING}, OrderState.AWAITING_PAYMENT)

    def reject(self, reason: str) -> None:
        self._move({OrderState.SCREENING}, OrderState.REJECTED, reason)

    def mark_paid(self) -> None:
        self._move({OrderState.AWAITING_PAYMENT}, OrderState.PAID)

    def mark_payment_failed(self, reason: str) -> None:
        self._move({OrderState.AWAITING_PAYMENT}, OrderState.PAYMENT_FAILED, reason)

    def mark_shipped(self) -> None:
        self._move({OrderState.PAID}, OrderState.SHIPPED)

    def cancel(self, reason: str = "cancelled by the customer") -> None:
        self._move(
            {OrderState.SCREENING, OrderState.AWAITING_PAYMENT, OrderState.PAID}, OrderState.CANCELLED, reason
        )


class OrderLine(OrdersBase):
    """One product and quantity of an order, priced when the order was placed."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_cents >= 0", name="price_not_negative"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")
