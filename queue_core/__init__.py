"""queue_core: a transactional task queue on PostgreSQL (and SQLite) built for the inverted pattern.

Business rows keep the ID of the task that processes them (``payments.processing_task_id``); tasks carry
no business IDs. This package knows no business word. Its promises, each proved by a test against a
real PostgreSQL (tests/integration/queue_core/):

1. Transactional enqueue. ``enqueue(session, name)`` joins the caller's transaction and returns the new
   task's ID at once. The task is invisible to workers until the caller commits and gone if it rolls
   back. ``enqueue_many`` inserts many rows with one INSERT (on PostgreSQL, its columns sent as arrays).
2. Transactional, fenced completion. A handler gets the task and a session; its writes and the task's
   move to ``succeeded`` commit in one transaction. Each claim carries a lease token that every later
   write about the task must present: a worker that lost the task (rescued, claimed elsewhere) cannot
   commit, and its business writes roll back. A task's database effects happen exactly once, even when
   it runs twice. A handler that calls another service does so in atomic phases: it reads what the
   call needs in ``task.short_transaction()``, calls inside ``task.outside_transaction()`` (which
   refuses to start while the handler holds a transaction), and records the answer through its session,
   fenced as above; no transaction, pooled connection or row lock waits on the other service.
3. No stuck and no double-running tasks. A worker's heartbeat keeps its claimed tasks its own however long
   a handler runs. On PostgreSQL a worker also holds a session advisory lock, which the database frees
   when its process dies: a worker killed with SIGKILL loses its tasks within a maintenance pass (about a
   second), not its lease. A worker frozen (SIGSTOP) or cut off from the database loses them after
   ``lease_seconds`` (on SQLite, or with ``fast_rescue=False``, a killed one too). Either way they are
   claimed again with the attempt counted. A live worker's task is never rescued; a worker whose lock
   connection is lost counts as dead (it starts nothing more, its tasks run again, the fence keeps their
   effects once). The lock needs a direct or session-pooled connection, not a transaction-pooling
   PgBouncer (``fast_rescue=False`` there).
4. Claims that scale. Batched claims with ``FOR UPDATE SKIP LOCKED`` through a partial index holding only
   claimable rows; no two workers ever claim the same task. Workers wake on LISTEN/NOTIFY and poll as a
   fallback; a lost LISTEN connection is re-established.
5. Failures handled. Exponential backoff with jitter per task name; each failed attempt's error (type,
   message, short traceback) recorded; after the last attempt the task is ``dead``, inspectable and
   re-queueable. ``raise Discard(reason)`` ends a task that cannot succeed. A poison task blocks nothing.
6. Control. Delay and run-at, expiry, priorities, named queues, per-name concurrency and rate limits
   across all workers, periodic tasks (one enqueue per tick however many workers run), cancellation
   (pending at once, running cooperatively), progress reports, parent and root IDs for tasks enqueued
   from inside a handler, and graceful shutdown on SIGTERM. A worker started while PostgreSQL is down
   or restarting waits for it with backoff (``startup_patience``); a misconfigured one fails at once.
7. Inverted references, generically. Packages register the columns that hold task IDs. The queue can
   list the rows that point at a task, keeps a referenced finished task when pruning (or nulls the
   pointer, per column), and reports dangling references (rows pointing at a dead, cancelled, expired,
   discarded or missing task) to the owning package's repair function, locked and checked again first.
8. A small hot table. Finished tasks are pruned in batches after a retention period; claims read only
   the partial index of claimable rows, so history does not slow them.
9. Inspection. Counts by state and queue, oldest pending age, throughput, pickup latency percentiles,
   dead tasks, one task with its attempts and referencing rows, every worker (live or lost: host, PID,
   last heartbeat) with the tasks it holds.
10. Two backends, one API. PostgreSQL for production; SQLite for an embedded demo, with polling instead
    of LISTEN/NOTIFY and one writer at a time instead of SKIP LOCKED.

Call ``configure_engine`` on the engine first; create the tables with ``create_tables(engine)`` (or the
Alembic revisions in ``queue_core/migrations``); run workers with ``Worker(engine, registry).run()``.
Everything else is private. Two public submodules: ``queue_core.testing`` (``drain`` a registry in a
test, see what a transaction enqueued) and ``queue_core.migrations`` (where the revisions live).
"""

from queue_core._clock import UtcDateTime
from queue_core._control import (
    TaskNotFoundError,
    TaskPointer,
    cancel,
    requeue,
    state_of,
    states_of,
    task_pointers,
)
from queue_core._dashboard import (
    InFlightTask,
    MinuteBucket,
    TaskCounts,
    Throughput,
    WorkerInfo,
    find_worker,
    known_workers,
    live_workers,
    task_counts,
    throughput,
)
from queue_core._engine import configure_engine
from queue_core._enqueue import TaskSpec, enqueue, enqueue_many
from queue_core._ids import uuid7
from queue_core._inspection import (
    Backlog,
    QueueStats,
    TaskDetails,
    backlog,
    list_tasks,
    queue_stats,
    task_details,
)
from queue_core._maintenance import PruneResult, prune
from queue_core._models import NAMING_CONVENTION, QueueBase
from queue_core._outcomes import Cancelled, Discard, LeaseLost, TransactionHeldError
from queue_core._pointer_index import unique_task_pointer
from queue_core._references import (
    DanglingReference,
    OnPrune,
    ReferencingRow,
    RepairFunction,
    TaskReference,
    find_dangling,
    referencing_rows,
    repair_dangling,
)
from queue_core._registry import Handler, RateLimit, Schedule, TaskDefinition, TaskOptions, TaskRegistry
from queue_core._retry import RetryPolicy
from queue_core._running_task import RunningTask
from queue_core._schema import create_tables
from queue_core._states import FINISHED_STATES, RETRYABLE_STATES, UNSUCCESSFUL_STATES, TaskState
from queue_core._worker import Worker
from queue_core._worker_settings import WorkerSettings

__all__ = [
    "FINISHED_STATES",
    "NAMING_CONVENTION",
    "RETRYABLE_STATES",
    "UNSUCCESSFUL_STATES",
    "Backlog",
    "Cancelled",
    "DanglingReference",
    "Discard",
    "Handler",
    "InFlightTask",
    "LeaseLost",
    "MinuteBucket",
    "OnPrune",
    "PruneResult",
    "QueueBase",
    "QueueStats",
    "RateLimit",
    "ReferencingRow",
    "RepairFunction",
    "RetryPolicy",
    "RunningTask",
    "Schedule",
    "TaskCounts",
    "TaskDefinition",
    "TaskDetails",
    "TaskNotFoundError",
    "TaskOptions",
    "TaskPointer",
    "TaskReference",
    "TaskRegistry",
    "TaskSpec",
    "TaskState",
    "Throughput",
    "TransactionHeldError",
    "UtcDateTime",
    "Worker",
    "WorkerInfo",
    "WorkerSettings",
    "backlog",
    "cancel",
    "configure_engine",
    "create_tables",
    "enqueue",
    "enqueue_many",
    "find_dangling",
    "find_worker",
    "known_workers",
    "list_tasks",
    "live_workers",
    "prune",
    "queue_stats",
    "referencing_rows",
    "repair_dangling",
    "requeue",
    "state_of",
    "states_of",
    "task_counts",
    "task_details",
    "task_pointers",
    "throughput",
    "unique_task_pointer",
    "uuid7",
]
