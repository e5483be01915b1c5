"""Promise 4, wake-ups: a worker wakes on NOTIFY at commit, and re-LISTENs after losing its connection.

The worker here polls only every 30 seconds, so a pickup within a second cannot be a lucky poll.
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from queue_core import TaskSpec, enqueue_many
from tests.support.inprocess import wait_for
from tests.support.queue_handlers import effects, enqueue_committed
from tests.support.worker_process import WorkerProcesses

pytestmark = pytest.mark.postgres_only

POLL_INTERVAL = 30.0
PROMPT = 1.0  # seconds: NOTIFY takes milliseconds; this leaves room for a busy two-core machine

# The listener's connection runs LISTEN once, then a "SELECT 1" round trip every second to notice a dead
# server; between them it sits idle in autocommit. A pooled connection is briefly in the same state after
# its pre-ping "SELECT 1", so a backend counts as the listener only if it is seen so in two looks apart.
LISTENING_LOOKALIKES = text(
    "SELECT pid FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
    " AND query IN ('LISTEN queue_core_tasks', 'SELECT 1')"
)


def listener_pid(engine: Engine) -> int | None:
    """The backend PID of the worker's LISTEN connection, or None if there is not exactly one."""
    looks = []
    for pause in (0.25, 0.0):
        with engine.connect() as connection:  # a transaction each: the statistics are cached per transaction
            looks.append(set(connection.execute(LISTENING_LOOKALIKES).scalars()))
        time.sleep(pause)
    seen_twice = looks[0] & looks[1]
    return seen_twice.pop() if len(seen_twice) == 1 else None


def pickup_seconds(engine: Engine, committed_at: float, task_id: uuid.UUID) -> float:
    """Seconds from the commit (this process's clock) until the handler started (the worker's clock)."""

    def started_at(connection: Connection) -> float | None:
        value = connection.execute(select(effects.c.started_at).where(effects.c.task_id == task_id))
        return value.scalar_one_or_none()

    def effect() -> float | None:
        with engine.connect() as connection:
            return started_at(connection)

    return wait_for(effect, timeout=POLL_INTERVAL / 2, what=f"task {task_id} runs") - committed_at


def test_worker_picks_up_a_committed_task_at_once_without_waiting_for_its_poll(
    engine: Engine, workers: WorkerProcesses
) -> None:
    workers.start(poll_interval=POLL_INTERVAL)
    wait_for(lambda: listener_pid(engine), timeout=15, what="the worker listens")
    time.sleep(0.3)  # let the claim that follows LISTEN go by, so the next one has to be woken

    for _ in range(3):
        committed_at = time.time()
        task_id = enqueue_committed(engine, "test.record")
        assert pickup_seconds(engine, committed_at, task_id) < PROMPT


def test_worker_listens_again_after_its_listening_connection_is_killed(
    engine: Engine, workers: WorkerProcesses
) -> None:
    [worker] = workers.start(poll_interval=POLL_INTERVAL)
    killed = wait_for(lambda: listener_pid(engine), timeout=15, what="the worker listens")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": killed}).scalar_one()
    wait_for(
        lambda: (pid := listener_pid(engine)) is not None and pid != killed,
        timeout=15,
        what="the worker listens again on a new connection",
    )
    time.sleep(0.3)

    committed_at = time.time()
    task_id = enqueue_committed(engine, "test.record")

    assert pickup_seconds(engine, committed_at, task_id) < PROMPT
    assert "LISTEN connection lost" in worker.log_text()


def test_enqueue_many_notifies_each_queue_with_a_task_due_now_once_at_commit(
    engine: Engine, database_url: str
) -> None:
    listener = psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
    with listener:
        listener.execute("LISTEN queue_core_tasks")
        with Session(engine) as session:
            enqueue_many(
                session,
                [
                    TaskSpec("fold-napkins", queue="linen"),
                    TaskSpec("fold-towels", queue="linen"),
                    TaskSpec("polish-spoons", queue="silver"),
                    TaskSpec("count-forks", queue="cutlery", delay=3600),  # due later: polling finds it
                ],
            )
            assert list(listener.notifies(timeout=0.2)) == []  # nothing before the commit
            session.commit()
        heard = sorted(notify.payload for notify in listener.notifies(timeout=0.5))

    assert heard == ["linen", "silver"]
