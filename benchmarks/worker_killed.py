"""``python -m benchmarks.worker_killed``: how soon a SIGKILLed worker's tasks run again (a 30 s lease).

A worker process claims ``--tasks`` tasks of ``--task-seconds`` each and is killed with SIGKILL while they
run; another worker process, started just before the kill with production settings (maintenance every
second, polling every second), claims them again; the kill lands at a random moment of its maintenance
cycle. The pickup delay of a task is the start of its second attempt minus the moment of the kill, both
on the database's clock (the tasks of one kill are claimed together, so they share one delay). Measured
side by side: with the session lock (``fast_rescue``, the default; ``--kills`` times) and without it, when
the lease alone gives the dead worker away (once: it costs the lease). Prints one JSON document; the
scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, create_engine, delete, func, select
from sqlalchemy.orm import Session

from benchmarks.environment import describe_machine
from benchmarks.scratch import scratch_engine
from benchmarks.stats import latency_summary_ms
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
from queue_core._models import error_table, task_table, worker_table

DATABASE = "bench_worker_killed"
LEASE_SECONDS = 30.0


def run_worker(url: str, concurrency: int, fast_rescue: bool) -> None:
    """The child: one worker with the default lease and maintenance, running ``bench.hold`` tasks."""
    registry = TaskRegistry()

    @registry.task("bench.hold")
    def hold(task: RunningTask, _session: Session) -> None:
        assert task.args is not None
        time.sleep(float(task.args["seconds"]))

    settings = WorkerSettings(
        concurrency=concurrency, prefetch=concurrency, lease_seconds=LEASE_SECONDS, fast_rescue=fast_rescue
    )
    engine = configure_engine(create_engine(url))
    try:
        Worker(engine, registry, settings).run()
    finally:
        engine.dispose()


def start_worker(url: str, concurrency: int, fast_rescue: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "benchmarks.worker_killed", "--worker", url, "--tasks", str(concurrency)]
    if not fast_rescue:
        command.append("--lease-alone")
    return subprocess.Popen(command, stderr=subprocess.DEVNULL)


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.02)
    return found


def read(engine: Engine, query: Select[Any]) -> list[Any]:
    """The first column of every row ``query`` returns now."""
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def registered(engine: Engine, process: subprocess.Popen[bytes]) -> uuid.UUID | None:
    with engine.connect() as connection:
        found: uuid.UUID | None = connection.scalar(
            select(worker_table.c.id).where(worker_table.c.pid == process.pid)
        )
    return found


def one_kill(engine: Engine, url: str, tasks: int, task_seconds: float, fast_rescue: bool) -> list[float]:
    """Kill a worker holding ``tasks`` running tasks; each task's pickup delay after the kill, in seconds."""
    with engine.begin() as connection:
        for table in (error_table, task_table, worker_table):
            connection.execute(delete(table))
    victim = start_worker(url, tasks, fast_rescue)
    rescuer: subprocess.Popen[bytes] | None = None
    try:
        victim_id = wait_until(lambda: registered(engine, victim), 60, "the worker registers")
        with Session(engine) as session, session.begin():
            enqueue_many(
                session, [TaskSpec("bench.hold", args={"seconds": task_seconds}) for _ in range(tasks)]
            )
        held = select(task_table.c.id).where(
            task_table.c.worker_id == victim_id, task_table.c.state == "running"
        )
        wait_until(lambda: len(read(engine, held)) == tasks, 60, "the worker claims them all")
        rescuer = start_worker(url, tasks, fast_rescue=True)
        wait_until(lambda: registered(engine, rescuer), 60, "the rescuer registers")
        # Land the kill at a random moment of the rescuer's maintenance cycle, as a real crash does: right
        # after its start, every kill would fall at the same phase and measure that phase alone.
        time.sleep(random.uniform(1.0, 1.0 + WorkerSettings().maintenance_interval))
        with engine.connect() as connection:
            killed_at = connection.scalar(select(func.statement_timestamp()))
        victim.send_signal(signal.SIGKILL)
        second = select(task_table.c.started_at).where(task_table.c.attempts == 2)
        started = wait_until(
            lambda: (rows := read(engine, second)) and len(rows) == tasks and rows,
            LEASE_SECONDS + 30,
            "every task starts again",
        )
        return [(each - killed_at).total_seconds() for each in started]
    finally:
        for process in (victim, rescuer):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def measure(admin_url: str, tasks: int, task_seconds: float, kills: int) -> dict[str, object]:
    with scratch_engine(admin_url, DATABASE) as engine:
        create_tables(engine)
        url = engine.url.render_as_string(hide_password=False)
        fast = [delay for _ in range(kills) for delay in one_kill(engine, url, tasks, task_seconds, True)]
        lease = one_kill(engine, url, tasks, task_seconds, fast_rescue=False)
    return {
        "tasks_per_kill": tasks,
        "task_seconds": task_seconds,
        "lease_seconds": LEASE_SECONDS,
        "maintenance_interval": WorkerSettings().maintenance_interval,
        "poll_interval": WorkerSettings().poll_interval,
        "pickup_after_kill_ms": {
            "session_lock": {"kills": kills, **latency_summary_ms(fast)},
            "lease_alone": {"kills": 1, **latency_summary_ms(lease)},
        },
        "machine": asyncio.run(describe_machine(admin_url.replace("postgresql+psycopg://", "postgresql://"))),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.worker_killed", description=__doc__)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--tasks", type=int, default=8, help="tasks the killed worker holds")
    parser.add_argument("--task-seconds", type=float, default=5.0)
    parser.add_argument("--kills", type=int, default=10, help="kills measured with the session lock")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)  # the child's own entry
    parser.add_argument("--lease-alone", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        logging.basicConfig(level=logging.WARNING)
        run_worker(arguments.worker, arguments.tasks, fast_rescue=not arguments.lease_alone)
        return
    print(
        json.dumps(
            measure(arguments.admin_url, arguments.tasks, arguments.task_seconds, arguments.kills), indent=2
        )
    )


if __name__ == "__main__":
    main()
