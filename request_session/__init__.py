"""The current web request's database session: one getter for every view, whichever package it is in.

The composition root opens one session per request (``shop.web.database``: its reactions and the rest
of the wiring come from ``shop.bootstrap``) and registers the request-scoped factory here with
``init_app``; every view, in a context's API or in the shop's pages, calls ``db()``. This is a package
of its own, at the bottom beside ``queue_core``, because the contexts may import neither the shop nor
each other, and it knows none of them (docs/adr/0008-the-shop-wired-in-one-place.md). A view that
changes something commits through ``transaction``, which runs it again when it meets another
transaction's short lock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

EXTENSION_KEY = "request_session"  # app.extensions key: owned here, the one module that reads it
# PostgreSQL's SQLSTATEs for "another transaction was in the way": lock_not_available (NOWAIT, or a
# lock_timeout), deadlock_detected and serialization_failure. Each rolls back only the transaction
# that got it, and running it again is what PostgreSQL's documentation asks for.
COLLISION_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
# How long a request keeps trying before it answers the collision (409, Retry-After): a lock held longer
# than this is not an ordinary race but a stalled transaction. The answer comes within it.
PATIENCE_SECONDS = 2.0
# How long one statement of a request waits for a row lock (the web app's connections set it as their
# ``lock_timeout``): a fraction of the patience, so that a wait behind a stalled holder ends in time for
# the request to try again, or to answer, within its patience.
LOCK_WAIT_SECONDS = 0.5
# The pauses between attempts: jittered, from 5 ms doubling up to this.
MAX_PAUSE_SECONDS = 0.2

SessionFactory = Callable[[], Session]
T = TypeVar("T")


def init_app(app: Flask, sessions: SessionFactory) -> None:
    """Make ``sessions`` (a ``scoped_session``: one session per request) what ``db()`` returns."""
    app.extensions[EXTENSION_KEY] = sessions


def db() -> Session:
    """This request's session; a view that changes something commits it, and the request's end closes it."""
    sessions: SessionFactory | None = current_app.extensions.get(EXTENSION_KEY)
    if sessions is None:
        raise RuntimeError("this app has no request sessions: its factory calls request_session.init_app")
    return sessions()


def transaction(work: Callable[[Session], T], *, patience: float = PATIENCE_SECONDS) -> T:
    """Run ``work(db())`` and commit; if it collides with another transaction, roll back and run it again.

    The shop never holds a row lock across a remote call, so the transactions a request can collide
    with last milliseconds: a handler recording a gateway's answer, a reservation, a dispatch. A
    request that meets one (``FOR UPDATE NOWAIT`` refused, a deadlock PostgreSQL broke) is therefore
    run again after a short, jittered pause, and the client gets a final answer. A collision is raised
    (the API answers it 409 with ``Retry-After``) once another attempt, which may wait up to
    ``LOCK_WAIT_SECONDS`` for a lock, would no longer end within ``patience``: so the request is answered
    within its patience, whatever holds the lock and for how long. ``work`` must be
    safe to run again: everything it does is in the rolled-back transaction, and it returns what the
    view answers, read before the commit.
    """
    session = db()
    deadline = time.monotonic() + patience
    pause = 0.005
    while True:
        try:
            result = work(session)
            session.commit()
            return result
        except DBAPIError as error:
            session.rollback()
            if not is_collision(error) or time.monotonic() + pause + LOCK_WAIT_SECONDS > deadline:
                raise
        time.sleep(random.uniform(pause / 2, pause))  # jittered: two colliding requests do not meet again
        pause = min(pause * 2, MAX_PAUSE_SECONDS)


def is_collision(error: DBAPIError) -> bool:
    """Whether ``error`` is another transaction having been in the way (one of ``COLLISION_SQLSTATES``)."""
    return getattr(error.orig, "sqlstate", None) in COLLISION_SQLSTATES
