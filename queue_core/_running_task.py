"""What a handler receives about its task: its identity, cancellation news, progress reports, and the two
helpers of a handler that calls another service in atomic phases.

Kept apart from the runner so the registry can name the handler's signature without importing the
machinery that calls it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from queue_core._models import task_table as tasks
from queue_core._outcomes import Cancelled, LeaseLost, TransactionHeldError

BEGUN = "queue_core.begun_transactions"


@dataclass
class RunningTask:
    """What a handler receives about its task. The business object is found by ``id``, not in ``args``."""

    id: uuid.UUID
    name: str
    queue: str
    attempt: int
    max_attempts: int
    args: dict[str, Any] | None
    parent_id: uuid.UUID | None
    root_id: uuid.UUID | None
    lease_token: uuid.UUID
    _engine: Engine = field(repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _session: Session | None = field(default=None, repr=False)
    _session_info: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def cancel_requested(self) -> bool:
        """True once someone asked to cancel this task (the worker's heartbeat brings the news)."""
        return self._cancel.is_set()

    def raise_if_cancel_requested(self) -> None:
        """Stop here if cancellation was requested: the task ends ``cancelled``, its writes rolled back."""
        if self._cancel.is_set():
            raise Cancelled(f"cancellation of task {self.id} was requested")

    def report_progress(self, fraction: float, message: str | None = None) -> None:
        """Record progress (0..1), at once, in a small transaction of its own, visible while the handler
        runs. On SQLite, once the handler's transaction holds the only write lock, another transaction
        would wait for it forever; the report then goes through the handler's session instead and is
        visible when the task commits."""
        statement = (
            update(tasks)
            .where(tasks.c.id == self.id, tasks.c.lease_token == self.lease_token)
            .values(progress=min(1.0, max(0.0, fraction)), progress_message=message)
        )
        session = self._session
        if self._engine.dialect.name == "sqlite" and session is not None and session.info.get(BEGUN):
            result = session.execute(statement)
        else:
            with self._engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                result = connection.execute(statement)
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(f"task {self.id} is no longer held by this worker")

    @contextmanager
    def short_transaction(self) -> Iterator[Session]:
        """A session of its own, in a transaction committed on leaving the block: a remote call's first phase.

        A handler that calls another service reads what the call needs here (or commits an intent),
        then calls ``outside_transaction``, then records the answer through its own session, whose
        transaction completes the task under the lease fence. Nothing written here is fenced: it must be
        right for any attempt to write (a recovery point, never the outcome). The session gets the
        worker's ``session_info`` and keeps its objects loaded after the commit.
        """
        self._refuse_if_transaction_held("open a short transaction")
        session = Session(self._engine, info=dict(self._session_info), expire_on_commit=False)
        with session, session.begin():
            yield session

    @contextmanager
    def outside_transaction(self) -> Iterator[None]:
        """Mark the block that waits on another service; ``TransactionHeldError`` if the handler's session
        holds a transaction (and with it a pooled connection, and any row locks) at that point.

        The check makes a handler that would hold its transaction across the call fail its first test
        rather than hold back vacuum, the connection pool and every writer of its rows in production.
        """
        self._refuse_if_transaction_held("call another service")
        yield

    def _refuse_if_transaction_held(self, what: str) -> None:
        session = self._session
        begun = session.info.get(BEGUN, ()) if session is not None else ()
        if any(transaction.is_active for transaction in begun):
            raise TransactionHeldError(
                f"task {self.id} ({self.name}) would {what} while its session holds a transaction: use "
                "the handler's session only after the remote call, and declare the task commits_alone=True "
                "so that no other task's transaction is open either"
            )
