"""procrastinate, driven through its ``App`` and ``PsycopgConnector``.

procrastinate keeps finished jobs in ``procrastinate_jobs`` with status ``succeeded`` (the worker's
``delete_jobs`` option defaults to ``never``), and triggers record every status change in
``procrastinate_events``. A retained history is therefore 1 job row and 3 event rows (deferred, started,
succeeded) per finished job, which is what ``insert_finished_history`` writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector
from procrastinate.tasks import Task

from benchmarks.systems import JobStarted

QUEUE = "bench"
TASK_NAME = "noop"
# Throughput settings: the worker fetches one job per query and runs up to CONCURRENCY of them at once
# (the default is 1); the pool gives every running job its own connection to finish on, plus the
# LISTEN connection and the fetch loop.
CONCURRENCY = 10
POOL_SIZE = CONCURRENCY + 2


async def _untimed(probe: int | None) -> None:
    """The enqueuing side never runs the task; it only needs one registered under the same name."""


def _build_app(database_url: str, job_started: JobStarted) -> tuple[App, Task[..., Any, ...]]:
    app = App(connector=PsycopgConnector(conninfo=database_url, min_size=2, max_size=POOL_SIZE))

    @app.task(name=TASK_NAME, queue=QUEUE)
    async def noop(probe: int | None = None) -> None:
        await job_started(probe)

    return app, noop


class ProcrastinateEnqueuer:
    """An opened App; every ``defer_async`` is its own transaction on a pooled autocommit connection."""

    def __init__(self, app: App, task: Task[..., Any, ...]) -> None:
        self._app = app
        self._task = task

    async def enqueue_one(self, probe: int | None) -> None:
        await self._task.defer_async(probe=probe)

    async def enqueue_batch(self, count: int) -> None:
        # One defer_jobs query for the whole batch.
        no_probe: dict[str, Any] = {"probe": None}
        await self._task.batch_defer_async(*(no_probe for _ in range(count)))

    async def close(self) -> None:
        await self._app.close_async()


class ProcrastinateSystem:
    """procrastinate's App with one async no-op task in one queue."""

    name = "procrastinate"

    def library_version(self) -> str:
        return importlib.metadata.version("procrastinate")

    def throughput_settings(self) -> dict[str, object]:
        return {
            "connector": "PsycopgConnector (psycopg_pool.AsyncConnectionPool)",
            "concurrency": CONCURRENCY,
            "pool_max_size": POOL_SIZE,
            "listen_notify": True,
            "delete_jobs": "never (default)",
        }

    async def install_schema(self, database_url: str) -> None:
        # The same call `procrastinate schema --apply` makes.
        app, _ = _build_app(database_url, _untimed)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    async def open_enqueuer(self, database_url: str) -> ProcrastinateEnqueuer:
        app, task = _build_app(database_url, _untimed)
        await app.open_async()
        return ProcrastinateEnqueuer(app, task)

    async def run_worker(self, database_url: str, job_started: JobStarted, stop: asyncio.Event) -> None:
        app, _ = _build_app(database_url, job_started)
        async with app.open_async():
            running = asyncio.create_task(
                app.run_worker_async(queues=[QUEUE], concurrency=CONCURRENCY, install_signal_handlers=False)
            )
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            # Cancelling run_worker_async is procrastinate's graceful stop: running jobs finish first.
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    async def count_unfinished_jobs(self, connection: psycopg.AsyncConnection) -> int:
        cursor = await connection.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def insert_finished_history(self, connection: psycopg.AsyncConnection, count: int) -> None:
        # Inserted as succeeded, so the insert triggers (which fire for 'todo' only) stay quiet and the
        # events are written here, with the timestamps a one-second job would have left.
        await connection.execute(
            """
            INSERT INTO procrastinate_jobs (queue_name, task_name, priority, args, status, attempts)
            SELECT %(queue)s, %(task)s, 0, '{"probe": null}'::jsonb, 'succeeded', 1
            FROM generate_series(1, %(count)s)
            """,
            {"queue": QUEUE, "task": TASK_NAME, "count": count},
        )
        await connection.execute(
            """
            INSERT INTO procrastinate_events (job_id, type, at)
            SELECT job.id,
                   step.type::procrastinate_job_event_type,
                   now() - interval '1 day'
                       + job.id * interval '1 millisecond'
                       + step.offset_s * interval '1 second'
            FROM procrastinate_jobs AS job
            CROSS JOIN (VALUES ('deferred', 0), ('started', 1), ('succeeded', 2)) AS step(type, offset_s)
            WHERE job.status = 'succeeded'
            """
        )
