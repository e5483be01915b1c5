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
# What an operator may put back to ``pending`` (the pages' button, ``shop queue retry``): a task that ended
# without success. A succeeded task's work is done and its rows have moved on (a shipment left in its
# batch), so running it again would fail on them or undo them; ``requeue`` itself stays willing, for tests
# that simulate a redelivery.
RETRYABLE_STATES = UNSUCCESSFUL_STATES
