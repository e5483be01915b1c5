"""Exceptions a handler raises to say how its task should end, other than by retrying.

Each names ``queue_core`` as its module, the path users import it from, so a recorded error reads
``queue_core.Discard`` rather than this private module's name.
"""

from __future__ import annotations


class Discard(Exception):  # noqa: N818 - reads as an instruction: raise Discard("order is gone")
    """End the task as ``discarded``: retrying cannot help (typically, the object it serves is gone).

    The handler's database writes are rolled back; the reason is recorded as the task's last error.
    """

    __module__ = "queue_core"


class Cancelled(Exception):  # noqa: N818 - raised by RunningTask.raise_if_cancel_requested()
    """End the task as ``cancelled`` because a cancellation was requested while it ran.

    The handler's database writes are rolled back.
    """

    __module__ = "queue_core"


class LeaseLost(Exception):  # noqa: N818
    """The worker no longer holds this task (its lease expired and it was reclaimed, or it was released).

    Raised by fenced operations such as progress reports; a worker never commits work under a lost lease.
    """

    __module__ = "queue_core"


class TransactionHeldError(RuntimeError):
    """A handler was about to wait on another service while holding a database transaction.

    Raised by ``RunningTask.outside_transaction`` and ``RunningTask.short_transaction``; a programming
    error, so the task's attempt fails and the message says how to fix the handler.
    """

    __module__ = "queue_core"
