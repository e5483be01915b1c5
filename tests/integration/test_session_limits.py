"""Session limits: no PostgreSQL session of the shop can hold its locks, or wait for one, without bound.

A process frozen inside a transaction (SIGSTOP, a paused container, a debugger) keeps its row locks
until its session ends; ``idle_in_transaction_session_timeout`` makes the server end it. A session that
waits for such a lock gives up after ``lock_timeout``. The end-to-end proof, with a real worker frozen
in the middle of a stock reservation, is tests/e2e/test_frozen_worker.py.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from shop.cli.worker import WORKER_LIMITS
from shop.database import SessionLimits, create_engine_from_url
from shop.web.database import WEB_LIMITS, engine_of

pytestmark = pytest.mark.postgres_only

SHORT = SessionLimits(lock_timeout_seconds=0.2, idle_in_transaction_seconds=0.5)
SKU = "CRUNCHY-ARMCHAIR"  # a product row: the hottest rows in the shop, locked by every reservation
LOCK = text("SELECT sku FROM products WHERE sku = :sku FOR UPDATE")
LOCK_NOWAIT = text("SELECT sku FROM products WHERE sku = :sku FOR UPDATE NOWAIT")


def settings_of(engine: Engine) -> dict[str, str]:
    names = ("lock_timeout", "idle_in_transaction_session_timeout", "statement_timeout")
    with engine.connect() as connection:
        return {name: str(connection.exec_driver_sql(f"SHOW {name}").scalar()) for name in names}


def test_the_web_app_and_the_worker_connections_carry_their_limits(app: Flask, database_url: str) -> None:
    assert settings_of(engine_of(app)) == {
        "lock_timeout": "500ms",
        "idle_in_transaction_session_timeout": "5s",
        "statement_timeout": "10s",
    }
    assert WEB_LIMITS.settings() == {
        "lock_timeout": 500,
        "idle_in_transaction_session_timeout": 5000,
        "statement_timeout": 10000,
    }
    worker_engine = create_engine_from_url(database_url, limits=WORKER_LIMITS)
    try:
        assert settings_of(worker_engine) == {
            "lock_timeout": "1s",
            "idle_in_transaction_session_timeout": "2s",
            "statement_timeout": "0",
        }
    finally:
        worker_engine.dispose()


def test_a_session_frozen_inside_its_transaction_is_ended_and_its_row_locks_go(database_url: str) -> None:
    limited = create_engine_from_url(database_url, limits=SHORT)
    other = create_engine_from_url(database_url)
    try:
        frozen = limited.connect()
        frozen.begin()
        frozen.execute(LOCK, {"sku": SKU})

        # While the holder is only briefly idle, the row is taken.
        with other.connect() as connection, pytest.raises(OperationalError, match="could not obtain lock"):
            connection.execute(LOCK_NOWAIT, {"sku": SKU})

        time.sleep(1.0)  # twice the holder's idle_in_transaction limit

        with other.begin() as connection:  # the server ended the frozen session: the lock is free
            assert connection.execute(LOCK_NOWAIT, {"sku": SKU}).scalar_one() == SKU
        with pytest.raises(DBAPIError) as ended:  # and the frozen process learns it when it wakes
            frozen.execute(text("SELECT 1"))
        assert ended.value.connection_invalidated
        frozen.close()
    finally:
        limited.dispose()
        other.dispose()


def test_a_wait_for_a_held_row_lock_ends_after_the_lock_timeout(database_url: str) -> None:
    limited = create_engine_from_url(database_url, limits=SHORT)
    other = create_engine_from_url(database_url)
    try:
        with other.begin() as holder:
            holder.execute(LOCK, {"sku": SKU})
            started = time.monotonic()
            with limited.begin() as waiter, pytest.raises(OperationalError) as refused:
                waiter.execute(LOCK, {"sku": SKU})
            waited = time.monotonic() - started
        assert getattr(refused.value.orig, "sqlstate", None) == "55P03"  # lock_not_available
        assert 0.15 < waited < 2.0
    finally:
        limited.dispose()
        other.dispose()
