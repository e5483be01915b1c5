"""``python -m benchmarks.history_arrives``: a worker that idled on an empty queue, once history arrives.

A worker's connections prepare the statements they run often, and PostgreSQL then keeps one generic plan
per statement, chosen while the table was small. If that plan cannot use the partial index of claimable
rows, the worker scans the whole table on every claim once a long history lands, while a process started
afterwards plans afresh and does not. So: one worker idles on an empty queue (its claims run about 50
times), then 1,000,000 finished tasks arrive (autovacuum off for the table, so no ANALYZE re-plans it),
then it drains a batch of no-op tasks; a second, fresh worker drains an equal batch. The ratio of their
rates is the figure; 1.0 means the history costs the idle worker nothing.

Prints one JSON document; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from benchmarks.scratch import insert_finished_tasks, scratch_engine
from queue_core import (
    RunningTask,
    TaskRegistry,
    TaskSpec,
    Worker,
    WorkerSettings,
    configure_engine,
    create_tables,
    enqueue_many,
)

DATABASE = "bench_history_arrives"
IDLE_SECONDS = 5.0
SETTINGS = WorkerSettings(concurrency=2, prefetch=200, group_size=100, poll_interval=0.1, listen=False)

registry = TaskRegistry()


@registry.task("bench.nothing")
def nothing(task: RunningTask, session: Session) -> None:
    """No work: the claim and the completion are what is measured."""


def load_history(engine: Engine, rows: int) -> float:
    """``rows`` tasks that finished a day ago, in one statement, without ANALYZE; returns the seconds."""
    started = time.perf_counter()
    with engine.begin() as connection:
        insert_finished_tasks(connection, rows, name="bench.nothing", days_ago=1)
    return time.perf_counter() - started


def drain_rate(worker: Worker, engine: Engine, tasks: int) -> float:
    """Enqueue ``tasks`` no-op tasks and time ``worker`` (already running) until all have succeeded."""
    before = worker.stats.outcomes.get("succeeded", 0)
    with Session(engine) as session, session.begin():
        enqueue_many(session, [TaskSpec("bench.nothing") for _ in range(tasks)])
    started = time.perf_counter()
    while worker.stats.outcomes.get("succeeded", 0) - before < tasks:
        time.sleep(0.01)
    return tasks / (time.perf_counter() - started)


def run_worker(engine: Engine) -> tuple[Worker, threading.Thread]:
    worker = Worker(engine, registry, SETTINGS)
    thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
    thread.start()
    return worker, thread


def measure(admin_url: str, history: int, tasks: int) -> dict[str, object]:
    with scratch_engine(admin_url, DATABASE) as engine:
        create_tables(engine)
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE queue_tasks SET (autovacuum_enabled = false)"))
        idle, idle_thread = run_worker(engine)
        time.sleep(IDLE_SECONDS)  # claims on an empty table: prepared, then planned generically
        load_seconds = load_history(engine, history)
        idle_rate = drain_rate(idle, engine, tasks)
        idle.stop()
        idle_thread.join()
        fresh_engine = configure_engine(create_engine(engine.url))  # connections of its own
        fresh, fresh_thread = run_worker(fresh_engine)
        fresh_rate = drain_rate(fresh, engine, tasks)
        fresh.stop()
        fresh_thread.join()
        fresh_engine.dispose()
    return {
        "history_rows": history,
        "history_load_seconds": round(load_seconds, 1),
        "tasks_per_drain": tasks,
        "idle_worker_tasks_per_second": round(idle_rate),
        "fresh_worker_tasks_per_second": round(fresh_rate),
        "idle_over_fresh": round(idle_rate / fresh_rate, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history_arrives", description=__doc__)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--history", type=int, default=1_000_000, help="finished tasks that arrive")
    parser.add_argument("--tasks", type=int, default=5_000, help="tasks each worker drains")
    arguments = parser.parse_args()
    print(json.dumps(measure(arguments.admin_url, arguments.history, arguments.tasks), indent=2))


if __name__ == "__main__":
    main()
