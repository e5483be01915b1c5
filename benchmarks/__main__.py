"""``python -m benchmarks``: compare queue_core with pgqueuer and procrastinate on one machine, in one run.

Prints one JSON document on stdout (progress goes to stderr) and writes it to bench-results/latest.json.
Exits with status 1 if any measurement failed; the document then says which and why.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

from benchmarks.suite import run_suite
from benchmarks.systems import SYSTEM_CLASSES
from benchmarks.workload import Workload

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_OUTPUT = Path("bench-results") / "latest.json"


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The command line; every size has a default that ``--quick`` divides by ten."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--systems",
        help=f"comma-separated systems to run (default: all of {','.join(SYSTEM_CLASSES)}; "
        "a default system whose adapter is missing is skipped, a named one is an error)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every size divided by 10 and a 100,000-job history: a smoke run of a few minutes",
    )
    parser.add_argument("--workers", type=int, help="worker processes for drains and latency (default 2)")
    parser.add_argument(
        "--jobs", type=int, help="jobs pre-enqueued for each drain (default 20000, quick 2000)"
    )
    parser.add_argument(
        "--enqueuers", type=int, help="enqueuer processes for single-job enqueueing (default 4)"
    )
    parser.add_argument(
        "--history",
        type=int,
        help="finished jobs retained for drain_with_history (default 1000000, quick 100000; 0 skips it)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_ADMIN_URL),
        help="admin URL used to create and drop bench_* databases "
        f"(default: $BENCH_DATABASE_URL, else {DEFAULT_ADMIN_URL})",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON too")
    return parser.parse_args(argv)


def workload_from(arguments: argparse.Namespace) -> Workload:
    """The defaults (or the quick sizes) with the command-line overrides applied."""
    workload = Workload.quick() if arguments.quick else Workload()
    overrides = {
        "workers": arguments.workers,
        "drain_jobs": arguments.jobs,
        "enqueuers": arguments.enqueuers,
        "history_jobs": arguments.history,
    }
    return dataclasses.replace(
        workload, **{key: value for key, value in overrides.items() if value is not None}
    )


async def main_async(arguments: argparse.Namespace, argv: list[str]) -> int:
    """Run the suite with SIGTERM turned into cancellation, so children and databases are cleaned up."""
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    explicit = arguments.systems is not None
    names = arguments.systems.split(",") if explicit else list(SYSTEM_CLASSES)
    document, all_succeeded = await run_suite(
        arguments.database_url, [name.strip() for name in names], explicit, workload_from(arguments), argv
    )
    text = json.dumps(document, indent=2)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(text + "\n")
    print(text)
    return 0 if all_succeeded else 1


def main() -> None:
    """Entry point of ``python -m benchmarks``."""
    argv = sys.argv[1:]
    try:
        status = asyncio.run(main_async(parse_arguments(argv), ["python", "-m", "benchmarks", *argv]))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("benchmark interrupted; children stopped and databases dropped", file=sys.stderr)
        status = 128 + signal.SIGTERM
    sys.exit(status)


if __name__ == "__main__":
    main()
