"""A worker process: ``python -m benchmarks.worker SYSTEM DATABASE_URL``.

Runs one system's worker with the no-op handler until SIGTERM (or until the harness goes away). The probe
connection is opened before READY so that only the system's own start-up is inside the measured time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from benchmarks.databases import connect
from benchmarks.probes import ProbeRecorder
from benchmarks.processes import announce_ready_and_wait_for_go
from benchmarks.systems import load_system


async def run(system_name: str, database_url: str) -> None:
    """Wait for GO, then work until told to stop."""
    system = load_system(system_name)
    stop = asyncio.Event()
    async with await connect(database_url) as probe_connection:
        recorder = ProbeRecorder(probe_connection)
        await announce_ready_and_wait_for_go(stop)
        if not stop.is_set():
            await system.run_worker(database_url, recorder.job_started, stop)


def main() -> None:
    """Parse the two positional arguments the harness passes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system")
    parser.add_argument("database_url")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(arguments.system, arguments.database_url))


if __name__ == "__main__":
    main()
