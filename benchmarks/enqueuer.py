"""An enqueuer process: ``python -m benchmarks.enqueuer SYSTEM DATABASE_URL COUNT``.

Enqueues COUNT untimed no-op jobs, one per transaction, as fast as one connection allows, then prints
DONE. Several of these run at once to measure contended single-job enqueueing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from benchmarks.processes import announce_done, announce_ready_and_wait_for_go
from benchmarks.systems import load_system


async def run(system_name: str, database_url: str, count: int) -> None:
    """Connect, wait for GO, enqueue, report DONE."""
    system = load_system(system_name)
    stop = asyncio.Event()
    enqueuer = await system.open_enqueuer(database_url)
    try:
        await announce_ready_and_wait_for_go(stop)
        for _ in range(count):
            if stop.is_set():
                return
            await enqueuer.enqueue_one(None)
        announce_done()
        await stop.wait()
    finally:
        await enqueuer.close()


def main() -> None:
    """Parse the three positional arguments the harness passes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system")
    parser.add_argument("database_url")
    parser.add_argument("count", type=int)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(arguments.system, arguments.database_url, arguments.count))


if __name__ == "__main__":
    main()
