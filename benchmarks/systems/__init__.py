"""What a queue must offer to be benchmarked, and which queues can be.

A system is a plain class with the methods of ``QueueSystem``; nothing subclasses anything. The harness
only ever calls these methods, so adding a queue means writing one module here and one line in
``SYSTEM_CLASSES``. Modules are imported only when their system is run: importing this package never
imports a queue library, and a system whose module does not exist yet is reported as missing rather than
breaking the others.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import psycopg

JobStarted = Callable[[int | None], Awaitable[None]]
"""Called first thing in the no-op handler with the job's probe (``None`` for jobs nobody times)."""

# name -> "module:Class"; the order is the default run order.
SYSTEM_CLASSES: dict[str, str] = {
    "queue_core": "benchmarks.systems.queue_core_system:QueueCoreSystem",
    "pgqueuer": "benchmarks.systems.pgqueuer_system:PgQueuerSystem",
    "procrastinate": "benchmarks.systems.procrastinate_system:ProcrastinateSystem",
}


class Enqueuer(Protocol):
    """An open producer of no-op jobs, bound to one database."""

    async def enqueue_one(self, probe: int | None) -> None:
        """Enqueue one job in its own transaction and return only after that transaction committed."""

    async def enqueue_batch(self, count: int) -> None:
        """Enqueue ``count`` jobs (probe ``None``) through the library's bulk API, in one transaction."""

    async def close(self) -> None:
        """Release the connections."""


class QueueSystem(Protocol):
    """One queue library, driven the way its documentation recommends."""

    name: str

    def library_version(self) -> str:
        """The installed version, recorded next to the results."""

    def throughput_settings(self) -> dict[str, object]:
        """The worker settings ``run_worker`` uses, recorded in the results so they can be argued with."""

    async def install_schema(self, database_url: str) -> None:
        """Create the queue's tables in an empty database, through the library's own installer."""

    async def open_enqueuer(self, database_url: str) -> Enqueuer:
        """Connect a producer; the harness closes it."""

    async def run_worker(self, database_url: str, job_started: JobStarted, stop: asyncio.Event) -> None:
        """Process jobs until ``stop`` is set, then shut down gracefully and return.

        Called in a worker process of its own. Every job runs a no-op handler that first awaits
        ``job_started(probe)`` with the probe the job was enqueued with.
        """

    async def count_unfinished_jobs(self, connection: psycopg.AsyncConnection) -> int:
        """Jobs that are queued or running, as the database sees them right now."""

    async def insert_finished_history(self, connection: psycopg.AsyncConnection, count: int) -> None:
        """Insert ``count`` jobs directly in the state the library leaves finished jobs in.

        Plain SQL (``generate_series``) into the library's own tables, including whatever side tables
        a real history would have filled; the harness runs VACUUM ANALYZE and CHECKPOINT afterwards.
        """


class SystemUnavailableError(Exception):
    """The system is registered but its adapter module or library is not installed."""


def load_system(name: str) -> QueueSystem:
    """Import the adapter for ``name`` and return an instance of it."""
    try:
        target = SYSTEM_CLASSES[name]
    except KeyError:
        known = ", ".join(SYSTEM_CLASSES)
        raise SystemUnavailableError(f"unknown system {name!r}; known systems: {known}") from None
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise SystemUnavailableError(f"{name}: cannot import {error.name} ({error})") from error
    system: QueueSystem = getattr(module, class_name)()
    return system
