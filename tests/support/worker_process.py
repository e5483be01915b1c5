"""Real worker processes for integration tests.

Run one by hand with ``python -m tests.support.worker_process --url URL [--lease 2 --concurrency 2]``:
it logs to stderr and runs ``queue_core.Worker`` on the test handlers of ``tests.support.queue_handlers``
with settings fast enough for tests (a lease of seconds, heartbeats at a fifth of it, polling every 0.1 s).

``WorkerProcesses`` starts such processes from a test, waits until each has registered in
``queue_workers``, and on exit kills every one it started, so no test leaves a process behind, even
when it fails. Each process's stderr goes to a file; ``print_logs`` shows them (pytest prints captured
output only for failing tests).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TypeVar

from sqlalchemy import Engine, select

from queue_core import Worker, WorkerSettings
from queue_core._models import worker_table
from shop.database import create_engine_from_url
from tests.support.inprocess import wait_for
from tests.support.queue_handlers import registry

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


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
    )
    engine = create_engine_from_url(args.url)
    try:
        Worker(engine, registry, settings).run()
    finally:
        engine.dispose()
    logging.getLogger(__name__).info("worker process %d exiting", os.getpid())
    return 0


@dataclass
class WorkerProcess:
    """One started worker process: its Popen, its log file and, once registered, its worker ID."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    worker_id: uuid.UUID | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def send(self, signum: signal.Signals) -> None:
        """Send a signal, unless the process has already exited."""
        if self.popen.poll() is None:
            self.popen.send_signal(signum)


class WorkerProcesses:
    """Starts worker processes on one database and guarantees they are all gone afterwards."""

    def __init__(self, url: str, engine: Engine, log_dir: Path, **defaults: object) -> None:
        self.url = url
        self.engine = engine  # the test's engine: used only to see workers register
        self.log_dir = log_dir
        self.defaults = defaults
        self.processes: list[WorkerProcess] = []

    def __enter__(self) -> WorkerProcesses:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()
        if exc_type is not None:
            self.print_logs()

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
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started = []
        for _ in range(count):
            log_path = self.log_dir / f"worker-{len(self.processes) + 1}.log"
            log_file = log_path.open("wb")
            popen = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
            process = WorkerProcess(popen, log_path, log_file)
            self.processes.append(process)
            started.append(process)
        for process in started:
            process.worker_id = wait_for(
                lambda p=process: self._registered_id(p),  # type: ignore[misc]
                timeout=register_timeout,
                what=f"worker process {process.pid} registers in queue_workers",
            )
        return started

    def _registered_id(self, process: WorkerProcess) -> uuid.UUID | None:
        if process.popen.poll() is not None:
            raise AssertionError(
                f"worker process {process.pid} exited with {process.popen.returncode}:\n{process.log_text()}"
            )
        with self.engine.connect() as connection:
            found: uuid.UUID | None = connection.execute(
                select(worker_table.c.id).where(worker_table.c.pid == process.pid)
            ).scalar_one_or_none()
            return found

    def stop_all(self, timeout: float = 3.0) -> None:
        """Resume paused processes, ask all to stop, kill whatever is still alive after ``timeout``."""
        for process in self.processes:
            process.send(signal.SIGCONT)
            process.send(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
            process.log_file.close()

    def print_logs(self) -> None:
        """Print every process's log (shown by pytest for failing tests only)."""
        for process in self.processes:
            print(f"----- worker process {process.pid} ({process.log_path}) -----")
            print(process.log_path.read_text(errors="replace") if process.log_path.exists() else "(no log)")


if __name__ == "__main__":
    sys.exit(main())
