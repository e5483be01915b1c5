"""queue_core, this repository's queue, driven through SQLAlchemy 2 on psycopg 3 as the shop drives it.

queue_core is synchronous and the harness is asyncio, so every call into it runs on a thread. An enqueuer
owns one thread and one pooled connection (the peers' enqueuers own one connection each); the worker
runs ``Worker.run()`` on a thread while the process's event loop serves the harness's probe recorder.
Handing every job's probe from a runner thread to that loop and waiting for it is a cross-thread hop the
async peers do not pay: in one measurement on a 2-core machine it cost a single worker about 15% of its
drain rate. It is the adapter's cost, not the queue's, and it is kept so every system runs the same
recorder.

queue_core keeps finished tasks in ``queue_tasks`` as ``succeeded`` rows until ``prune`` removes them
(workers prune only when ``prune_after_seconds`` is set, and here it is not), so a retained history is
one row per task in that table, which is what ``insert_finished_history`` writes.
"""

from __future__ import annotations

import asyncio
import functools
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.orm import Session

from benchmarks.systems import JobStarted
from queue_core import (
    RunningTask,
    TaskRegistry,
    TaskSpec,
    Worker,
    WorkerSettings,
    configure_engine,
    enqueue,
    enqueue_many,
)
from shop.migrations import upgrade

TASK_NAME = "bench.noop"
HISTORY_TASK_NAME = "bench.history"
REPOSITORY = Path(__file__).resolve().parents[2]
# Throughput settings. The defaults (concurrency 4, prefetch 2 x concurrency, group_size 50) suit handlers
# that wait on other services and keep pickup latency low. A no-op handler waits on nothing, so two runner
# threads (one per core) suffice, and large claims and commit groups spread each round trip and each
# commit over many tasks.
SETTINGS = WorkerSettings(concurrency=2, prefetch=200, group_size=100, group_window=0.05)


def _engine(database_url: str, pool_size: int) -> Engine:
    """An engine for the libpq conninfo string the harness passes, prepared for the queue.

    Built with ``configure_engine`` alone: the shop's engines add ``pool_pre_ping``, a round trip per
    checkout that is the shop's choice rather than the queue's.
    """
    params = {key: str(value) for key, value in conninfo_to_dict(database_url).items()}
    port = params.pop("port", None)
    url = URL.create(
        "postgresql+psycopg",
        username=params.pop("user", None),
        password=params.pop("password", None),
        host=params.pop("host", None),
        port=int(port) if port is not None else None,
        database=params.pop("dbname", None),
        query=params,
    )
    return configure_engine(create_engine(url, pool_size=pool_size, max_overflow=0))


def _args(probe: int | None) -> dict[str, int | None]:
    return {"probe": probe}


