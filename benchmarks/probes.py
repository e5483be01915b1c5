"""Handler start times, collected through the database.

A probe is an integer carried in a job's payload. The first thing every handler does is call
``ProbeRecorder.job_started``: for a probed job it takes ``time.time()`` and inserts it into
``bench_handler_starts``; for the untimed jobs of the throughput measurements it returns at once. The
recorder is the same code for every system, so the measurement costs every system the same.
"""

from __future__ import annotations

import time

import psycopg

CREATE_PROBE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_handler_starts (
    probe integer PRIMARY KEY,
    started_at double precision NOT NULL
)
"""


async def create_probe_table(connection: psycopg.AsyncConnection) -> None:
    """Made by the harness in each fresh database, next to (never inside) the system's schema."""
    await connection.execute(CREATE_PROBE_TABLE)


async def handler_start_times(connection: psycopg.AsyncConnection) -> dict[int, float]:
    """Probe -> the wall-clock time its handler started."""
    cursor = await connection.execute("SELECT probe, started_at FROM bench_handler_starts")
    return {int(probe): float(started_at) for probe, started_at in await cursor.fetchall()}


class ProbeRecorder:
    """Writes probed handler starts over one autocommit connection of its own."""

    def __init__(self, connection: psycopg.AsyncConnection) -> None:
        self._connection = connection

    async def job_started(self, probe: int | None) -> None:
        """Record when the handler of a probed job started; untimed jobs cost one comparison."""
        if probe is None:
            return
        started_at = time.time()
        await self._connection.execute(
            "INSERT INTO bench_handler_starts (probe, started_at) VALUES (%s, %s)", (probe, started_at)
        )
