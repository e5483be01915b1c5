"""Waking workers the moment a task is committed: LISTEN/NOTIFY, with polling as the safety net.

A dedicated connection LISTENs on ``queue_core_tasks``; ``enqueue`` sends the queue's name as payload and
PostgreSQL delivers it at commit. If the connection is lost, the listener reconnects with backoff and wakes
the worker once on reconnecting, since notifications sent while it was away are gone. The worker polls
anyway every ``poll_interval`` seconds, so a lost notification costs latency, never a task.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from queue_core._enqueue import NOTIFY_CHANNEL

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)


def conninfo_for(engine: Engine) -> str:
    """A libpq connection string for the engine's database (psycopg's own, outside SQLAlchemy's pool)."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class NotificationListener(threading.Thread):
    """Calls ``wake()`` whenever a task is committed to one of ``queues``, until ``stopping`` is set."""

    def __init__(
        self,
        engine: Engine,
        queues: Collection[str],
        wake: Callable[[], None],
        stopping: threading.Event,
        max_backoff: float = 5.0,
    ) -> None:
        super().__init__(name="queue-listener", daemon=True)
        self._conninfo = conninfo_for(engine)
        self._queues = set(queues)
        self._wake = wake
        self._stopping = stopping
        self._max_backoff = max_backoff
        self.connected = threading.Event()

    def run(self) -> None:
        import psycopg  # imported here: only PostgreSQL workers listen, and SQLite needs no psycopg

        backoff = 0.1
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.connected.set()
                    self._wake()  # anything committed while we were not listening
                    backoff = 0.1
                    self._listen(connection)
            except Exception as exc:  # whatever broke, listen again: polling covers the gap meanwhile
                self.connected.clear()
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, backoff)
                self._stopping.wait(backoff)
                backoff = min(self._max_backoff, backoff * 2)
        self.connected.clear()

    def _listen(self, connection: psycopg.Connection[object]) -> None:
        while not self._stopping.is_set():
            for notification in connection.notifies(timeout=1.0):
                if notification.payload in self._queues:
                    self._wake()
            # A silent connection may be a dead one (a server that vanished without closing the socket):
            # a round trip every second finds out.
            connection.execute("SELECT 1")
