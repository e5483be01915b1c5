"""The current web request's database session: one getter for every view, whichever package it is in.

The composition root opens one session per request (``shop.web.database``: its reactions and the rest
of the wiring come from ``shop.bootstrap``) and registers the request-scoped factory here with
``init_app``; every view, in a context's API or in the shop's pages, calls ``db()``. This is a package
of its own, at the bottom beside ``queue_core``, because the contexts may import neither the shop nor
each other, and it knows none of them (docs/adr/0008-the-shop-wired-in-one-place.md).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy.orm import Session

EXTENSION_KEY = "request_session"  # app.extensions key: owned here, the one module that reads it

SessionFactory = Callable[[], Session]


def init_app(app: Flask, sessions: SessionFactory) -> None:
    """Make ``sessions`` (a ``scoped_session``: one session per request) what ``db()`` returns."""
    app.extensions[EXTENSION_KEY] = sessions


def db() -> Session:
    """This request's session; a view that changes something commits it, and the request's end closes it."""
    sessions: SessionFactory | None = current_app.extensions.get(EXTENSION_KEY)
    if sessions is None:
        raise RuntimeError("this app has no request sessions: its factory calls request_session.init_app")
    return sessions()
