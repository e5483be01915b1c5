"""pgqueuer, driven through psycopg (the driver this project already depends on).

pgqueuer deletes a job from ``pgqueuer`` when it finishes and keeps the history as rows in
``pgqueuer_log`` (one per status change: queued, picked, successful). Its job table therefore stays the
size of the backlog, and a retained history lives in the log table instead; ``insert_finished_history``
writes it there, three rows per job, already folded into statistics as the worker's aggregation would.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from datetime import timedelta

import psycopg
from pgqueuer import PgQueuer, Queries
from pgqueuer.models import Job

from benchmarks.systems import JobStarted

ENTRYPOINT = "noop"
# Throughput settings: a dequeue claims up to BATCH_SIZE jobs in one query (the default is 10) and runs
# them as concurrent tasks; no per-worker cap, so the batch size alone bounds the work in flight.
BATCH_SIZE = 50
DEQUEUE_TIMEOUT = timedelta(seconds=30)


def _encode_probe(probe: int | None) -> bytes | None:
    return None if probe is None else str(probe).encode()


def _decode_probe(payload: bytes | None) -> int | None:
    return None if payload is None else int(payload)


class PgQueuerEnqueuer:
    """One autocommit connection: every ``Queries.enqueue`` call is its own transaction."""

    def __init__(self, connection: psycopg.AsyncConnection) -> None:
        self._connection = connection
        self._queries = Queries.from_psycopg_connection(connection)

    async def enqueue_one(self, probe: int | None) -> None:
        await self._queries.enqueue(ENTRYPOINT, _encode_probe(probe))

    async def enqueue_batch(self, count: int) -> None:
        # Lists instead of scalars make one multi-row INSERT ... SELECT FROM UNNEST.
        await self._queries.enqueue([ENTRYPOINT] * count, [None] * count, [0] * count)

    async def close(self) -> None:
        await self._connection.close()


class PgQueuerSystem:
    """pgqueuer's ``PgQueuer`` application with one no-op entrypoint."""

    name = "pgqueuer"

    def library_version(self) -> str:
        return importlib.metadata.version("pgqueuer")

    def throughput_settings(self) -> dict[str, object]:
        return {
            "driver": "psycopg AsyncConnection (autocommit)",
            "batch_size": BATCH_SIZE,
            "max_concurrent_tasks": None,
            "dequeue_timeout_s": DEQUEUE_TIMEOUT.total_seconds(),
            "wakeup": "LISTEN/NOTIFY",
        }

    async def install_schema(self, database_url: str) -> None:
        # The same call `pgq install` makes.
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
            await Queries.from_psycopg_connection(connection).install()

    async def open_enqueuer(self, database_url: str) -> PgQueuerEnqueuer:
        connection = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
        return PgQueuerEnqueuer(connection)

    async def run_worker(self, database_url: str, job_started: JobStarted, stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
            pgq = PgQueuer.from_psycopg_connection(connection)

            @pgq.entrypoint(ENTRYPOINT)
            async def noop(job: Job) -> None:
                await job_started(_decode_probe(job.payload))

            running = asyncio.create_task(pgq.run(dequeue_timeout=DEQUEUE_TIMEOUT, batch_size=BATCH_SIZE))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            pgq.shutdown.set()
            stopping.cancel()
            await running

    async def count_unfinished_jobs(self, connection: psycopg.AsyncConnection) -> int:
        cursor = await connection.execute(
            "SELECT count(*) FROM pgqueuer WHERE status IN ('queued', 'picked')"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def insert_finished_history(self, connection: psycopg.AsyncConnection, count: int) -> None:
        # Job ids 1..count, spread over the last day; the id sequence moves past them so new jobs
        # continue the history instead of repeating its ids.
        await connection.execute(
            """
            INSERT INTO pgqueuer_log (created, job_id, status, priority, entrypoint, aggregated)
            SELECT now() - make_interval(secs => (%(count)s - job_id) * 86400.0 / %(count)s)
                       + step.offset_s * interval '1 millisecond',
                   job_id, step.status::pgqueuer_status, 0, %(entrypoint)s, true
            FROM generate_series(1, %(count)s) AS job_id
            CROSS JOIN (VALUES ('queued', 0), ('picked', 1), ('successful', 2)) AS step(status, offset_s)
            """,
            {"count": count, "entrypoint": ENTRYPOINT},
        )
        await connection.execute(
            "SELECT setval(pg_get_serial_sequence('pgqueuer', 'id'), %(count)s)", {"count": count}
        )
