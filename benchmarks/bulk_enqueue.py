"""``python -m benchmarks.bulk_enqueue``: enqueue through a ``Session``, many tasks at once and one at a time.

The suite (``python -m benchmarks``) measures enqueue beside other queues in batches of 100; this looks at
queue_core alone with the batch an application sends when it fans work out (10,000 tasks with arguments
in one transaction), and at one task per transaction. Medians of a few rounds; prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from sqlalchemy.orm import Session

from benchmarks.scratch import scratch_engine
from queue_core import TaskSpec, create_tables, enqueue, enqueue_many

DATABASE = "bench_bulk_enqueue"


def measure(admin_url: str, batch: int, rounds: int, singles: int) -> dict[str, object]:
    with scratch_engine(admin_url, DATABASE) as engine:
        create_tables(engine)
        bulk: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            with Session(engine) as session, session.begin():
                enqueue_many(session, [TaskSpec("bench.fan_out", args={"n": n}) for n in range(batch)])
            bulk.append(batch / (time.perf_counter() - started))
        single: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(singles):
                with Session(engine) as session, session.begin():
                    enqueue(session, "bench.one")
            single.append(singles / (time.perf_counter() - started))
    return {
        "batch": batch,
        "rounds": rounds,
        "bulk_tasks_per_second": round(statistics.median(bulk)),
        "single_tasks_per_second": round(statistics.median(single)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bulk_enqueue", description=__doc__)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--batch", type=int, default=10_000, help="tasks in one enqueue_many")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--singles", type=int, default=500, help="one-task transactions per round")
    arguments = parser.parse_args()
    print(
        json.dumps(
            measure(arguments.admin_url, arguments.batch, arguments.rounds, arguments.singles), indent=2
        )
    )


if __name__ == "__main__":
    main()
