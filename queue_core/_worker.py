"""The worker process: claim tasks, run them in commit groups, heartbeat, and shut down gracefully.

Threads, all in one process:
- the main thread claims tasks into a local buffer whenever there is room, waking on NOTIFY or polling;
- ``concurrency`` runner threads take tasks from the buffer and run them (``_execution.TaskRunner``);
- the heartbeat thread refreshes this worker's row in ``queue_workers`` every ``heartbeat_interval``
  (``_heartbeat.py``):
  that row is what keeps the worker's tasks its own, however long a handler runs. It also delivers
  cancellation requests to running handlers, and releases any task the worker holds in the database but
  no longer in memory (after a commit that failed because the database went away);
- on PostgreSQL, the session-lock thread holds the advisory lock that proves this worker alive to the
  others, and takes a new one if its connection is lost (``_session_lock.py``, ADR 0012); while it holds
  none, the worker neither claims nor heartbeats;
- the maintenance thread rescues tasks of dead workers (lease run out, or session lock free), expires
  overdue tasks, enqueues periodic ticks and prunes old finished tasks.

The worker's own writes (claims, heartbeats, maintenance) go through a small engine of its own whose
PostgreSQL connections commit without waiting for the disk (``_engine.bookkeeping_engine``); handlers' work
and its completion commit on the application's engine, synchronously.

Before any of that, ``run()`` takes the session lock and registers the worker; on PostgreSQL it waits
with backoff while the database is down or restarting, and fails at once if it is misconfigured
(``_startup.py``). SIGTERM during that wait returns at once.

SIGTERM (or ``stop()``) stops claiming, hands back buffered tasks that have not started, lets running
handlers finish for up to ``shutdown_grace`` seconds, removes the worker's row, lets its session lock go
and returns.
"""

from __future__ import annotations

import functools
import logging
import queue as local_queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from queue_core._claims import ClaimedTask, claim, unclaim
from queue_core._engine import bookkeeping_engine
from queue_core._execution import TaskRunner
from queue_core._heartbeat import Holdings, WorkerRowGone, beat, register, unregister, vouch_again
from queue_core._listener import NotificationListener
from queue_core._maintenance import (
    expire_overdue,
    forget_dead_workers,
    prune,
    rescue_abandoned,
    rescue_unlocked,
)
from queue_core._models import task_table as tasks
from queue_core._periodic import enqueue_due_ticks
from queue_core._registry import TaskRegistry
from queue_core._session_lock import SessionLock
from queue_core._startup import start_when_reachable
from queue_core._worker_settings import WorkerSettings, WorkerStats

log = logging.getLogger(__name__)


