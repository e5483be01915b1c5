"""Running claimed tasks: a handler's writes and its task's completion commit together, or not at all.

A worker runs tasks in *commit groups*: one database transaction holds several tasks, one after another,
each inside its own SAVEPOINT:

    BEGIN
      SAVEPOINT; handler(task 1); UPDATE queue_tasks SET state='succeeded' WHERE id=1 AND lease_token=t
                 RELEASE SAVEPOINT
      SAVEPOINT; handler(task 2) raises; ROLLBACK TO SAVEPOINT; UPDATE ... SET state='pending' (retry) ...
      ...
    COMMIT

Each task's business writes and its move to ``succeeded`` still land in the same commit, so a task's
database effects happen exactly once. Grouping matters because a commit waits for the disk: on the
machine in docs/performance.md PostgreSQL manages about 2,700 commits/s from eight clients, which would
cap a one-commit-per-task queue below that. A group closes when it holds ``group_size`` tasks, when
``group_window`` seconds have passed since it began, or as soon as no further task is waiting, so an
idle worker commits each task at once and a busy one shares each commit among many.

A handler that ran no SQL has nothing to roll back, so it needs no SAVEPOINT (SQLAlchemy opens one
lazily, at the first statement); its completion joins one UPDATE for all such tasks at the end of the group.
A task declared ``commits_alone`` gets a transaction of its own and runs in it without a SAVEPOINT.

The completion UPDATE is the fence. It names the lease token from the claim; if the task was rescued and
claimed by another worker meanwhile, it matches no row, the savepoint rolls back, and this worker's late
writes vanish.
"""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, bindparam, event, insert, tuple_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction

from queue_core._claims import ClaimedTask
from queue_core._clock import db_now
from queue_core._enqueue import Lineage, current_lineage
from queue_core._models import error_table as errors
from queue_core._models import in_state
from queue_core._models import task_table as tasks
from queue_core._outcomes import Cancelled, Discard
from queue_core._registry import TaskRegistry
from queue_core._running_task import BEGUN, RunningTask
from queue_core._states import TaskState

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
MAX_TRACEBACK_CHARS = 4000
IN_HANDLER = "queue_core.in_handler"

# Built once: constructing a statement costs more than running it (about 130 us against 75 us here).
_FENCE = (
    (tasks.c.id == bindparam("task_id"))
    & (tasks.c.lease_token == bindparam("token"))
    & in_state(TaskState.RUNNING)
)
SUCCEED = (
    update(tasks)
    .where(_FENCE)
    .values(state=TaskState.SUCCEEDED.value, finished_at=db_now(), lease_token=None)
)
RETRY_LATER = (
    update(tasks)
    .where(_FENCE)
    .values(
        state=TaskState.PENDING.value, run_at=db_now(bindparam("delay")), worker_id=None, lease_token=None
    )
)
END_AS = update(tasks).where(_FENCE).values(state=bindparam("state"), finished_at=db_now(), lease_token=None)
RECORD_ERROR = insert(errors).values(failed_at=db_now())


class Outcome:
    """How one run of a task ended, as seen by the worker (for logs and counters)."""

    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    DEAD = "dead"
    DISCARDED = "discarded"
    CANCELLED = "cancelled"
    LEASE_LOST = "lease_lost"


_WROTE_NOTHING = "wrote_nothing"  # internal: completed later, with the rest of the group


