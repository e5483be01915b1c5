"""One database session per web request, wired by ``shop.bootstrap`` (the reactions reach the contexts).

Every view reaches it through ``request_session.db()``, uses it, and commits. Whatever a request leaves
uncommitted is rolled back when the request ends.

A request that only reads (GET, HEAD, OPTIONS) runs its statements in autocommit on PostgreSQL: under
READ COMMITTED each statement takes its own snapshot anyway, so wrapping reads in a transaction buys no
consistency and costs two round trips (BEGIN and the ROLLBACK at the end). Its session refuses to write
(``ReadOnlyRequestError``), so a write slipped into a GET view fails loudly instead of committing.
The engine is built on first use, so building the app never fails on a bad URL: the CLI explains that
one itself (``shop.cli.database``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, request
from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, scoped_session, sessionmaker

import request_session
from shop import bootstrap
from shop.config import Settings
from shop.database import SessionLimits, create_engine_from_url

ENGINE_KEY = "db_engine"
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # HTTP's safe methods: they change nothing

# A row lock held by a stalled transaction (a frozen worker) costs a statement at most
# request_session.LOCK_WAIT_SECONDS, and the request an answer within its patience (a 409 with
# Retry-After if the holder is still there), instead of a wait as long as the stall. A request thread that
# stalls inside a transaction loses it after 5 s (no view waits on anything between its statements), and
# no statement of a request may run for more than 10 s (each is an indexed read or a short write).
WEB_LIMITS = SessionLimits(
    lock_timeout_seconds=request_session.LOCK_WAIT_SECONDS,
    idle_in_transaction_seconds=5.0,
    statement_timeout_seconds=10.0,
)

log = logging.getLogger(__name__)


class ReadOnlyRequestError(RuntimeError):
    """A view answering a GET (HEAD, OPTIONS) tried to write: safe methods must change nothing."""


class ReadingSession(Session):
    """The session of a request that only reads: it raises ``ReadOnlyRequestError`` before any ORM flush
    or ORM INSERT, UPDATE or DELETE (its statements run in autocommit, so a write would stay)."""


@event.listens_for(ReadingSession, "before_flush")
def _refuse_flush(_session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    raise ReadOnlyRequestError(f"a {request.method} request must not write (a flush was attempted)")


@event.listens_for(ReadingSession, "do_orm_execute")
def _refuse_writing_statements(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlyRequestError(f"a {request.method} request must not write: {state.statement}")


class LazyEngine:
    """The app's engine, created by the first caller (thread-safe); no connection until a query runs."""

    def __init__(self, url: str, pool_size: int) -> None:
        self.url = url
        self.pool_size = pool_size
        self._engine: Engine | None = None
        self._reads: Engine | None = None
        self._lock = threading.Lock()

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = create_engine_from_url(self.url, pool_size=self.pool_size, limits=WEB_LIMITS)
            return self._engine

    def reads(self) -> Engine:
        """The same engine and pool, its connections in autocommit on PostgreSQL (SQLite's begin as usual:
        its transactions take the write lock up front, ``queue_core.configure_engine``)."""
        engine = self.get()
        if self._reads is None:
            autocommit = engine.dialect.name == "postgresql"
            self._reads = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
        return self._reads

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()


def init_app(app: Flask, settings: Settings) -> None:
    """Give the app its engine and its request-scoped sessions."""
    # As many pooled connections as request threads: a smaller pool opens and closes one per request
    # beyond it, under exactly the load where that costs most.
    engine = LazyEngine(settings.database_url, pool_size=settings.web_threads)
    info = bootstrap.session_info()
    writing = sessionmaker(expire_on_commit=False, info=info)
    reading = sessionmaker(class_=ReadingSession, expire_on_commit=False, info=info)
    # One session per thread (a gunicorn thread serves one request at a time), removed after each request
    # so the next one starts clean.
    sessions = scoped_session(writing)
    app.extensions[ENGINE_KEY] = engine
    request_session.init_app(app, sessions)

    @app.before_request
    def open_session() -> None:
        # Registered before the hooks that read (the API's access policy, the pages' sign-in check), so
        # the session they get is already the one this request's method calls for.
        if request.method in READING_METHODS:
            sessions.registry.set(reading(bind=engine.reads()))
        else:
            sessions.registry.set(writing(bind=engine.get()))

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
