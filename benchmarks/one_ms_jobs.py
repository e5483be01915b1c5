"""``python -m benchmarks.one_ms_jobs``: jobs that do 1 ms of work, with 16 and 64 worker threads.

The shape of a public cross-system harness for PostgreSQL job queues: a producer keeps 4,000 jobs queued,
each job's handler waits 1 ms (I/O, not CPU), and one worker process runs them with N threads. A queue
whose throughput falls as threads are added is spending its time on something other than the jobs; here
it must rise, or at least hold, from 16 to 64 threads. Each thread count runs with the worker's default
settings and with the buffer the defaults used to give (``prefetch = 2 x concurrency``), side by side,
so the effect of the default is a ratio measured in one run. The worker runs in this process (as an
application's would); the producer is a thread that tops the queue up every 20 ms with one INSERT.

Prints one JSON document; the scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from sqlalchemy import Engine, delete, table
from sqlalchemy.orm import Session

from benchmarks.scratch import scratch_engine
from queue_core import (
    RunningTask,
    TaskRegistry,
    TaskSpec,
    Worker,
    WorkerSettings,
    backlog,
    create_tables,
    enqueue_many,
)

DATABASE = "bench_one_ms_jobs"
QUEUED = 4_000
WARM_UP_SECONDS = 2.0
TOP_UP_EVERY_SECONDS = 0.02

registry = TaskRegistry()


@registry.task("bench.one_ms")
def one_ms(task: RunningTask, session: Session) -> None:
    """1 ms of waiting, as on a fast remote call; no SQL of its own."""
    time.sleep(0.001)


class Producer(threading.Thread):
    """Keeps ``QUEUED`` jobs pending: counts what is pending, enqueues the difference, sleeps 20 ms."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(name="bench-producer", daemon=True)
        self.engine = engine
        self.stopping = threading.Event()

    def top_up(self) -> None:
        with Session(self.engine) as session, session.begin():
            missing = QUEUED - backlog(session).due
            if missing > 0:
                enqueue_many(session, [TaskSpec("bench.one_ms") for _ in range(missing)])

    def run(self) -> None:
        while not self.stopping.wait(TOP_UP_EVERY_SECONDS):
            self.top_up()


def jobs_per_second(engine: Engine, settings: WorkerSettings, seconds: float) -> dict[str, float]:
    """Run a worker with ``settings`` against a full queue; its completions per second after a warm-up."""
    producer = Producer(engine)
    producer.top_up()
    worker = Worker(engine, registry, settings)
    thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
    producer.start()
    thread.start()
    time.sleep(WARM_UP_SECONDS)
    done, groups, started = (
        worker.stats.outcomes.get("succeeded", 0),
        worker.stats.commit_groups,
        time.monotonic(),
    )
    time.sleep(seconds)
    done = worker.stats.outcomes.get("succeeded", 0) - done
    groups = worker.stats.commit_groups - groups
    elapsed = time.monotonic() - started
    worker.stop()
    thread.join()
    producer.stopping.set()
    producer.join()
    with engine.begin() as connection:  # the next measurement starts from an empty table
        connection.execute(delete(table("queue_tasks")))
    return {
        "jobs_per_second": round(done / elapsed),
        "tasks_per_commit_group": round(done / max(groups, 1), 1),
    }


def measure(admin_url: str, thread_counts: list[int], seconds: float) -> dict[str, object]:
    results: dict[str, object] = {}
    for threads in thread_counts:
        # One connection per runner thread, so the pool is never what the threads wait for.
        with scratch_engine(admin_url, DATABASE, pool_size=threads, max_overflow=0) as engine:
            create_tables(engine)
            default = jobs_per_second(engine, WorkerSettings(concurrency=threads), seconds)
            before = jobs_per_second(
                engine, WorkerSettings(concurrency=threads, prefetch=2 * threads), seconds
            )
        results[f"{threads}_threads"] = {
            "defaults": default,
            "prefetch_2x_concurrency": before,
            "defaults_over_2x": round(default["jobs_per_second"] / max(before["jobs_per_second"], 1), 2),
        }
    return {"queued": QUEUED, "work_per_job_ms": 1, "seconds_per_measurement": seconds, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.one_ms_jobs", description=__doc__)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--threads", default="16,64", help="comma-separated worker thread counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    arguments = parser.parse_args()
    thread_counts = [int(part) for part in arguments.threads.split(",")]
    print(json.dumps(measure(arguments.admin_url, thread_counts, arguments.seconds), indent=2))


if __name__ == "__main__":
    main()
