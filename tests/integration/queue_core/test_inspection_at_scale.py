"""What a dashboard polls stays cheap under a long history: 200,000 finished tasks, no scan of the task table.

The history is loaded in one ``INSERT ... SELECT generate_series`` and analysed, as a long-running shop
would have it: tasks that finished over the last thirty days (until two hours ago), one in a thousand dead.
On top come a few tasks that finished in the last minutes, a few pending, two running on a live worker,
and a worker whose lease ran out. Each public read a dashboard polls, and the list of workers an operator
asks for, is run, its statements captured and explained: no plan may read ``queue_tasks`` sequentially,
and each answer counts only what it should.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import Session

import queue_core
from queue_core._models import task_table, worker_table

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

HISTORY = 200_000
DEAD_EVERY = 1_000  # one in a thousand finished tasks died
RECENT = 60  # tasks that succeeded in the last five minutes, each picked up 250 ms after it was due
PICKUP = dt.timedelta(milliseconds=250)
LIVE_WORKER = uuid.UUID("0193a0b0-0000-7000-8000-00000000beef")
LOST_WORKER = uuid.UUID("0193a0b0-0000-7000-8000-00000000dead")


def load_history(engine: Engine) -> None:
    """The old history in one statement: finished between thirty days and two hours ago, queue "archive"."""
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO queue_tasks (id, name, queue, state, priority, attempts, max_attempts,
                                         run_at, created_at, started_at, finished_at, cancel_requested)
                SELECT gen_random_uuid(), 'deliver-sofa', 'archive',
                       CASE WHEN n % :dead_every = 0 THEN 'dead' ELSE 'succeeded' END, 0, 1, 5,
                       done.at - interval '2 seconds', done.at - interval '2 seconds',
                       done.at - interval '1 second', done.at, false
                FROM generate_series(1, :count) AS n
                CROSS JOIN LATERAL (
                    SELECT now() - interval '2 hours' - make_interval(secs => n * 28.0 * 86400 / :count) AS at
                ) AS done
                """
            ),
            {"count": HISTORY, "dead_every": DEAD_EVERY},
        )


def add_recent_and_live_work(engine: Engine) -> list[uuid.UUID]:
    """Recent finished tasks, pending and running ones, a live worker and a lost one; the running IDs."""
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session:
        for n in range(RECENT):
            finished = now - dt.timedelta(seconds=5 * n + 1)
            task_id = queue_core.enqueue(session, "load-van", queue="vans", run_at=finished - 2 * PICKUP)
            mark(session, task_id, "succeeded", started_at=finished - PICKUP, finished_at=finished)
        for _ in range(2):
            task_id = queue_core.enqueue(session, "jam-van", queue="vans")
            mark(session, task_id, "dead", started_at=now, finished_at=now)
        for _ in range(3):
            queue_core.enqueue(session, "sweep-floor", queue="floors")
        for worker_id, lease in ((LIVE_WORKER, 3600), (LOST_WORKER, -60)):
            session.execute(
                insert(worker_table).values(
                    id=worker_id,
                    hostname="depot-7",
                    pid=4242,
                    queues=["vans"],
                    concurrency=4,
                    started_at=now - dt.timedelta(hours=1),
                    heartbeat_at=now,
                    lease_expires_at=now + dt.timedelta(seconds=lease),
                )
            )
        running = [queue_core.enqueue(session, "polish-lamp", queue="vans") for _ in range(2)]
        for task_id in running:
            mark(session, task_id, "running", started_at=now, worker_id=LIVE_WORKER)
        session.commit()
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE queue_tasks"))
    return running


def mark(session: Session, task_id: uuid.UUID, state: str, **values: Any) -> None:
    """Move a task as a worker would have (the test loads a history, it does not run one)."""
    session.execute(task_table.update().where(task_table.c.id == task_id).values(state=state, **values))


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement sent through ``engine`` inside the block, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def plans_of(engine: Engine, read: Callable[[Session], object]) -> tuple[object, list[str]]:
    """What ``read`` answers, and the plan of each statement it sent that reads ``queue_tasks``."""
    with Session(engine) as session:
        with captured(engine) as sent:
            answer = read(session)
        plans = [
            "\n".join(session.connection().exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
            for statement, parameters in sent
            if "queue_tasks" in statement
        ]
    return answer, plans


def test_every_dashboard_read_uses_an_index_and_counts_only_live_and_recent_tasks(engine: Engine) -> None:
    timing: dict[str, float] = {}
    started = time.perf_counter()
    load_history(engine)
    running = add_recent_and_live_work(engine)
    timing["load_seconds"] = time.perf_counter() - started

    reads: dict[str, Callable[[Session], object]] = {
        "task_counts": queue_core.task_counts,
        "throughput": queue_core.throughput,
        "live_workers": queue_core.live_workers,
        "find_worker": lambda session: queue_core.find_worker(session, LOST_WORKER),
        "known_workers": queue_core.known_workers,
        "newest dead tasks": lambda session: queue_core.list_tasks(session, state="dead", limit=20),
        "backlog": queue_core.backlog,
    }
    answers: dict[str, Any] = {}
    for name, read in reads.items():
        began = time.perf_counter()
        answers[name], plans = plans_of(engine, read)
        timing[f"{name}_seconds"] = time.perf_counter() - began
        assert plans, f"{name} read nothing from queue_tasks"
        for plan in plans:
            assert "Seq Scan on queue_tasks" not in plan, f"{name} scans the task table:\n{plan}"

    counts: queue_core.TaskCounts = answers["task_counts"]
    assert counts.by_queue_and_state == {
        "vans": {"succeeded": RECENT, "dead": 2, "running": 2},
        "floors": {"pending": 3},
    }  # the archive queue's 200,000 tasks finished hours ago: history, not counted
    assert counts.finished_window_seconds == 3600.0

    chart: queue_core.Throughput = answers["throughput"]
    assert chart.succeeded == RECENT and not chart.truncated
    assert sum(minute.unsuccessful for minute in chart.minutes) == 2
    assert chart.pickup_latency_ms["p50"] == pytest.approx(250.0, abs=1.0)

    [live] = answers["live_workers"]
    assert (live.id, live.alive, live.queues) == (LIVE_WORKER, True, ("vans",))
    assert sorted(task.id for task in live.in_flight) == sorted(running)
    lost: queue_core.WorkerInfo = answers["find_worker"]
    assert (lost.alive, lost.in_flight) == (False, ())
    assert lost.lease_left_seconds < 0 < live.lease_left_seconds
    known = answers["known_workers"]  # both started at once: ordered by ID
    assert [(w.id, w.alive, w.in_flight) for w in known] == [
        (LIVE_WORKER, True, live.in_flight),
        (LOST_WORKER, False, ()),
    ]

    dead = answers["newest dead tasks"]
    assert len(dead) == 20 and all(task.state == "dead" for task in dead)
    assert [task.name for task in dead[:2]] == ["jam-van", "jam-van"]  # the newest deaths first
    assert answers["backlog"].due == 3
    print({name: round(seconds, 3) for name, seconds in timing.items()})  # shown with pytest -s
