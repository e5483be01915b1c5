"""One database session per web request, wired by ``shop.bootstrap`` (the reactions reach the contexts).

Every view reaches it through ``request_session.db()``, uses it, and commits. Whatever a request leaves
uncommitted is rolled back when the request ends.
The engine is built on first use, so building the app never fails on a bad URL: the CLI explains that
one itself (``shop.cli.database``).
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import scoped_session, sessionmaker

import request_session
from shop import bootstrap
from shop.config import Settings
from shop.database import create_engine_from_url

ENGINE_KEY = "db_engine"

log = logging.getLogger(__name__)


class LazyEngine:
    """The app's engine, created by the first caller (thread-safe); no connection until a query runs."""

    def __init__(self, url: str, pool_size: int) -> None:
        self.url = url
        self.pool_size = pool_size
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                # A row lock held by a stalled transaction (a frozen worker) makes a request fail after
                # its patience, as a collision does, instead of waiting as long as the stall lasts.
                self._engine = create_engine_from_url(
                    self.url, pool_size=self.pool_size, lock_timeout_seconds=request_session.PATIENCE_SECONDS
                )
            return self._engine

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()


def init_app(app: Flask, settings: Settings) -> None:
    """Give the app its engine and its request-scoped sessions."""
    # As many pooled connections as request threads: a smaller pool opens and closes one per request
    # beyond it, under exactly the load where that costs most.
    engine = LazyEngine(settings.database_url, pool_size=settings.web_threads)
    factory = sessionmaker(expire_on_commit=False, info=bootstrap.session_info())
    # One session per thread (a gunicorn thread serves one request at a time), removed after each request
    # so the next one starts clean.
    sessions = scoped_session(factory)
    app.extensions[ENGINE_KEY] = engine
    request_session.init_app(app, sessions)

    @app.before_request
    def bind_sessions() -> None:
        if factory.kw.get("bind") is None:
            factory.configure(bind=engine.get())

    @app.teardown_appcontext
    def remove_session(_exception: BaseException | None) -> None:
        # Closing rolls back what the request left open. If the server dropped the connection meanwhile (a
        # restart), that rollback fails, but the request has its answer already (a 503, when it noticed):
        # failing here would make gunicorn replace it with a 500. The pool has discarded the dead
        # connection; the broken session is dropped, so the thread's next request starts with a new one.
        try:
            sessions.remove()
        except DBAPIError as error:
            log.warning("closing the request's session failed; dropped it: %s", error.orig or error)
            sessions.registry.clear()


def engine_of(app: Flask) -> Engine:
    """The app's engine (created now if no request has needed it yet)."""
    lazy: LazyEngine = app.extensions[ENGINE_KEY]
    return lazy.get()


def dispose_engine(app: Flask) -> None:
    """Close the app's pooled connections (tests, and processes about to exit)."""
    lazy: LazyEngine = app.extensions[ENGINE_KEY]
    lazy.dispose()
