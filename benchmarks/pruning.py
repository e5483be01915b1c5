"""``python -m benchmarks.pruning``: how long one prune pass takes, while a worker keeps finishing tasks.

Two shapes, each on a fresh database: 100,000 finished tasks past their retention and nothing pointing
at them; and the inverted pattern's usual history, where business rows keep (``OnPrune.KEEP``) the task
that processed them: 1,000,000 kept tasks and 100,000 unreferenced ones past retention. A pass calls
``prune`` batch by batch until a batch deletes nothing, as a worker's maintenance does, while a worker
thread drains a steady stream of no-op tasks that finish (and become prunable later) meanwhile.

Prints one JSON document; the databases are dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from sqlalchemy import Column, Engine, MetaData, Table, Uuid, text
from sqlalchemy.orm import Session

from benchmarks.scratch import insert_finished_tasks, scratch_engine
from queue_core import (
    OnPrune,
    RunningTask,
    TaskRegistry,
    TaskSpec,
    Worker,
    WorkerSettings,
    create_tables,
    enqueue_many,
    prune,
)

DATABASE = "bench_pruning"
RETENTION_SECONDS = 3600.0
STREAM_PER_SECOND = 500

business = MetaData()
parcels = Table("bench_parcels", business, Column("id", Uuid, primary_key=True), Column("task_id", Uuid))
registry = TaskRegistry()
registry.track_reference(parcels.c.task_id, on_prune=OnPrune.KEEP)


@registry.task("bench.nothing")
def nothing(task: RunningTask, session: Session) -> None:
    """No work: these tasks only finish, steadily, while the prune pass runs."""


def load(engine: Engine, due: int, kept: int) -> None:
    """``due`` unreferenced and ``kept`` referenced tasks, all finished two days ago, then ANALYZE."""
    with engine.begin() as connection:
        insert_finished_tasks(connection, due + kept, name="bench.nothing", days_ago=2, apart_seconds=0.001)
        connection.execute(
            text(
                "INSERT INTO bench_parcels (id, task_id) SELECT gen_random_uuid(), id FROM queue_tasks "
                "ORDER BY finished_at LIMIT :kept"
            ),
            {"kept": kept},
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def feed(engine: Engine, stop: threading.Event) -> None:
    """Enqueue ``STREAM_PER_SECOND`` tasks a second until ``stop``."""
    while not stop.wait(0.1):
        with Session(engine) as session, session.begin():
            enqueue_many(session, [TaskSpec("bench.nothing") for _ in range(STREAM_PER_SECOND // 10)])


def prune_pass(engine: Engine) -> tuple[float, int, int]:
    """Prune batch by batch until nothing is due; returns seconds, tasks deleted and batches."""
    started, deleted, batches = time.perf_counter(), 0, 0
    while True:
        with engine.begin() as connection:
            result = prune(connection, registry.references, older_than_seconds=RETENTION_SECONDS)
        deleted, batches = deleted + result.deleted, batches + 1
        if result.deleted == 0:
            return time.perf_counter() - started, deleted, batches


def measure(admin_url: str, due: int, kept: int) -> dict[str, object]:
    with scratch_engine(admin_url, DATABASE, pool_size=4) as engine:
        create_tables(engine)
        business.create_all(engine)
        load(engine, due, kept)
        worker = Worker(engine, registry, WorkerSettings(concurrency=2, listen=False))
        stop = threading.Event()
        threads = [
            threading.Thread(target=worker.run, daemon=True),
            threading.Thread(target=feed, args=(engine, stop), daemon=True),
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the stream is flowing
        seconds, deleted, batches = prune_pass(engine)
        stop.set()
        worker.stop()
        for thread in threads:
            thread.join()
    return {
        "due": due,
        "kept": kept,
        "deleted": deleted,
        "batches": batches,
        "pass_seconds": round(seconds, 2),
        "stream_tasks_finished": worker.stats.outcomes.get("succeeded", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pruning", description=__doc__)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--due", type=int, default=100_000, help="unreferenced tasks past retention")
    parser.add_argument(
        "--kept", type=int, default=1_000_000, help="tasks kept by business rows (second run)"
    )
    arguments = parser.parse_args()
    results = [
        measure(arguments.admin_url, arguments.due, 0),
        measure(arguments.admin_url, arguments.due, arguments.kept),
    ]
    print(json.dumps({"runs": results}, indent=2))


if __name__ == "__main__":
    main()
