"""Promise 3 on PostgreSQL: a worker whose session ended loses its tasks within seconds, not its lease.

Every worker here has the default 30 s lease, and the rescuer runs maintenance once a second, as a
production worker does. A SIGKILLed worker's session lock is free the moment its process dies, so its task
runs again within 3 s. A SIGSTOPped worker keeps its socket and its lock: its task waits for the lease
(a shorter one in that test, to keep it quick). A worker whose lock connection is terminated counts as
dead: its task runs again at once (on the rescuer, or on itself once it holds a new lock), and the fence
refuses what its first attempt writes afterwards. A worker that holds no lock (``fast_rescue=False``, as
behind a transaction-pooling PgBouncer) is never taken for dead by a worker that rescues by locks.
"""

from __future__ import annotations

import signal
import time
import uuid

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, TaskState, WorkerSettings, enqueue
from queue_core._heartbeat import register
from queue_core._maintenance import rescue_unlocked
from queue_core._models import worker_table
from queue_core._session_lock import LOCK_CLASS
from tests.support.inprocess import (
    SlowTask,
    fast_settings,
    running_worker,
    wait_for,
    wait_for_state,
    wait_until_set,
)
from tests.support.lost_workers import (
    effect_rows,
    error_types,
    pause,
    silence_before_rescue,
    wait_until_finished,
    wait_until_started_by,
)
from tests.support.queue_handlers import enqueue_committed, task_row
from tests.support.worker_process import WorkerProcess, WorkerProcesses

pytestmark = pytest.mark.postgres_only

LEASE_SECONDS = 30.0
RESCUE_WITHIN_SECONDS = 3.0
PRODUCTION_MAINTENANCE = 1.0  # WorkerSettings' default maintenance_interval


def wait_until_claimed_by(engine: Engine, task_id: uuid.UUID, rescuer: WorkerProcess, timeout: float) -> None:
    wait_for(
        lambda: (row := task_row(engine, task_id))["worker_id"] == rescuer.worker_id and row["attempts"] == 2,
        timeout=timeout,
        what=f"worker process {rescuer.pid} claims the task again",
    )


def session_lock_key(engine: Engine, worker_id: uuid.UUID | None) -> int | None:
    with engine.connect() as connection:
        key: int | None = connection.execute(
            select(worker_table.c.session_lock_key).where(worker_table.c.id == worker_id)
        ).scalar_one_or_none()
    return key


def worker_row_exists(engine: Engine, worker_id: uuid.UUID | None) -> bool:
    with engine.connect() as connection:
        found = connection.execute(select(worker_table.c.id).where(worker_table.c.id == worker_id)).first()
    return found is not None


def test_task_of_a_killed_worker_runs_again_within_three_seconds_though_its_lease_is_thirty(
    engine: Engine, workers: WorkerProcesses
) -> None:
    [killed] = workers.start(lease=LEASE_SECONDS)
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": 3})
    wait_until_started_by(engine, task_id, killed)
    [rescuer] = workers.start(lease=LEASE_SECONDS, maintenance_interval=PRODUCTION_MAINTENANCE)

    killed.kill()
    killed_at = time.monotonic()
    wait_until_claimed_by(engine, task_id, rescuer, timeout=RESCUE_WITHIN_SECONDS)
    picked_up_after = time.monotonic() - killed_at
    row = wait_until_finished(engine, task_id)

    assert picked_up_after < RESCUE_WITHIN_SECONDS
    assert row["attempts"] == 2
    assert effect_rows(engine, task_id) == [(rescuer.pid, 2)]
    assert error_types(engine, task_id) == [(1, "queue_core.WorkerLost", killed.worker_id)]
    assert not worker_row_exists(engine, killed.worker_id)


def test_task_of_a_paused_worker_waits_for_its_lease_though_its_session_lock_is_held(
    database_url: str, engine: Engine, workers: WorkerProcesses
) -> None:
    lease = 6.0  # twice the fast rescue's bound: a rescue by the lock would come far sooner
    [paused] = workers.start(lease=lease)
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": lease + 6})
    wait_until_started_by(engine, task_id, paused)
    [rescuer] = workers.start(lease=lease, maintenance_interval=PRODUCTION_MAINTENANCE)

    pause(paused, database_url)
    wait_until_claimed_by(engine, task_id, rescuer, timeout=lease + 20)
    silence = silence_before_rescue(engine, task_id, paused)
    paused.send(signal.SIGCONT)
    wait_for(
        lambda: "lost its lease; its writes were rolled back" in paused.log_text(),
        timeout=30,
        what="the resumed worker reports its completion refused",
    )
    wait_until_finished(engine, task_id)

    assert silence >= lease
    assert effect_rows(engine, task_id) == [(rescuer.pid, 2)]
    assert paused.is_alive()


