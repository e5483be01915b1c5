"""A worker starting while PostgreSQL is down or restarting waits for it; a misconfigured one fails at once.

A running worker rides out a database outage of any length (its session lock and heartbeats retry), so a
starting one does too: a worker deployed beside a database that is still starting, or started during a
restart, is not an error. ``start_when_reachable`` retries the worker's first contact (session lock and
registration) with capped, jittered exponential backoff, logging why at most every ``LOG_EVERY_SECONDS``,
for ``WorkerSettings.startup_patience`` seconds (None: as long as it takes), and returns early when the
worker is stopped. An error that waiting cannot cure (a wrong password, a missing database or table) is
raised at once: it needs an operator, not time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

log = logging.getLogger("queue_core._worker")

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 10.0
LOG_EVERY_SECONDS = 5.0

# SQLSTATEs of a server that is there but not taking work now: 08 connection exceptions, 53300
# too_many_connections, 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now.
TRANSIENT_SQLSTATE_CLASSES = ("08",)
TRANSIENT_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03"})
# libpq reports a connection refused during start-up without a SQLSTATE, only the server's message, so
# these are told apart by their (English) text: 28P01 and 28000 (authentication, pg_hba.conf, unknown or
# non-login role), 3D000 (no such database), 42501 (no CONNECT privilege), and libpq's own refusals of the
# connection string. A message not listed here counts as "not reachable yet": waiting is the safe side.
MISCONFIGURATION_MESSAGES = (
    "authentication failed",
    "no pg_hba.conf entry",
    "no password supplied",
    "does not exist",
    "is not permitted to log in",
    "permission denied",
    "invalid ",
)


def not_reachable_yet(error: BaseException) -> str | None:
    """Why the database cannot be used *yet* (first line of the driver's message); None if waiting
    cannot help: a misconfiguration, a missing schema, or an error that is not about the connection."""
    import psycopg  # only PostgreSQL workers wait; SQLite needs no psycopg

    cause = error.orig if isinstance(error, DBAPIError) else error
    if not isinstance(cause, psycopg.OperationalError):
        return None  # ProgrammingError (undefined table, bad URI parameter) and the rest: not an outage
    reason = _first_line(cause)
    sqlstate = cause.sqlstate
    if sqlstate is not None:
        transient = sqlstate in TRANSIENT_SQLSTATES or sqlstate.startswith(TRANSIENT_SQLSTATE_CLASSES)
        return reason if transient else None
    return None if any(text in reason for text in MISCONFIGURATION_MESSAGES) else reason


def retry_delay(failures: int, rng: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``failures`` failed ones: 0.5 s doubling up to 10 s, of which
    a random half is taken off so that workers started together do not knock together."""
    ceiling: float = min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2.0 ** max(0, failures - 1))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def start_when_reachable(
    start: Callable[[], None], stopping: threading.Event, patience: float | None
) -> bool:
    """Call ``start`` until it succeeds (True) or ``stopping`` is set while waiting (False).

    Raises ``start``'s error as it came when waiting cannot cure it, or once ``patience`` seconds have gone
    by. A failed ``start`` must leave nothing held: the next attempt starts afresh.
    """
    began = time.monotonic()
    failures = 0
    logged_at = -LOG_EVERY_SECONDS
    while True:
        try:
            start()
        except Exception as error:
            reason = not_reachable_yet(error)
            waited = time.monotonic() - began
            if reason is None:
                raise
            if patience is not None and waited >= patience:
                log.error(
                    "database not reachable (%s); gave up after %.1f s (startup_patience)", reason, waited
                )
                raise
            failures += 1
            delay = retry_delay(failures)
            if patience is not None:
                delay = min(delay, patience - waited)  # the last attempt comes as patience runs out
            if time.monotonic() - logged_at >= LOG_EVERY_SECONDS:
                log.warning("database not reachable yet (%s); retrying in %.1f s", reason, delay)
                logged_at = time.monotonic()
            if stopping.wait(delay):
                return False
        else:
            if failures:
                log.info("database reachable after %.1f s of waiting", time.monotonic() - began)
            return True


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
