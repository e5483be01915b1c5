"""The life of a task, as a set of states and the moves between them."""

from __future__ import annotations

import enum


class TaskState(enum.StrEnum):
    """Where a task is in its life.

    ``pending`` -> ``running`` -> ``succeeded``; a failed attempt goes back to ``pending`` (with a backoff)
    until its attempts are used up, then to ``dead``. ``cancelled``, ``expired`` and ``discarded`` end a
    task without success. Only ``dead`` tasks, and finished ones by choice, are put back to ``pending``.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DISCARDED = "discarded"


FINISHED_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.DEAD, TaskState.CANCELLED, TaskState.EXPIRED, TaskState.DISCARDED}
)
# A business row pointing at a task in one of these states is waiting for work that will never happen.
UNSUCCESSFUL_STATES = frozenset({TaskState.DEAD, TaskState.CANCELLED, TaskState.EXPIRED, TaskState.DISCARDED})
