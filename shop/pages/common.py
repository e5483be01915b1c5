"""What every page shares: the request's session, the settings, the registry's references, and filters."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from flask import current_app, render_template

from queue_core import TaskReference
from request_session import db as db  # the one session getter, here beside what else every page shares
from shop.access.redaction import mask_email
from shop.config import app_settings
from shop.pages import security
from shop.tasks import registry_for

REFERENCES_KEY = "shop.pages.references"


def references() -> Sequence[TaskReference]:
    """Every registered task-ID column of the application's registry (built once per app)."""
    found = current_app.extensions.get(REFERENCES_KEY)
    if found is None:
        found = tuple(registry_for(current_app).references)
        current_app.extensions[REFERENCES_KEY] = found
    return found


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render a page template with what the layout needs (may the visitor act; an operator; demo mode)."""
    context.setdefault("busy", False)
    return render_template(
        f"pages/{template}",
        may_act=security.may_act(app_settings()),
        is_operator=security.is_operator(app_settings()),
        demo_mode=app_settings().demo_mode,
        **context,
    ), status


def customer_email(email: str) -> str:
    """A customer's email as this visitor may see it: whole for an operator, masked for anyone else."""
    return email if security.is_operator(app_settings()) else mask_email(email)


def short_id(value: uuid.UUID | str | None) -> str:
    """The last 8 hex digits: enough to tell rows apart on a page (the full ID is in the link and title).

    Not the first 8: IDs are UUIDv7, whose first digits are the time, the same for tasks made together.
    """
    return "" if value is None else str(value)[-8:]


def when(value: dt.datetime | None) -> str:
    """A timestamp as people read it on a dashboard: UTC, to the millisecond."""
    if value is None:
        return ""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def money(cents: int, currency: str = "EUR") -> str:
    return f"{cents / 100:,.2f} {currency}"


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def ms(value: float | None) -> str:
    """Milliseconds as people read them: ``12 ms``, ``1.4 s``."""
    if value is None:
        return "n/a"
    return seconds(value / 1000.0)
