"""Operators' sessions on the pages: a row per sign-in, so that signing out ends it for good.

The browser holds only the row's ID, inside Flask's signed session cookie. A cookie copied before
sign-out is then worth nothing afterwards: the row says the session ended. A session also ends when it
expires, or when the key it signed in with is removed from ``SHOP_OPERATOR_KEYS`` (rotating a key signs
out everyone who used it).
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import g
from flask import session as cookie_session
from sqlalchemy import Index, MetaData, String, Uuid, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import request_session
from queue_core import NAMING_CONVENTION, UtcDateTime
from shop.access.operator_keys import OperatorKeys
from shop.config import Settings

LIFETIME = dt.timedelta(hours=8)  # a working day; then the operator types the key again
COOKIE_FIELD = "operator_session"  # the row's ID, in Flask's signed session cookie


class AccessBase(DeclarativeBase):
    """Declarative base of the shop's own tables (the contexts and the queue have theirs)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class OperatorSession(AccessBase):
    """One sign-in on the pages; live while not ended, not expired, and its key still configured."""

    __tablename__ = "operator_sessions"
    __table_args__ = (Index("ix_operator_sessions_expires_at", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    key_fingerprint: Mapped[str] = mapped_column(String(12))  # which key signed in (a digest's prefix)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


def begin(session: Session, key_fingerprint: str, *, lifetime: dt.timedelta = LIFETIME) -> uuid.UUID:
    """Record a sign-in and return its ID (the caller commits); sessions long expired are removed."""
    now = dt.datetime.now(dt.UTC)
    session.execute(delete(OperatorSession).where(OperatorSession.expires_at < now - dt.timedelta(days=1)))
    row = OperatorSession(key_fingerprint=key_fingerprint, created_at=now, expires_at=now + lifetime)
    session.add(row)
    session.flush()
    return row.id


def is_live(session: Session, session_id: uuid.UUID, keys: OperatorKeys) -> bool:
    """Whether the sign-in ``session_id`` still stands (one primary-key lookup)."""
    row = session.scalar(select(OperatorSession).where(OperatorSession.id == session_id))
    return (
        row is not None
        and row.ended_at is None
        and row.expires_at > dt.datetime.now(dt.UTC)
        and keys.still_configured(row.key_fingerprint)
    )


def end(session: Session, session_id: uuid.UUID) -> None:
    """Sign out: the session's cookie, and every copy of it, is refused from now on (the caller commits)."""
    row = session.get(OperatorSession, session_id)
    if row is not None and row.ended_at is None:
        row.ended_at = dt.datetime.now(dt.UTC)


def signed_in(settings: Settings) -> bool:
    """Whether this request's browser holds a live operator session (checked once per request)."""
    found: bool | None = g.get("operator_signed_in")
    if found is None:
        session_id = current_session_id()
        found = bool(
            session_id is not None
            and settings.operator_keys
            and is_live(request_session.db(), session_id, settings.operator_keys)
        )
        g.operator_signed_in = found
    return found


def current_session_id() -> uuid.UUID | None:
    """The ID of the sign-in this browser's cookie names, live or not."""
    raw = cookie_session.get(COOKIE_FIELD)
    try:
        return uuid.UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
