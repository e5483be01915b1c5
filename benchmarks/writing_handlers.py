"""``python -m benchmarks.writing_handlers``: queue_core draining tasks whose handler writes a row.

The main suite drains no-op jobs, the only workload every queue can run alike. But a no-op handler
hides what queue_core's promise costs: a handler's writes and its task's completion commit together, so
each task of a commit group needs a SAVEPOINT, its own writes, the fenced completion and a RELEASE. Here
every handler inserts one row keyed by its task id (a primary key, so a second effect would fail), and the
run checks afterwards that every task succeeded and left exactly one row.

Prints one JSON document. Worker processes are this module run with ``--work``; they are stopped with
SIGTERM (then SIGKILL) whatever happens, and the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import suppress

from sqlalchemy import Column, Engine, MetaData, Table, Uuid, create_engine, func, insert, select, text
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, Worker, WorkerSettings, configure_engine, enqueue_many
from queue_core._models import task_table
from shop.migrations import upgrade

DATABASE = "bench_writing_handlers"
SETTINGS = WorkerSettings(concurrency=2, prefetch=200, group_size=100, group_window=0.05)

effects_metadata = MetaData()
effects = Table("bench_effects", effects_metadata, Column("task_id", Uuid, primary_key=True))
registry = TaskRegistry()


@registry.task("bench.write_one_row")
def write_one_row(task: RunningTask, session: Session) -> None:
    """The whole job: one row whose key is the task id, written in the task's transaction."""
    session.execute(insert(effects).values(task_id=task.id))


def engine_for(admin_url: str, database: str | None = None, **options: object) -> Engine:
    """An engine on ``database`` (default: the admin URL's own) of the server at ``admin_url``."""
    url = admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
    if database is not None:
        url = url.rsplit("/", 1)[0] + f"/{database}"
    return configure_engine(create_engine(url, **options))


def work(admin_url: str) -> None:
    """A worker process: run until SIGTERM."""
    engine = engine_for(admin_url, DATABASE)
    Worker(engine, registry, SETTINGS).run()
    engine.dispose()


def measure(admin_url: str, tasks: int, workers: int) -> dict[str, object]:
    """Enqueue, start the workers, time until every task has finished, then check each effect exists once."""
    admin = engine_for(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        connection.execute(text(f"CREATE DATABASE {DATABASE}"))
    engine = engine_for(admin_url, DATABASE)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(str(engine.url.render_as_string(hide_password=False)))
        effects_metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            enqueue_many(session, [write_one_row.spec() for _ in range(tasks)])
        started = time.perf_counter()
        command = [sys.executable, "-m", "benchmarks.writing_handlers", "--work", "--database-url", admin_url]
        processes = [subprocess.Popen(command) for _ in range(workers)]
        while _unfinished(engine) > 0:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        with engine.connect() as connection:
            written = connection.scalar(select(func.count()).select_from(effects))
            succeeded = connection.scalar(
                select(func.count()).select_from(task_table).where(task_table.c.state == "succeeded")
            )
        return {
            "tasks": tasks,
            "workers": workers,
            "seconds": round(seconds, 3),
            "per_s": round(tasks / seconds, 1),
            "succeeded": succeeded,
            "effects": written,
            "exactly_once": written == tasks == succeeded,
            "settings": {
                "concurrency": SETTINGS.concurrency,
                "prefetch": SETTINGS.prefetch,
                "group_size": SETTINGS.group_size,
                "group_window_s": SETTINGS.group_window,
            },
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        engine.dispose()
        with admin.connect() as connection, suppress(Exception):
            connection.execute(text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        admin.dispose()


def _unfinished(engine: Engine) -> int:
    """Pending plus running, each counted from its partial index."""
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT (SELECT count(*) FROM queue_tasks WHERE state = 'pending')"
                    " + (SELECT count(*) FROM queue_tasks WHERE state = 'running')"
                )
            )
            or 0
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.writing_handlers", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--work", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.work:
        work(arguments.database_url)
        return
    result = measure(arguments.database_url, arguments.tasks, arguments.workers)
    print(json.dumps({"queue_core_drain_writing_one_row": result}, indent=2))
    sys.exit(0 if result["exactly_once"] else 1)


if __name__ == "__main__":
    main()
