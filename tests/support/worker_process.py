"""Real worker processes for integration tests.

Run one by hand with ``python -m tests.support.worker_process --url URL [--lease 2 --concurrency 2]``:
it logs to stderr and runs ``queue_core.Worker`` on the test handlers of ``tests.support.queue_handlers``
with settings fast enough for tests (a lease of seconds, heartbeats at a fifth of it, polling every 0.1 s).

``WorkerProcesses`` starts such processes from a test (with ``tests.support.processes``: a log file
each, stopped at the end whatever happened) and waits until each has registered in ``queue_workers``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine, select

from queue_core import Worker, WorkerSettings
from queue_core._models import worker_table
from shop.database import create_engine_from_url
from tests.support.processes import LoggedProcess, Processes
from tests.support.queue_handlers import registry

STOP_SECONDS = 3.0  # at the end of a test: a worker still inside a slow handler by then is killed


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker until SIGTERM; exit 0 after a graceful shutdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--lease", type=float, default=2.0, help="lease_seconds")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--prefetch", type=int, default=None)
    parser.add_argument("--queues", nargs="*", default=None)
    parser.add_argument("--poll-interval", type=float, default=0.1)
    parser.add_argument("--maintenance-interval", type=float, default=0.2)
    parser.add_argument("--shutdown-grace", type=float, default=15.0)
    parser.add_argument("--no-listen", action="store_true")
    parser.add_argument("--no-fast-rescue", action="store_true", help="no session lock: the lease alone")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s pid=%(process)d %(threadName)s %(levelname)s %(name)s: %(message)s",
    )
    settings = WorkerSettings(
        queues=args.queues or None,
        concurrency=args.concurrency,
        prefetch=args.prefetch,
        lease_seconds=args.lease,
        heartbeat_interval=args.lease / 5,
        poll_interval=args.poll_interval,
        maintenance_interval=args.maintenance_interval,
        shutdown_grace=args.shutdown_grace,
        listen=not args.no_listen,
        fast_rescue=not args.no_fast_rescue,
    )
    engine = create_engine_from_url(args.url)
    try:
        Worker(engine, registry, settings).run()
    finally:
        engine.dispose()
    logging.getLogger(__name__).info("worker process %d exiting", os.getpid())
    return 0


class WorkerProcess(LoggedProcess):
    """One started worker process; ``worker_id`` once it has registered in ``queue_workers``."""

    worker_id: uuid.UUID | None = None


class WorkerProcesses:
    """Starts worker processes on one database; ``processes.stop_all()`` stops every one of them."""

    def __init__(self, url: str, engine: Engine, log_dir: Path, **defaults: object) -> None:
        self.url = url
        self.engine = engine  # the test's engine: used only to see workers register
        self.defaults = defaults
        self.processes = Processes(log_dir, stop_seconds=STOP_SECONDS)

    def start(
        self, count: int = 1, *, register_timeout: float = 30.0, **options: object
    ) -> list[WorkerProcess]:
        """Start ``count`` workers (options override the defaults) and wait until each has registered."""
        settings = {**self.defaults, **options}
        command = [sys.executable, "-m", "tests.support.worker_process", "--url", self.url]
        for key, value in settings.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                command.append(flag)
            elif isinstance(value, list | tuple):
                command += [flag, *map(str, value)]
            elif value is not None and value is not False:
                command += [flag, str(value)]
        started = []
        for _ in range(count):
            name = f"worker-{len(self.processes.started) + 1}"
            started.append(self.processes.add(WorkerProcess(name, command, self.processes.log_dir)))
        for process in started:
            process.worker_id = self.processes.wait_until(
                lambda p=process: self._registered_id(p),  # type: ignore[misc]
                timeout=register_timeout,
                what=f"worker process {process.pid} registers in queue_workers",
            )
        return started

    def _registered_id(self, process: WorkerProcess) -> uuid.UUID | None:
        with self.engine.connect() as connection:
            found: uuid.UUID | None = connection.execute(
                select(worker_table.c.id).where(worker_table.c.pid == process.pid)
            ).scalar_one_or_none()
            return found


if __name__ == "__main__":
    sys.exit(main())