class QueueCoreEnqueuer:
    """One thread and one connection; every ``enqueue_one`` is its own Session and transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # One thread, so the connection is always used from the same thread, one call at a time.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue-core-enqueuer")

    async def _on_thread(self, call: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, call)

    def _enqueue_one(self, probe: int | None) -> None:
        with Session(self._engine) as session, session.begin():
            enqueue(session, TASK_NAME, args=_args(probe))

    def _enqueue_batch(self, count: int) -> None:
        with Session(self._engine) as session, session.begin():
            enqueue_many(session, [TaskSpec(TASK_NAME, args=_args(None)) for _ in range(count)])

    async def enqueue_one(self, probe: int | None) -> None:
        await self._on_thread(functools.partial(self._enqueue_one, probe))

    async def enqueue_batch(self, count: int) -> None:
        await self._on_thread(functools.partial(self._enqueue_batch, count))

    async def close(self) -> None:
        await self._on_thread(self._engine.dispose)
        self._thread.shutdown()


class QueueCoreSystem:
    """queue_core's ``Worker`` with one no-op task in the default queue."""

    name = "queue_core"

    def library_version(self) -> str:
        def git(*arguments: str) -> str:
            return subprocess.run(
                ["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, check=True
            ).stdout.strip()

        try:
            sha = git("rev-parse", "--short", "HEAD")
            # The numbers belong to the code that ran, which may not be the commit.
            changed = ", with uncommitted changes" if git("status", "--porcelain", "--", "queue_core") else ""
        except (OSError, subprocess.CalledProcessError):
            sha, changed = "unknown commit", ""
        return f"queue_core (this repository, {sha}{changed})"

    def throughput_settings(self) -> dict[str, object]:
        return {
            "driver": "SQLAlchemy 2 on psycopg 3 (sync, threads)",
            "concurrency": SETTINGS.concurrency,
            "prefetch": SETTINGS.buffer_size,
            "group_size": SETTINGS.group_size,
            "group_window_s": SETTINGS.group_window,
            "poll_interval_s": SETTINGS.poll_interval,
            "wakeup": "LISTEN/NOTIFY" if SETTINGS.listen else "polling",
            "note": "the defaults (concurrency 4, prefetch 8, group_size 50) are latency-oriented",
        }

    async def install_schema(self, database_url: str) -> None:
        # The project's installer: the Alembic migrations, as `shop db upgrade` runs them.
        engine = _engine(database_url, pool_size=1)
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()
        await asyncio.to_thread(upgrade, url)

    async def open_enqueuer(self, database_url: str) -> QueueCoreEnqueuer:
        return QueueCoreEnqueuer(_engine(database_url, pool_size=1))

    async def run_worker(self, database_url: str, job_started: JobStarted, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        registry = TaskRegistry()

        @registry.task(TASK_NAME)
        def noop(task: RunningTask, _session: Session) -> None:
            # The recorder is async and writes on its own connection, so the task's session runs no SQL.
            probe = task.args.get("probe") if task.args else None

            async def record() -> None:
                await job_started(probe)

            asyncio.run_coroutine_threadsafe(record(), loop).result()

        # Runner threads, the claim loop, the heartbeat and maintenance each take a pooled connection; the
        # LISTEN connection is the listener's own.
        engine = _engine(database_url, pool_size=SETTINGS.concurrency + 3)
        worker = Worker(engine, registry, SETTINGS)
        # run() installs signal handlers only on the main thread; the harness's own handler sets ``stop``.
        running = asyncio.create_task(asyncio.to_thread(worker.run))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            worker.stop()
            stopping.cancel()
        try:
            await running
        finally:
            await asyncio.to_thread(engine.dispose)

    async def count_unfinished_jobs(self, connection: psycopg.AsyncConnection) -> int:
        # One count per state, so each is answered from its partial index (claimable rows, running rows);
        # a single ``state IN (...)`` count scans the whole table, history and all, on every poll.
        cursor = await connection.execute(
            "SELECT (SELECT count(*) FROM queue_tasks WHERE state = 'pending')"
            " + (SELECT count(*) FROM queue_tasks WHERE state = 'running')"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def insert_finished_history(self, connection: psycopg.AsyncConnection, count: int) -> None:
        # Tasks that finished over the last day, one second after they started and two after they were
        # enqueued. queue_core's IDs are UUIDv7, time-ordered; these lead with the finish time's
        # milliseconds the same way, so the primary key is as ordered as a real history leaves it.
        await connection.execute(
            """
            INSERT INTO queue_tasks (
                id, name, queue, state, priority, args, attempts, max_attempts,
                run_at, created_at, started_at, finished_at, worker_id, cancel_requested
            )
            SELECT encode(
                       overlay(uuid_send(gen_random_uuid())
                               PLACING substring(int8send((extract(epoch FROM done.at) * 1000)::bigint)
                                                 FROM 3 FOR 6)
                               FROM 1 FOR 6),
                       'hex')::uuid,
                   %(task)s, 'default', 'succeeded', 0, '{"probe": null}'::jsonb, 1, 5,
                   done.at - interval '2 seconds', done.at - interval '2 seconds',
                   done.at - interval '1 second', done.at, %(worker)s, false
            FROM generate_series(1, %(count)s) AS n
            CROSS JOIN LATERAL (
                SELECT now() - make_interval(secs => (%(count)s - n + 1) * 86400.0 / %(count)s) AS at
            ) AS done
            """,
            {"task": HISTORY_TASK_NAME, "count": count, "worker": "00000000-0000-4000-8000-000000000001"},
        )