class TaskRunner:
    """Runs claimed tasks in commit groups for one worker."""

    def __init__(
        self,
        engine: Engine,
        registry: TaskRegistry,
        worker_id: uuid.UUID,
        cancel_flags: Callable[[uuid.UUID], threading.Event],
        session_info: Mapping[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.worker_id = worker_id
        self._cancel_flags = cancel_flags
        self.session_info = dict(session_info or {})

    def run_group(
        self,
        first: ClaimedTask,
        next_task: Callable[[], ClaimedTask | None],
        group_size: int,
        deadline: Callable[[], bool],
    ) -> list[tuple[ClaimedTask, str]]:
        """Run ``first`` and then more tasks from ``next_task`` in one transaction; returns their outcomes.

        Every task handed in gets an outcome, whatever happens. If the group cannot commit (a deadlock,
        a deferred constraint, a handler that rolled the session back), each of its tasks runs again in
        a transaction of its own; a task that fails even alone has that failure recorded as its attempt's.
        If the database connection is gone, the tasks are given up: the worker stops vouching for them
        and its heartbeat hands them back once the database answers again.
        """
        group: list[ClaimedTask] = [first]
        outcomes: list[tuple[ClaimedTask, str]] = []
        wrote_nothing: list[ClaimedTask] = []
        try:
            with TaskSession(self.engine, expire_on_commit=False, info=dict(self.session_info)) as session:
                _watch_session(session)
                task: ClaimedTask | None = first
                if self.commits_alone(first):
                    outcomes.append((first, self._run_one(session, first, alone=True)))
                    task = None
                while task is not None:
                    outcome = self._run_one(session, task, alone=False)
                    if outcome is _WROTE_NOTHING:
                        wrote_nothing.append(task)
                    else:
                        outcomes.append((task, outcome))
                    if len(group) >= group_size or deadline():
                        break
                    task = next_task()
                    if task is not None:
                        group.append(task)
                outcomes += self._succeed_all(session, wrote_nothing)
                session.commit()
            return outcomes
        except Exception as exc:
            if _connection_lost(exc):
                log.warning(
                    "database connection lost with %d task(s) in hand: %s", len(group), _one_line(exc)
                )
                return [(t, Outcome.LEASE_LOST) for t in group]
            if len(group) > 1:
                log.info("commit group of %d failed (%s); running each alone", len(group), _one_line(exc))
                return [result for t in group for result in self.run_group(t, _none, 1, _always)]
            return [(first, self._fail_alone(first, exc))]

    def _fail_alone(self, task: ClaimedTask, exc: BaseException) -> str:
        """Record a failure that happened outside the handler's savepoint, in a fresh transaction."""
        log.warning("task %s (%s) could not complete: %s", task.id, task.name, _one_line(exc))
        try:
            with Session(self.engine) as session, session.begin():
                return self._fail(session, task, exc)
        except Exception as second:
            log.warning("could not record the failure of task %s either: %s", task.id, _one_line(second))
            return Outcome.LEASE_LOST

    def _succeed_all(self, session: Session, group: list[ClaimedTask]) -> list[tuple[ClaimedTask, str]]:
        """One fenced UPDATE completing every task of the group whose handler ran no SQL."""
        if not group:
            return []
        fence = tuple_(tasks.c.id, tasks.c.lease_token).in_([(t.id, t.lease_token) for t in group])
        done = set(
            session.scalars(
                update(tasks)
                .where(fence, in_state(TaskState.RUNNING))
                .values(state=TaskState.SUCCEEDED.value, finished_at=db_now(), lease_token=None)
                .returning(tasks.c.id)
            )
        )
        return [(t, Outcome.SUCCEEDED if t.id in done else Outcome.LEASE_LOST) for t in group]

    def commits_alone(self, task: ClaimedTask) -> bool:
        """Whether ``task`` gets a transaction of its own rather than a place in a commit group."""
        return self.registry.get(task.name).options.commits_alone

    def _running_task(self, session: Session, task: ClaimedTask) -> RunningTask:
        running = RunningTask(
            id=task.id,
            name=task.name,
            queue=task.queue,
            attempt=task.attempt,
            max_attempts=task.max_attempts,
            args=task.args,
            parent_id=task.parent_id,
            root_id=task.root_id,
            lease_token=task.lease_token,
            _engine=self.engine,
            _cancel=self._cancel_flags(task.id),
            _session=session,
            _session_info=self.session_info,
        )
        if task.cancel_requested:
            running._cancel.set()
        return running

    def _run_one(self, session: Session, task: ClaimedTask, *, alone: bool) -> str:
        """Run one task's handler and complete it, fenced; returns its outcome.

        In a commit group the task runs inside a SAVEPOINT, so that its failure undoes its writes alone.
        A ``commits_alone`` task runs in the transaction itself (two round trips fewer, and nothing else
        to keep), and a failure rolls the whole transaction back before it is recorded.
        """
        definition = self.registry.get(task.name)
        running = self._running_task(session, task)
        session.expire_all()  # the handler reads its object fresh, never from an earlier task's load
        lineage = current_lineage.set(Lineage(parent_id=task.id, root_id=task.root_id or task.id))
        # Either way begun lazily: no SQL, and for a task alone no connection, until the handler's first
        # statement.
        transaction = session.begin() if alone else session.begin_nested()
        session.info[IN_HANDLER] = True
        try:
            running.raise_if_cancel_requested()
            definition.handler(running, session)
            session.info[IN_HANDLER] = False
            if not transaction.is_active:
                raise HandlerBrokeTransactionError(
                    f"task {task.id} ({task.name}): the handler rolled back or closed its session"
                )
            session.flush()
            if not alone and transaction not in session.info[BEGUN]:
                transaction.commit()  # never began: no SQL was sent, there is nothing to release
                return _WROTE_NOTHING
            if not self._fenced(session, SUCCEED, task):
                transaction.rollback()
                log.warning("task %s (%s) lost its lease; its writes were rolled back", task.id, task.name)
                return Outcome.LEASE_LOST
            if not alone:
                transaction.commit()  # RELEASE SAVEPOINT; the group's transaction commits later
            return Outcome.SUCCEEDED
        except HandlerBrokeTransactionError:
            raise  # the group's transaction is gone: run_group runs each task alone
        except Discard as exc:
            transaction.rollback()
            return self._end(session, task, TaskState.DISCARDED, Outcome.DISCARDED, exc)
        except Cancelled:
            transaction.rollback()
            return self._end(session, task, TaskState.CANCELLED, Outcome.CANCELLED, None)
        except BaseException as exc:
            # Any failure of the handler, or of completing it (a database error the handler swallowed
            # leaves the savepoint unusable), is this task's failed attempt; the group goes on, unless
            # it is the group's own connection that died.
            if _connection_lost(exc) and _session_connection_lost(session):
                raise
            transaction.rollback()
            return self._fail(session, task, exc)
        finally:
            session.info[IN_HANDLER] = False
            current_lineage.reset(lineage)

    def _fail(self, session: Session, task: ClaimedTask, exc: BaseException) -> str:
        policy = self.registry.get(task.name).options.retry
        if task.attempt >= task.max_attempts:
            return self._end(session, task, TaskState.DEAD, Outcome.DEAD, exc)
        delay = policy.delay_after(task.attempt)
        if not self._fenced(session, RETRY_LATER, task, delay=delay):
            return Outcome.LEASE_LOST
        self._record_error(session, task, exc)
        log.info(
            "task %s (%s) attempt %d failed, retrying in %.1fs: %s",
            task.id,
            task.name,
            task.attempt,
            delay,
            _one_line(exc),
        )
        return Outcome.RETRYING

    def _end(
        self, session: Session, task: ClaimedTask, state: TaskState, outcome: str, exc: BaseException | None
    ) -> str:
        if not self._fenced(session, END_AS, task, state=state.value):
            return Outcome.LEASE_LOST
        if exc is not None:
            self._record_error(session, task, exc)
        if state is TaskState.DEAD:
            log.warning(
                "task %s (%s) is dead after %d attempts: %s", task.id, task.name, task.attempt, _one_line(exc)
            )
        return outcome

    def _fenced(self, session: Session, statement: Any, task: ClaimedTask, **params: Any) -> bool:
        """Run a fenced UPDATE: it moves the task on only if this worker still holds it. True if it did."""
        result = session.execute(statement, {"task_id": task.id, "token": task.lease_token, **params})
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def _record_error(self, session: Session, task: ClaimedTask, exc: BaseException) -> None:
        session.execute(
            RECORD_ERROR,
            {
                "task_id": task.id,
                "attempt": task.attempt,
                "worker_id": self.worker_id,
                "error_type": _qualified_name(type(exc))[:200],
                "message": _printable(_describe(exc))[:MAX_MESSAGE_CHARS],
                "traceback": _printable(_short_traceback(exc)),
            },
        )


class TaskSession(Session):
    """The session a handler gets: ``commit()`` is refused while the handler runs.

    A handler that committed would split its writes from its task's completion. Savepoints of its own
    (``with session.begin_nested(): ...``) are fine: they do not go through ``Session.commit``.
    """

    def commit(self) -> None:
        if self.info.get(IN_HANDLER):
            raise RuntimeError(
                "a task handler must not commit: the worker commits its writes with the task's completion"
            )
        super().commit()


def _watch_session(session: Session) -> None:
    """Track which (nested) transactions really began: a task whose savepoint never did wrote nothing."""
    session.info[BEGUN] = weakref.WeakSet()

    def after_begin(current: Session, transaction: SessionTransaction, _connection: Any) -> None:
        current.info[BEGUN].add(transaction)

    event.listen(session, "after_begin", after_begin)


class HandlerBrokeTransactionError(RuntimeError):
    """A handler ended the session's transaction (``session.rollback()``), taking its group with it."""


def _connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _session_connection_lost(session: Session) -> bool:
    """Whether the group's own connection died (a handler may also lose a connection of its own)."""
    try:
        return session.connection().invalidated
    except Exception:
        return True


def _none() -> None:
    return None


def _always() -> bool:
    return True


def _describe(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ fails still deserves a record
        return f"<{type(exc).__name__} with an unprintable message>"


def _printable(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return text.replace("\x00", "\\0")


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _short_traceback(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-12))
    return text[-MAX_TRACEBACK_CHARS:]


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"[:300]
