"""What a handler receives about its task: its identity, cancellation news and progress reports.

Kept apart from the runner so the registry can name the handler's signature without importing the
machinery that calls it.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from queue_core._models import task_table as tasks
from queue_core._outcomes import Cancelled, LeaseLost

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
