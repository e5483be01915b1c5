"""Promise 3: no stuck and no double-running tasks, proved with real worker processes.

A worker killed with SIGKILL, or paused with SIGSTOP past its lease, loses its task to another worker; the
task's effect still lands exactly once. The killed worker here holds no session lock, so its lease alone
gives it away (a lock gives it away sooner: test_dead_workers_found_by_their_session_lock.py). A worker
that is alive keeps its task however long it runs, even when the other workers' leases are shorter than
its own (that last test runs workers in threads, each with settings of its own). Worker processes here
use a 2 s lease, so a rescue takes a few seconds.
"""

from __future__ import annotations

import signal

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from queue_core import TaskState, enqueue
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
from tests.support.worker_process import WorkerProcesses

LEASE_SECONDS = 2.0


def test_task_of_a_worker_killed_mid_handler_runs_again_once_after_its_lease(
    engine: Engine, workers: WorkerProcesses
) -> None:
    [killed] = workers.start(lease=LEASE_SECONDS, no_fast_rescue=True)
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": 3})
    wait_until_started_by(engine, task_id, killed)

    killed.kill()
    [rescuer] = workers.start(lease=LEASE_SECONDS)
    row = wait_until_finished(engine, task_id)

    assert row["attempts"] == 2
    assert effect_rows(engine, task_id) == [(rescuer.pid, 2)]
    assert error_types(engine, task_id) == [(1, "queue_core.WorkerLost", killed.worker_id)]
    assert silence_before_rescue(engine, task_id, killed) >= LEASE_SECONDS


def test_task_of_a_paused_worker_is_rescued_and_the_late_completion_is_refused(
    database_url: str, engine: Engine, workers: WorkerProcesses
) -> None:
    [paused] = workers.start(lease=LEASE_SECONDS)
    # Long enough that the rescuer is still inside the handler when the paused worker wakes and finishes.
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": 5})
    wait_until_started_by(engine, task_id, paused)

    pause(paused, database_url)
    [rescuer] = workers.start(lease=LEASE_SECONDS)
    wait_for(
        lambda: (row := task_row(engine, task_id))["worker_id"] == rescuer.worker_id and row["attempts"] == 2,
        timeout=30,
        what="the rescuer claims the paused worker's task",
    )
    silence = silence_before_rescue(engine, task_id, paused)  # before it resumes and heartbeats again
    paused.send(signal.SIGCONT)
    # The paused worker's handler finishes first; its fenced completion must find the token changed.
    wait_for(
        lambda: "lost its lease; its writes were rolled back" in paused.log_text(),
        timeout=30,
        what="the resumed worker reports its completion refused",
    )
    row = wait_until_finished(engine, task_id)

    assert row["attempts"] == 2
    assert effect_rows(engine, task_id) == [(rescuer.pid, 2)]
    assert error_types(engine, task_id) == [(1, "queue_core.WorkerLost", paused.worker_id)]
    assert silence >= LEASE_SECONDS
    assert paused.is_alive()  # it lost the task, not its life: it carries on working


def test_live_worker_keeps_a_task_that_runs_three_times_its_lease(
    engine: Engine, workers: WorkerProcesses
) -> None:
    runners = workers.start(2, lease=LEASE_SECONDS)  # the idle one would rescue the task if it could
    task_id = enqueue_committed(engine, "test.record_slowly", {"seconds": 3 * LEASE_SECONDS})

    row = wait_until_finished(engine, task_id)

    assert row["attempts"] == 1
    [(pid, attempt)] = effect_rows(engine, task_id)
    assert attempt == 1
    assert pid in {runner.pid for runner in runners}
    assert error_types(engine, task_id) == []


def test_a_worker_with_a_short_lease_never_rescues_a_task_of_a_worker_with_a_long_lease(
    three_engines: list[Engine],
) -> None:
    slow = SlowTask("weigh-pallet-slowly", seconds=4.0)  # four of the hasty worker's leases
    registry, started, attempts = slow.registry, slow.started, slow.attempts

    patient = fast_settings(concurrency=1, lease_seconds=6, heartbeat_interval=None)  # beats every 1.2 s
    hasty = fast_settings(concurrency=1, lease_seconds=1, heartbeat_interval=0.2, maintenance_interval=0.1)
    patient_engine, hasty_engine, observer = three_engines

    with running_worker(patient_engine, registry, patient) as patient_worker:
        with Session(observer) as session:
            task_id = enqueue(session, "weigh-pallet-slowly")
            session.commit()
        wait_until_set(started, "the slow handler starting")
        assert task_row(observer, task_id)["worker_id"] == patient_worker.id
        with running_worker(hasty_engine, registry, hasty):
            wait_for_state(observer, task_id, TaskState.SUCCEEDED)

    row = task_row(observer, task_id)
    assert (row["state"], row["attempts"]) == ("succeeded", 1), row
    assert attempts == [1]
    assert error_types(observer, task_id) == []