def test_a_worker_whose_lock_connection_is_terminated_counts_as_dead_and_its_late_write_is_refused(
    engine: Engine, workers: WorkerProcesses
) -> None:
    [cut_off] = workers.start(lease=LEASE_SECONDS)
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": 5})
    wait_until_started_by(engine, task_id, cut_off)
    [rescuer] = workers.start(lease=LEASE_SECONDS, maintenance_interval=PRODUCTION_MAINTENANCE)
    first_key = session_lock_key(engine, cut_off.worker_id)
    assert first_key is not None

    with engine.begin() as connection:
        terminated = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = :cls AND objid = :key AND objsubid = 2 AND granted"
            ),
            {"cls": LOCK_CLASS, "key": first_key},
        ).scalars()
        assert list(terminated) == [True]
    cut_off_at = time.monotonic()
    # By the rescuer, or by the cut-off worker itself once it holds a new lock: either is a new attempt.
    wait_for(
        lambda: task_row(engine, task_id)["attempts"] == 2,
        timeout=RESCUE_WITHIN_SECONDS,
        what="the task is claimed again",
    )
    picked_up_after = time.monotonic() - cut_off_at
    wait_for(
        lambda: "lost its lease; its writes were rolled back" in cut_off.log_text(),
        timeout=30,
        what="the cut-off worker reports its completion refused",
    )
    row = wait_until_finished(engine, task_id)

    assert picked_up_after < RESCUE_WITHIN_SECONDS
    assert row["attempts"] == 2
    [(pid, attempt)] = effect_rows(engine, task_id)
    assert (pid in {rescuer.pid, cut_off.pid}, attempt) == (True, 2)
    assert error_types(engine, task_id) == [(1, "queue_core.WorkerLost", cut_off.worker_id)]
    # It lived on: it took a new lock, and its row names that one.
    assert cut_off.is_alive()
    wait_for(
        lambda: session_lock_key(engine, cut_off.worker_id) not in (None, first_key),
        what="the cut-off worker registers again under a new session lock",
    )


def test_a_worker_without_a_session_lock_keeps_its_task_beside_workers_that_rescue_by_locks(
    three_engines: list[Engine],
) -> None:
    # Twenty of the rescuer's maintenance passes.
    slow = SlowTask("count-pallets-slowly", seconds=2.0, record=False)
    registry, started, attempts = slow.registry, slow.started, slow.attempts

    lockless = fast_settings(concurrency=1, fast_rescue=False)
    rescuer = fast_settings(concurrency=1, maintenance_interval=0.1)
    lockless_engine, rescuer_engine, observer = three_engines

    with running_worker(lockless_engine, registry, lockless) as lockless_worker:
        with Session(observer) as session:
            task_id = enqueue(session, "count-pallets-slowly")
            session.commit()
        wait_until_set(started, "the slow handler starting")
        assert task_row(observer, task_id)["worker_id"] == lockless_worker.id
        assert session_lock_key(observer, lockless_worker.id) is None
        with running_worker(rescuer_engine, registry, rescuer):
            wait_for_state(observer, task_id, TaskState.SUCCEEDED)

    assert (task_row(observer, task_id)["attempts"], attempts) == (1, [1])
    assert error_types(observer, task_id) == []


def advisory_locks_on(engine: Engine, key: int) -> int:
    with engine.connect() as connection:
        count: int = connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = CAST(:cls AS oid) AND objid = CAST(:key AS oid)"
            ),
            {"cls": LOCK_CLASS, "key": key},
        )
    return count


def test_a_worker_whose_row_was_removed_registers_again_under_a_new_lock_and_its_next_task_runs_once(
    engine: Engine,
) -> None:
    # What a rescuer leaves after finding a worker's lock free (or its lease run out): no row. Registering
    # again under the old key could name a lock the worker no longer holds, so that every task it claimed
    # would be taken back, attempt counted, by the next rescue.
    registry = TaskRegistry()

    @registry.task("stamp-crate")
    def stamp_crate(task: RunningTask, _session: Session) -> None:
        pass

    with running_worker(engine, registry, fast_settings(concurrency=1)) as worker:
        first_key = wait_for(lambda: session_lock_key(engine, worker.id), what="the worker registers")
        with engine.begin() as connection:
            connection.execute(worker_table.delete().where(worker_table.c.id == worker.id))

        new_key = wait_for(
            lambda: (
                session_lock_key(engine, worker.id) not in (None, first_key)
                and session_lock_key(engine, worker.id)
            ),
            what="the worker registers again under a new session lock",
        )
        assert advisory_locks_on(engine, first_key) == 0  # the old lock was given up, not named again
        assert advisory_locks_on(engine, new_key) == 1
        with Session(engine) as session:
            task_id = enqueue(session, "stamp-crate")
            session.commit()
        wait_for_state(engine, task_id, TaskState.SUCCEEDED)

    assert task_row(engine, task_id)["attempts"] == 1
    assert error_types(engine, task_id) == []


def test_a_rescuer_never_takes_a_lock_its_own_session_holds_for_a_free_one(engine: Engine) -> None:
    # Behind a pooler, a rescuer's statements may run on the very server session that holds a live
    # worker's lock; advisory locks are re-entrant, so a plain try would succeed there.
    worker_id, key = uuid.uuid4(), 424_242
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:cls, :key)"), {"cls": LOCK_CLASS, "key": key})
        holder.commit()
        register(holder, worker_id, ["default"], WorkerSettings(), key)
        holder.commit()

        with holder.begin():  # the session that holds the lock, rescuing
            assert rescue_unlocked(holder) == []
        assert session_lock_key(engine, worker_id) == key  # still registered: it was not taken for dead

        holder.execute(text("SELECT pg_advisory_unlock(:cls, :key)"), {"cls": LOCK_CLASS, "key": key})
        holder.commit()
        with engine.begin() as rescuer:  # once the lock is free, any rescuer finds the worker dead
            rescue_unlocked(rescuer)
    assert session_lock_key(engine, worker_id) is None