class Worker:
    """One worker process's queue machinery. ``run()`` blocks until stopped."""

    def __init__(
        self,
        engine: Engine,
        registry: TaskRegistry,
        settings: WorkerSettings | None = None,
        *,
        session_info: Mapping[str, Any] | None = None,
    ) -> None:
        """``session_info`` is copied into every handler session's ``Session.info``: the way a composition
        root hands its handlers what they need beyond the database (an event dispatcher, a gateway client)
        without queue_core knowing what those are."""
        self.engine = engine
        self.registry = registry
        self.settings = settings or WorkerSettings()
        self.id = uuid.uuid4()
        self.queues = list(self.settings.queues or registry.queues())
        if not self.queues:
            raise ValueError("nothing to work on: no queues given and no tasks registered")
        self._queue_turn = 0
        self.stats = WorkerStats()
        self._options = {d.name: d.options for d in registry.definitions}
        self._buffer: local_queue.Queue[ClaimedTask] = local_queue.Queue()
        self._stopping = threading.Event()  # no more claims; runners finish what they hold
        self._background_stop = threading.Event()  # heartbeat and maintenance: only after the runners
        self._wake = threading.Event()
        self._held_lock = threading.Lock()
        self._held: dict[uuid.UUID, set[uuid.UUID]] = {}  # lease token -> task ids still held
        self._flags_lock = threading.Lock()  # separate: runners take it inside their transactions
        self._cancel_flags: dict[uuid.UUID, threading.Event] = {}
        # Claims, heartbeats and maintenance: connections of their own that need not wait for the disk.
        self._bookkeeping = bookkeeping_engine(engine)
        self._runner = TaskRunner(engine, registry, self.id, self._cancel_flag, session_info)
        # The proof of life PostgreSQL keeps; None where the lease alone vouches (SQLite, or turned off).
        self._row_key: int | None = None  # the session lock key the worker's row names
        self._session_lock = (
            SessionLock(
                engine, self._background_stop, self._vouch_again, lease_seconds=self.settings.lease_seconds
            )
            if self.settings.fast_rescue and engine.dialect.name == "postgresql"
            else None
        )
        self._stats_lock = threading.Lock()
        for schedule in registry.schedules:
            if schedule.task not in registry:
                raise ValueError(
                    f"schedule {schedule.name!r} names task {schedule.task!r}, which is not registered"
                )

    # -- lifecycle -----------------------------------------------------------------------------------

    def run(self, *, until_idle: bool = False) -> None:
        """Work until ``stop()`` or SIGTERM/SIGINT; with ``until_idle``, also when nothing is left to do."""
        self._install_signal_handlers()
        try:
            started = self._start()
        except BaseException:
            self.close()
            raise
        if not started:
            self.close()
            log.info("worker %s stopped before the database was reachable", self.id)
            return
        threads = self._start_threads()
        log.info(
            "worker %s started: queues=%s concurrency=%d", self.id, self.queues, self.settings.concurrency
        )
        try:
            self._claim_loop(until_idle)
        finally:
            self._stopping.set()
            self._shut_down(threads)

    def _start(self) -> bool:
        """Take the session lock and register; False if stopped first. On PostgreSQL, wait for a database
        that is down or restarting, for ``startup_patience`` seconds (``_startup.py``)."""
        if self.engine.dialect.name != "postgresql":  # SQLite: a file, no server to wait for
            self._lock_and_register()
            return True
        return start_when_reachable(self._lock_and_register, self._stopping, self.settings.startup_patience)

    def _lock_and_register(self) -> None:
        if self._session_lock is not None:
            self._session_lock.acquire()  # first: no rescuer ever sees a row without its lock
        try:
            self._register()
        except BaseException:
            if self._session_lock is not None:
                self._session_lock.release()  # the next attempt takes a fresh one
            raise

    def close(self) -> None:
        """Release the worker's own connections and its session lock; ``run()`` does this when it returns."""
        if self._session_lock is not None:
            self._session_lock.release()
        if self._bookkeeping is not self.engine:
            self._bookkeeping.dispose()

    def stop(self) -> None:
        """Ask the worker to finish gracefully (safe from any thread or a signal handler)."""
        self._stopping.set()
        self._wake.set()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: finishing in-flight tasks", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _start_threads(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._run_tasks, name=f"queue-runner-{n}", daemon=True)
            for n in range(self.settings.concurrency)
        ]
        threads.append(threading.Thread(target=self._heartbeat_loop, name="queue-heartbeat", daemon=True))
        threads.append(threading.Thread(target=self._maintenance_loop, name="queue-maintenance", daemon=True))
        if self.settings.listen and self.engine.dialect.name == "postgresql":
            threads.append(NotificationListener(self.engine, self.queues, self._wake.set, self._stopping))
        if self._session_lock is not None:
            threads.append(self._session_lock)
        for thread in threads:
            thread.start()
        return threads

    def _shut_down(self, threads: list[threading.Thread]) -> None:
        runners = [t for t in threads if t.name.startswith("queue-runner")]
        deadline = time.monotonic() + self.settings.shutdown_grace
        for thread in runners:  # they finish the task in hand and take no new one
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        released = self._release_buffered()
        still_running = [t for t in runners if t.is_alive()]
        # Heartbeats went on until here, so no handler that was still finishing lost its tasks to a rescue.
        # Stop them before removing the worker row, or a last heartbeat would register the worker again.
        self._background_stop.set()
        for thread in threads:
            if thread not in runners:
                thread.join(timeout=5.0)
        if still_running:
            # Keep the worker row: once its session lock goes (in close) or its lease runs out, a rescue takes
            # the tasks that never finished; a handler still finishing meets the fence.
            log.warning("shutdown grace ran out with %d handler(s) still running", len(still_running))
        else:
            self._unregister()
        self.close()
        log.info("worker %s stopped (%d buffered task(s) handed back)", self.id, released)

    # -- claiming ------------------------------------------------------------------------------------

    def _claim_loop(self, until_idle: bool) -> None:
        size = self.settings.buffer_size
        while not self._stopping.is_set():
            # Refill once the buffer is half empty (fewer, larger claims than topping up one at a time).
            # Only tasks waiting in the buffer count against it, not those in runners' open commit
            # groups: counted, the buffer would only refill once runners sat idle, and each would then
            # commit its task alone. A worker that holds no session lock counts as dead, so whatever it
            # claimed would be rescued: it claims nothing then.
            buffered = self._buffer.qsize()
            room = size - buffered if buffered <= size // 2 and self._vouching() else 0
            claimed = self._claim(room) if room > 0 else []
            if until_idle and not claimed and self._in_flight() == 0 and self._buffer.empty():
                return
            if claimed and len(claimed) == room:
                continue  # there may be more: claim again as soon as there is room
            self._wake.wait(self.settings.poll_interval if not until_idle else 0.05)
            self._wake.clear()

    def _claim(self, room: int) -> list[ClaimedTask]:
        token = uuid.uuid4()
        with self._held_lock:
            self._held[token] = set()  # held before the claim commits, so the heartbeat never releases it
        try:
            self._queue_turn = (self._queue_turn + 1) % len(self.queues)
            claimed = claim(
                self._bookkeeping,
                worker_id=self.id,
                lease_token=token,
                queues=self.queues[self._queue_turn :] + self.queues[: self._queue_turn],  # take turns
                options=self._options,
                limit=room,
            )
        except Exception as exc:
            # One statement per queue commits on its own, so a claim can fail after part of it landed:
            # hand that part back uncounted, as if it had never been claimed.
            log.warning("claim failed: %s", str(exc).splitlines()[0] if str(exc) else repr(exc))
            claimed = []
            self._hand_back_unstarted(token)
            self._stopping.wait(self.settings.poll_interval)
        with self._held_lock:
            if claimed:
                self._held[token].update(t.id for t in claimed)
            else:
                del self._held[token]
        for task in claimed:
            self._buffer.put(task)
        with self._stats_lock:
            self.stats.claimed += len(claimed)
            self.stats.claims += 1 if claimed else 0
        return claimed

    def _in_flight(self) -> int:
        with self._held_lock:
            return sum(len(ids) for ids in self._held.values())

    # -- running -------------------------------------------------------------------------------------

    def _run_tasks(self) -> None:
        settings = self.settings
        while not (self._stopping.is_set() and self._buffer.empty()):
            try:
                first = self._buffer.get(timeout=0.1)
            except local_queue.Empty:
                continue
            if self._stopping.is_set():
                self._buffer.put(first)  # leave it for _release_buffered
                return
            if not self._vouching():
                # Counted as dead: a rescuer may hand this task to another worker. Start nothing; the
                # new session lock hands the buffer back (_vouch_again).
                self._buffer.put(first)
                self._background_stop.wait(0.1)
                continue
            taken = [first]
            next_task: Callable[[], ClaimedTask | None] = functools.partial(self._next_buffered, taken)
            if self._runner.commits_alone(first):
                next_task = _nothing_more
            outcomes: list[tuple[ClaimedTask, str]] = []
            try:
                outcomes = self._runner.run_group(
                    first, next_task, settings.group_size, _closes_after(settings.group_window)
                )
            except BaseException:
                # Never lose track of a task: forgotten, it is handed back by the next heartbeat.
                log.exception("a commit group failed unexpectedly; its tasks will be handed back")
            finally:
                self._record(outcomes)
                for task in taken:
                    self._forget(task)

    def _record(self, outcomes: list[tuple[ClaimedTask, str]]) -> None:
        with self._stats_lock:
            self.stats.commit_groups += 1
            for _task, outcome in outcomes:
                self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1

    def _next_buffered(self, taken: list[ClaimedTask]) -> ClaimedTask | None:
        """The next buffered task for the open commit group, noted in ``taken``; None if none is waiting."""
        if self._stopping.is_set() or not self._vouching():
            return None
        try:
            task = self._buffer.get_nowait()
        except local_queue.Empty:
            return None
        if self._runner.commits_alone(task):
            self._buffer.put(task)  # it gets a transaction of its own; this group closes here
            return None
        taken.append(task)
        return task

    def _forget(self, task: ClaimedTask) -> None:
        with self._held_lock:
            ids = self._held.get(task.lease_token)
            if ids is not None:
                ids.discard(task.id)
                if not ids:
                    del self._held[task.lease_token]
        with self._flags_lock:
            self._cancel_flags.pop(task.id, None)
        self._wake.set()  # room in the buffer: claim more

    def _cancel_flag(self, task_id: uuid.UUID) -> threading.Event:
        with self._flags_lock:
            return self._cancel_flags.setdefault(task_id, threading.Event())

    def _hand_back_unstarted(self, token: uuid.UUID) -> None:
        """Return the tasks claimed under ``token`` to ``pending``, their attempt not counted."""
        try:
            with self._bookkeeping.begin() as connection:
                unclaim(connection, tasks.c.lease_token == token)
        except Exception as exc:  # then the heartbeat hands them back, counted: the safe side
            log.warning("could not hand back the tasks of a failed claim: %s", exc)

    def _release_buffered(self) -> int:
        """Hand back tasks claimed but never started; their attempt is not counted."""
        buffered: list[ClaimedTask] = []
        while True:
            try:
                buffered.append(self._buffer.get_nowait())
            except local_queue.Empty:
                break
        if not buffered:
            return 0
        try:
            with self._bookkeeping.begin() as connection:
                for task in buffered:
                    unclaim(connection, (tasks.c.id == task.id) & (tasks.c.lease_token == task.lease_token))
        except Exception as exc:
            log.warning("could not hand back buffered tasks (they will be rescued): %s", exc)
        for task in buffered:
            self._forget(task)
        return len(buffered)

    # -- heartbeat -----------------------------------------------------------------------------------

    def _vouching(self) -> bool:
        """Whether this worker may claim and heartbeat: it holds the lock its row names, or needs none."""
        return self._session_lock is None or self._session_lock.key == self._row_key

    def _register(self) -> None:
        lock_key = self._session_lock.key if self._session_lock is not None else None
        with self._bookkeeping.begin() as connection:
            register(connection, self.id, self.queues, self.settings, lock_key)
        self._row_key = lock_key

    def _vouch_again(self, lock_key: int) -> None:
        """Called with a new session lock after the old one was lost: the worker counted as dead meanwhile."""
        self._release_buffered()  # never started: handed back uncounted, unless a rescuer got there first
        with self._bookkeeping.begin() as connection:
            handed_back = vouch_again(connection, self.id, self.queues, self.settings, lock_key)
        self._row_key = lock_key
        if handed_back:
            log.warning("handed back %d task(s) held while this worker had no session lock", len(handed_back))

    def _unregister(self) -> None:
        try:
            with self._bookkeeping.begin() as connection:
                unregister(connection, self.id)
        except DBAPIError as exc:
            log.warning("could not remove worker row: %s", exc)

    def _heartbeat_loop(self) -> None:
        while not self._background_stop.wait(self.settings.heartbeat_every):
            try:
                self.heartbeat()
            except Exception as exc:  # whatever happens, keep beating: a silent worker loses its tasks
                log.warning("heartbeat failed: %s", str(exc).splitlines()[0] if str(exc) else repr(exc))

    def heartbeat(self) -> None:
        """Prove this worker alive, pick up cancellation requests, hand back tasks it no longer holds.

        Without the session lock its row names, the worker skips the beat: it counts as dead until the
        session-lock thread takes a new lock and names it (``_vouch_again``)."""
        if not self._vouching():
            log.warning("worker %s holds no session lock: not vouching for its tasks", self.id)
            return
        try:
            with self._bookkeeping.begin() as connection:
                requested = beat(
                    connection, self.id, self.queues, self.settings, self._holdings, self._row_key
                )
        except WorkerRowGone:
            assert self._session_lock is not None  # beat() raises it only for a worker with a lock
            # Registering again under the old key could name a lock this worker no longer holds. Let the
            # lock go: the lock thread takes a fresh one, and _vouch_again registers the worker under it.
            log.warning("worker %s was declared dead: taking a new session lock to register again", self.id)
            self._session_lock.release()
            return
        for task_id in requested:
            self._cancel_flag(task_id).set()

    def _holdings(self) -> Holdings:
        with self._held_lock:
            held = {task_id for ids in self._held.values() for task_id in ids}
            claiming = [token for token, ids in self._held.items() if not ids]
        return Holdings(held, claiming)

    # -- maintenance ---------------------------------------------------------------------------------

    def _maintenance_loop(self) -> None:
        last_prune = time.monotonic()
        while not self._background_stop.wait(self.settings.maintenance_interval):
            try:
                self.maintain()
                if (
                    self.settings.prune_after_seconds is not None
                    and time.monotonic() - last_prune >= self.settings.prune_every_seconds
                ):
                    last_prune = time.monotonic()
                    self.prune_due()
            except Exception as exc:  # one failed pass must not end maintenance for good
                log.warning("maintenance failed: %s", str(exc).splitlines()[0] if str(exc) else repr(exc))

    def maintain(self) -> None:
        """One pass of rescue, expiry and periodic ticks."""
        with self._bookkeeping.begin() as connection:
            unlocked = rescue_unlocked(connection)
            if unlocked:
                log.warning("rescued %d task(s) from workers whose session lock was free", len(unlocked))
            rescued = rescue_abandoned(connection)
            if rescued:
                log.warning("rescued %d task(s) from workers whose lease ran out", len(rescued))
            expire_overdue(connection)
            forget_dead_workers(connection)
        if unlocked or rescued:
            self._wake.set()  # a hand-back sends no notification: claim what was just freed, without a poll
        if self.registry.schedules:
            # On the application's engine: a tick's enqueue must be as durable as any other.
            with self.engine.begin() as connection:
                enqueue_due_ticks(connection, self.registry, self.registry.schedules)

    def prune_due(self) -> int:
        """Prune finished tasks older than ``prune_after_seconds``, batch by batch; returns how many."""
        assert self.settings.prune_after_seconds is not None
        total = 0
        while not self._background_stop.is_set():
            # The application's engine: pruning may null business columns, which must be durable.
            with self.engine.begin() as connection:
                result = prune(
                    connection, self.registry.references, older_than_seconds=self.settings.prune_after_seconds
                )
            total += result.deleted
            if result.deleted == 0:
                break
        return total


def _nothing_more() -> ClaimedTask | None:
    """``next_task`` for a group that must hold one task only."""
    return None


def _closes_after(seconds: float) -> Callable[[], bool]:
    """A deadline check for a commit group opened now."""
    closes_at = time.monotonic() + seconds
    return lambda: time.monotonic() >= closes_at
