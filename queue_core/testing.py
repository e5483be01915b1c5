"""Helpers for testing code that uses queue_core: run due tasks in the test, and see what was enqueued.

``drain(engine, registry)`` runs every due task of ``registry`` in the calling thread, one task per
transaction, through the worker's own claim and fenced completion (``_claims.claim`` and
``_execution.TaskRunner``): a handler that fails is retried or ends ``dead`` exactly as under a ``Worker``,
and tasks that handlers enqueue run too, until nothing is due. No threads, no heartbeat, no sleeping.

``drain(..., advance=60)`` also runs tasks due within the next 60 seconds: delays and retry backoffs up to
that long stop mattering. It works by moving each such task's ``run_at`` to now, earliest first, when
nothing else is due, so tasks still run in the order a clock would have reached them. The limits of that:

- ``run_at`` of a task run that way records when it ran, not when it was scheduled for;
- ``advance`` is a window, not a clock: it slides with the drain, so every retry whose backoff is at
  most ``advance`` seconds runs, however many attempts that takes (a task that keeps failing ends
  ``dead`` within one drain);
- nothing else sees the shifted time: expiry, periodic schedules and a handler's own reading of the clock
  use the real one, so a task whose ``expires_at`` falls inside the window still runs;
- per-name rate and concurrency limits apply as in production, so a drain may stop with tasks of a
  rate-limited name still due.

``enqueued(session)`` and ``assert_enqueued(session, name)`` read the tasks the session can see, including
its own uncommitted ones; ``since=mark(session)`` keeps only those enqueued after the mark, for example
those of one transaction or one request.

On SQLite a test must not hold a transaction open while it drains: SQLite has one writer at a time, and the
drain's transactions would wait for it.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session

from queue_core._claims import ClaimedTask, claim, unclaim
from queue_core._clock import db_now
from queue_core._execution import Outcome, TaskRunner
from queue_core._models import error_table as errors
from queue_core._models import in_state
from queue_core._models import task_table as tasks
from queue_core._registry import TaskRegistry
from queue_core._states import TaskState

__all__ = [
    "DrainLimitError",
    "DrainResult",
    "EnqueuedTask",
    "Mark",
    "TaskRun",
    "assert_enqueued",
    "drain",
    "enqueued",
    "mark",
]

DEFAULT_MAX_RUNS = 1000


@dataclass(frozen=True)
class TaskRun:
    """One attempt of one task during a drain, and how it ended."""

    task_id: uuid.UUID
    name: str
    attempt: int
    # "succeeded", "retrying", "dead", "discarded", "cancelled" or "lease_lost": a worker's outcomes.
    outcome: str
    error: str | None = None  # "ErrorType: message" of a failed, discarded or dead attempt


@dataclass(frozen=True)
class DrainResult:
    """Every attempt a drain ran, in the order it ran them."""

    runs: tuple[TaskRun, ...]

    @property
    def counts(self) -> dict[str, int]:
        """How many attempts ended each way: ``{"succeeded": 3, "retrying": 1}``."""
        return dict(Counter(run.outcome for run in self.runs))

    @property
    def failures(self) -> list[TaskRun]:
        """The attempts that did not succeed: the first thing to print when a test fails."""
        return [run for run in self.runs if run.outcome != Outcome.SUCCEEDED]

    def of(self, task_id: uuid.UUID) -> list[TaskRun]:
        """The attempts of one task, in order."""
        return [run for run in self.runs if run.task_id == task_id]

    def __len__(self) -> int:
        return len(self.runs)


class DrainLimitError(RuntimeError):
    """A drain ran ``max_runs`` attempts and tasks were still due: a handler that keeps enqueueing."""


def drain(
    engine: Engine,
    registry: TaskRegistry,
    *,
    advance: float | dt.timedelta = 0.0,
    queues: Sequence[str] | None = None,
    session_info: Mapping[str, Any] | None = None,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> DrainResult:
    """Run every due task of ``registry`` here, one at a time, until none is due; returns what ran.

    ``advance`` (seconds) makes tasks due within that window count as due (see the module docstring for
    how, and its limits). ``queues`` defaults to every queue the registry's tasks use; ``session_info`` is
    copied into each handler's ``Session.info``, as ``Worker`` does.
    """
    window = advance.total_seconds() if isinstance(advance, dt.timedelta) else float(advance)
    if window < 0:
        raise ValueError("advance must not be negative")
    drainer = uuid.uuid4()
    runner = TaskRunner(engine, registry, drainer, _fresh_flag, session_info)
    options = {definition.name: definition.options for definition in registry.definitions}
    chosen = list(queues if queues is not None else registry.queues())
    runs: list[TaskRun] = []
    while True:
        claimed = claim(
            engine, worker_id=drainer, lease_token=uuid.uuid4(), queues=chosen, options=options, limit=1
        )
        if not claimed:
            if window > 0 and _bring_forward_next(engine, chosen, list(options), window):
                continue
            return DrainResult(tuple(runs))
        if len(runs) >= max_runs:
            _hand_back(engine, claimed[0])
            raise DrainLimitError(f"{max_runs} attempts ran and tasks are still due: {_summary(runs)}")
        for task, outcome in runner.run_group(claimed[0], _nothing_more, 1, _always):
            runs.append(TaskRun(task.id, task.name, task.attempt, outcome, _error_of(engine, task, outcome)))


def _bring_forward_next(engine: Engine, queues: list[str], names: list[str], window: float) -> bool:
    """Make the earliest task due within ``window`` seconds due now; False if there is none."""
    with engine.begin() as connection:
        next_id = connection.scalar(
            select(tasks.c.id)
            .where(
                in_state(TaskState.PENDING),
                tasks.c.queue.in_(queues),
                tasks.c.name.in_(names),
                tasks.c.run_at > db_now(),  # due ones the claim passed over (rate-limited) stay put
                tasks.c.run_at <= db_now(window),
            )
            .order_by(tasks.c.run_at, tasks.c.priority.desc(), tasks.c.id)
            .limit(1)
        )
        if next_id is None:
            return False
        connection.execute(update(tasks).where(tasks.c.id == next_id).values(run_at=db_now()))
    return True


def _hand_back(engine: Engine, task: ClaimedTask) -> None:
    """Return a claimed task that will not run to ``pending``, its attempt uncounted."""
    with engine.begin() as connection:
        unclaim(connection, (tasks.c.id == task.id) & (tasks.c.lease_token == task.lease_token))


def _error_of(engine: Engine, task: ClaimedTask, outcome: str) -> str | None:
    if outcome in (Outcome.SUCCEEDED, Outcome.CANCELLED, Outcome.LEASE_LOST):
        return None
    with engine.connect() as connection:
        row = connection.execute(
            select(errors.c.error_type, errors.c.message)
            .where(errors.c.task_id == task.id, errors.c.attempt == task.attempt)
            .order_by(errors.c.id.desc())
            .limit(1)
        ).first()
    return None if row is None else f"{row.error_type}: {row.message}"


def _summary(runs: list[TaskRun]) -> str:
    names = Counter(run.name for run in runs)
    return ", ".join(f"{name} x{count}" for name, count in names.most_common(5))


def _fresh_flag(_task_id: uuid.UUID) -> threading.Event:
    """Nobody can ask a drained task to stop while it runs: a cancellation is read from its row."""
    return threading.Event()


def _nothing_more() -> ClaimedTask | None:
    return None


def _always() -> bool:
    return True


# -- what was enqueued ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """A moment on the database's clock: ``enqueued(session, since=mark)`` sees only later tasks."""

    at: dt.datetime


