"""A worker's proof of life that PostgreSQL keeps itself: a session advisory lock (ADR 0012).

A worker holds ``pg_advisory_lock(LOCK_CLASS, key)`` on a connection of its own for as long as it lives,
and writes ``key`` into its row only while it holds the lock. PostgreSQL releases the lock the moment
the worker's process dies (the kernel closes its socket) or its backend is terminated, so a rescuer that
can take the lock knows the worker is gone, without waiting for its lease. A frozen process (SIGSTOP)
keeps its socket and so its lock: only its lease gives it away.

The lock connection is watched once a second. When it is lost while the process lives, the worker
counts as dead: it stops vouching (it neither claims nor heartbeats), a rescuer that finds the old lock
free takes its tasks, and the fence keeps each task's effects exactly once. The thread then takes a new
lock under a fresh key and calls ``on_new_lock(key)``, with which the worker hands back whatever it
still held in the database and writes the new key into its row (registering again if a rescuer removed
it): so a lost lock connection costs the tasks in hand, whoever notices first.

The connection must reach PostgreSQL directly or through a session-pooling proxy: a transaction-pooling
PgBouncer hands the server session to other clients between statements, so the lock would neither
follow this worker nor die with it. ``WorkerSettings(fast_rescue=False)`` turns this off.
"""

from __future__ import annotations

import logging
import secrets
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from queue_core._listener import conninfo_for

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("queue_core._worker")

# The first key of every worker's lock: "qcor" in ASCII, recognisable in pg_locks as its classid. The two-key
# form keeps these locks apart from any single-bigint advisory lock an application takes.
LOCK_CLASS = 0x71636F72
CHECK_EVERY_SECONDS = 1.0
# How the lock's connection shows in pg_stat_activity: by name, and by a check no other connection sends.
APPLICATION_NAME = "queue_core session lock"
CHECK = "SELECT 'queue_core session lock held'"


def _keepalives(lease_seconds: float) -> dict[str, int]:
    """TCP settings under which a peer that vanishes without closing the socket is given up after about
    ``lease_seconds``: the lease stays what decides for a machine that is gone or paused (ADR 0002), and
    the lock only speeds up the case where the operating system closes the socket (a killed process, a
    terminated backend). ``tcp_user_timeout`` bounds a check sent into a black hole the same way."""
    idle = max(1, round(lease_seconds / 2))
    interval = max(1, round(lease_seconds / 10))
    return {"idle": idle, "interval": interval, "count": 5, "user_timeout_ms": round(lease_seconds * 1000)}


def new_lock_key() -> int:
    """A random positive int4: pg_locks shows it as ``objid`` unchanged."""
    return 1 + secrets.randbelow(2**31 - 1)


class SessionLock(threading.Thread):
    """Holds this worker's advisory lock and watches its connection until ``stopping`` is set.

    ``acquire()`` takes the first lock before the worker registers; the thread then keeps it, taking a new
    one after a loss. ``release()`` lets it go: for good once the worker has stopped, or, while it runs,
    so that the thread takes a fresh one (a worker whose row was removed must not register again under a
    lock it may no longer hold).
    """

    def __init__(
        self,
        engine: Engine,
        stopping: threading.Event,
        on_new_lock: Callable[[int], None],
        *,
        lease_seconds: float,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__(name="queue-session-lock", daemon=True)
        self._conninfo = conninfo_for(engine)
        self._keepalives = _keepalives(lease_seconds)
        self._stopping = stopping
        self._on_new_lock = on_new_lock
        self._max_backoff = max_backoff
        self._guard = threading.Lock()  # the connection is the thread's, but release() closes it
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._key: int | None = None
        self.held = threading.Event()

    @property
    def key(self) -> int | None:
        """The key of the lock held now; None while none is. Read without waiting for a check in progress."""
        return self._key

    def acquire(self, attempts: int = 10) -> None:
        """Take a lock under a fresh key (another if that one is taken); raise if the database is away.

        The error is SQLAlchemy's ``OperationalError`` wrapping the driver's, as for every other database
        error a worker raises, so a caller handles one kind.
        """
        import psycopg

        for _ in range(attempts):
            try:
                taken = self._take(new_lock_key())
            except psycopg.Error as error:
                raise OperationalError("SELECT pg_try_advisory_lock(...)", None, error) from error
            if taken:
                return
        raise RuntimeError(f"no free session lock key after {attempts} attempts")

    def release(self) -> None:
        """Close the lock's connection: PostgreSQL lets the lock go, and rescuers see this worker gone."""
        with self._guard:
            self.held.clear()
            self._key = None
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def run(self) -> None:
        backoff = 0.1
        while not self._stopping.is_set():
            if self.held.is_set() and self._still_held():
                backoff = 0.1
                continue
            if self._stopping.is_set():  # released for the worker's shutdown: nothing to take back
                break
            try:
                key = new_lock_key()
                if self._take(key):
                    self._on_new_lock(key)
                    log.warning("took a new session lock: this worker vouches for its tasks again")
                    continue
            except Exception as exc:  # the database may be away: try again, the lease covers the gap
                log.warning("could not take a session lock (%s); retrying in %.1fs", exc, backoff)
                self.release()  # a lock its row does not name vouches for nothing
            self._stopping.wait(backoff)
            backoff = min(self._max_backoff, backoff * 2)

    def _take(self, key: int) -> bool:
        import psycopg  # imported here: only PostgreSQL workers hold a session lock; SQLite needs no psycopg

        tcp = self._keepalives
        conninfo = psycopg.conninfo.make_conninfo(
            self._conninfo,
            connect_timeout=5,
            keepalives=1,
            keepalives_idle=tcp["idle"],
            keepalives_interval=tcp["interval"],
            keepalives_count=tcp["count"],
            tcp_user_timeout=tcp["user_timeout_ms"],
            # The server's side of the same: it ends the session (and frees the lock) on the same terms.
            options=f"-c tcp_keepalives_idle={tcp['idle']} -c tcp_keepalives_interval={tcp['interval']}"
            f" -c tcp_keepalives_count={tcp['count']} -c tcp_user_timeout={tcp['user_timeout_ms']}",
            application_name=APPLICATION_NAME,
        )
        connection = psycopg.connect(conninfo, autocommit=True)
        try:
            row = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key)).fetchone()
        except BaseException:
            connection.close()
            raise
        with self._guard:
            if not (row and row[0]) or self._stopping.is_set():  # taken, or the worker stopped meanwhile
                connection.close()
                return False
            if self._connection is not None:  # never expected: one lock at a time
                self._connection.close()
            self._connection, self._key = connection, key
            self.held.set()
        return True

    def _still_held(self) -> bool:
        """Wait up to a second for the server to speak (it only does to end the session), then ask it.

        PostgreSQL cannot take a session lock from a live session, so a session that answers holds it."""
        with self._guard:
            connection = self._connection
        if connection is None:
            return False
        try:
            select.select([connection.fileno()], [], [], CHECK_EVERY_SECONDS)
            with self._guard:
                if self._connection is not connection:
                    return False  # released meanwhile
                connection.execute(CHECK)
            return True
        except Exception as exc:
            with self._guard:
                if self._connection is not connection:
                    return False  # released meanwhile: nothing was lost
                self.held.clear()
                self._connection, self._key = None, None
            log.warning("lost the session lock's connection (%s): this worker counts as dead", exc)
            connection.close()
            return False
