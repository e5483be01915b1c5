"""Acting on tasks from outside a worker: cancel, re-queue. Each joins the caller's transaction.

Because they take the caller's session, a business operation and the task operation commit together:
cancelling a payment and cancelling the task its ``processing_task_id`` points at is one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select, update
from sqlalchemy.orm import Session

from queue_core._clock import db_now
from queue_core._models import in_state
from queue_core._models import task_table as tasks
from queue_core._states import FINISHED_STATES, TaskState


class TaskNotFoundError(LookupError):
    """No task has this ID (it may have been pruned)."""


def cancel(session: Session | Connection, task_id: uuid.UUID) -> TaskState:
    """Cancel a task; returns its state afterwards.

    A pending task is ``cancelled`` at once. A running one gets ``cancel_requested``: its handler sees it
    through ``RunningTask.cancel_requested`` within a heartbeat and may stop (ending ``cancelled``) or
    finish. A finished task is left as it is.
    """
    cancelled = session.execute(
        update(tasks)
        .where(tasks.c.id == task_id, in_state(TaskState.PENDING))
        .values(state=TaskState.CANCELLED.value, finished_at=db_now())
    )
    if cancelled.rowcount == 1:  # type: ignore[attr-defined]
        return TaskState.CANCELLED
    session.execute(
        update(tasks).where(tasks.c.id == task_id, in_state(TaskState.RUNNING)).values(cancel_requested=True)
    )
    return state_of(session, task_id)


def requeue(session: Session | Connection, task_id: uuid.UUID, *, extra_attempts: int = 1) -> TaskState:
    """Put a finished task (typically ``dead``) back to ``pending`` with ``extra_attempts`` more tries.

    Its error history stays and its expiry is cleared. Returns the state afterwards; a pending or running
    task is left alone.
    """
    if extra_attempts < 1:
        raise ValueError("extra_attempts must be at least 1")
    session.execute(
        update(tasks)
        .where(tasks.c.id == task_id, in_state(*FINISHED_STATES))
        .values(
            state=TaskState.PENDING.value,
            run_at=db_now(),
            finished_at=None,
            started_at=None,
            expires_at=None,  # a deadline that passed would expire it again at once
            cancel_requested=False,
            max_attempts=tasks.c.attempts + extra_attempts,
            progress=None,
            progress_message=None,
        )
    )
    return state_of(session, task_id)


def state_of(session: Session | Connection, task_id: uuid.UUID) -> TaskState:
    """The task's current state; raises ``TaskNotFoundError``."""
    state = session.execute(select(tasks.c.state).where(tasks.c.id == task_id)).scalar_one_or_none()
    if state is None:
        raise TaskNotFoundError(f"no task {task_id}")
    return TaskState(state)


def states_of(
    session: Session | Connection, task_ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID, TaskState]:
    """The current state of each task in ``task_ids`` (``None`` entries skipped), in one query.

    A business list page shows each row's task state with this; IDs of tasks that no longer exist are
    missing from the result.
    """
    wanted = {task_id for task_id in task_ids if task_id is not None}
    if not wanted:
        return {}
    rows = session.execute(select(tasks.c.id, tasks.c.state).where(tasks.c.id.in_(wanted)))
    return {task_id: TaskState(state) for task_id, state in rows}


@dataclass(frozen=True)
class TaskPointer:
    """A task a business row points at, with the task's state now (``None``: the queue no longer has it)."""

    id: uuid.UUID
    state: TaskState | None


def task_pointers(
    session: Session | Connection, task_ids: Iterable[uuid.UUID | None]
) -> Callable[[uuid.UUID | None], TaskPointer | None]:
    """Read the states of ``task_ids`` in one query; returns what turns a pointer into a ``TaskPointer``.

    For a page of business rows: ``pointer = task_pointers(session, [row.task_id for row in rows])``, then
    ``pointer(row.task_id)`` is None for an empty column, else the task's ID and current state.
    """
    states = states_of(session, task_ids)

    def pointer(task_id: uuid.UUID | None) -> TaskPointer | None:
        return None if task_id is None else TaskPointer(task_id, states.get(task_id))

    return pointer
