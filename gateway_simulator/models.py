"""The simulator's ledger: charges, refund requests and the one row of failure-injection settings.

These tables belong to the simulated payment provider, not to the shop: they are created by
``metadata.create_all`` when the simulator starts and are not part of the shop's Alembic migrations.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Float, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

KEY_LENGTH = 255


def utc_now() -> datetime:
    """Timestamps are recorded in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The simulator's own metadata, apart from the shop's."""

    metadata = MetaData()


class Charge(Base):
    """One charge per idempotency key: the UNIQUE key is what makes a retried request safe.

    ``status`` is ``captured``, ``declined``, ``refunded`` or ``voided``. A ``voided`` row is a tombstone
    written by a refund that arrived before any charge under its key: it has no amount, and it answers
    every later charge request with that key, so a charge that was given up on can never be captured.
    """

    __tablename__ = "gateway_charges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(KEY_LENGTH), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(String(100), index=True)
    decline_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    refund_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    refund_idempotency_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefundRequest(Base):
    """What one refund idempotency key was answered, so that a repeated request gets the same answer.

    ``status`` is ``refunded``, ``voided`` or ``nothing_to_refund``; the refund itself (its ID and time)
    is recorded on the charge, which can be refunded only once.
    """

    __tablename__ = "gateway_refund_requests"

    idempotency_key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    charge_idempotency_key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class FailureInjection(Base):
    """The single row (``id = 1``) of misbehaviour settings, shared by every server process and thread."""

    __tablename__ = "gateway_failure_injection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    transient_error_rate: Mapped[float] = mapped_column(Float, default=0.0)
    timeout_rate: Mapped[float] = mapped_column(Float, default=0.0)
    decline_rate: Mapped[float] = mapped_column(Float, default=0.0)
    # Stored under its first name: ``create_all`` never renames a column, and a ledger made before the
    # knob was called ``hang_seconds`` (``var/gateway.sqlite3`` of an earlier demo) must still open.
    hang_seconds: Mapped[float] = mapped_column("timeout_seconds", Float, key="hang_seconds", default=10.0)