@dataclass(frozen=True)
class EnqueuedTask:
    """A task as ``enqueued`` reports it."""

    id: uuid.UUID
    name: str
    queue: str
    state: TaskState
    priority: int
    args: dict[str, Any] | None
    run_at: dt.datetime
    parent_id: uuid.UUID | None


def mark(session: Session | Connection) -> Mark:
    """Now, as the database sees it; tasks enqueued from here on are ``since`` this mark."""
    now = session.execute(select(db_now())).scalar_one()
    return Mark(now)


def enqueued(
    session: Session | Connection, name: str | None = None, *, since: Mark | None = None
) -> list[EnqueuedTask]:
    """The tasks ``session`` can see (its own uncommitted ones included), oldest first.

    ``name`` keeps one task name; ``since`` keeps the tasks enqueued at or after a ``mark``.
    """
    query = select(
        tasks.c.id,
        tasks.c.name,
        tasks.c.queue,
        tasks.c.state,
        tasks.c.priority,
        tasks.c.args,
        tasks.c.run_at,
        tasks.c.parent_id,
    ).order_by(tasks.c.created_at, tasks.c.id)
    if name is not None:
        query = query.where(tasks.c.name == name)
    if since is not None:
        query = query.where(tasks.c.created_at >= since.at)
    return [EnqueuedTask(**{**row._mapping, "state": TaskState(row.state)}) for row in session.execute(query)]


def assert_enqueued(
    session: Session | Connection,
    name: str,
    *,
    count: int = 1,
    args: Mapping[str, Any] | None = None,
    since: Mark | None = None,
) -> list[EnqueuedTask]:
    """Fail unless exactly ``count`` tasks named ``name`` were enqueued; returns them.

    ``args`` keeps only tasks whose args contain these items. The failure message lists what was
    enqueued instead, so a wrong name or a missing enqueue is seen at once.
    """
    seen = enqueued(session, since=since)
    matching = [
        task
        for task in seen
        if task.name == name
        and all((task.args or {}).get(key) == value for key, value in (args or {}).items())
    ]
    if len(matching) != count:
        wanted = f"{count} task(s) {name!r}" + (f" with args {dict(args)!r}" if args else "")
        listed = ", ".join(f"{task.name} ({task.state})" for task in seen) or "nothing"
        raise AssertionError(f"expected {wanted} enqueued, found {len(matching)}; enqueued: {listed}")
    return matching
