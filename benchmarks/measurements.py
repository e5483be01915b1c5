"""The five measurements, each a plain function of (system, admin URL, workload).

Each measurement runs in a fresh database ``bench_<system>_<n>`` with the system's schema and the probe
table installed, and drops it afterwards. Throughput clocks start when the children receive GO and stop
when the database (not a child's own report) says the work is done, so a system gets no credit for work
it has acknowledged in memory but not yet committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from benchmarks.databases import connect, fresh_database, settle
from benchmarks.probes import create_probe_table, handler_start_times
from benchmarks.processes import DONE, Child, ChildProtocolError, release_all, started_children
from benchmarks.stats import latency_summary_ms, per_second
from benchmarks.systems import QueueSystem
from benchmarks.workload import Workload

DRAIN_POLL_SECONDS = 0.05
DRAIN_TIMEOUT_SECONDS = 900.0
ENQUEUE_TIMEOUT_SECONDS = 900.0
PROBE_COLLECTION_TIMEOUT_SECONDS = 30.0
WARM_UP_JOBS = 20


class MeasurementError(Exception):
    """The system did not do what the measurement asked of it."""


@contextlib.asynccontextmanager
async def installed_database(system: QueueSystem, admin_url: str, number: int) -> AsyncIterator[str]:
    """A fresh database with the system's schema and the probe table; yields its URL."""
    async with fresh_database(admin_url, f"bench_{system.name}_{number}") as url:
        await system.install_schema(url)
        async with await connect(url) as connection:
            await create_probe_table(connection)
        yield url


async def expect_unfinished(system: QueueSystem, url: str, expected: int) -> None:
    """Guard against a fast but wrong number: every enqueued job must be in the table."""
    async with await connect(url) as connection:
        found = await system.count_unfinished_jobs(connection)
    if found != expected:
        raise MeasurementError(f"{system.name}: expected {expected} queued jobs, found {found}")


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` counts that differ by at most one."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


async def enqueue_in_batches(system: QueueSystem, url: str, total: int, batch_size: int) -> float:
    """Enqueue ``total`` untimed jobs through the bulk API; returns the seconds it took."""
    enqueuer = await system.open_enqueuer(url)
    try:
        started = time.perf_counter()
        for batch in split_evenly(total, max(1, -(-total // batch_size))):
            await enqueuer.enqueue_batch(batch)
        return time.perf_counter() - started
    finally:
        await enqueuer.close()


async def measure_enqueue_single(
    system: QueueSystem, admin_url: str, workload: Workload
) -> dict[str, object]:
    """E enqueuer processes, one job per transaction, N jobs in total."""
    total = workload.single_enqueue_jobs
    async with installed_database(system, admin_url, 1) as url:
        arguments = [[system.name, url, str(count)] for count in split_evenly(total, workload.enqueuers)]
        async with started_children("enqueuer", "benchmarks.enqueuer", arguments) as enqueuers:
            started = time.perf_counter()
            release_all(enqueuers)
            await asyncio.gather(*(child.expect(DONE, ENQUEUE_TIMEOUT_SECONDS) for child in enqueuers))
            seconds = time.perf_counter() - started
        await expect_unfinished(system, url, total)
    return {
        "jobs": total,
        "processes": workload.enqueuers,
        "seconds": round(seconds, 3),
        "per_s": per_second(total, seconds),
    }


async def measure_enqueue_bulk(system: QueueSystem, admin_url: str, workload: Workload) -> dict[str, object]:
    """One producer, the library's bulk API, fixed-size batches each in one transaction."""
    total = workload.bulk_enqueue_jobs
    async with installed_database(system, admin_url, 2) as url:
        seconds = await enqueue_in_batches(system, url, total, workload.bulk_batch_size)
        await expect_unfinished(system, url, total)
    return {
        "jobs": total,
        "batch_size": workload.bulk_batch_size,
        "seconds": round(seconds, 3),
        "per_s": per_second(total, seconds),
    }


def ensure_alive(children: list[Child]) -> None:
    """A worker that died mid-drain would otherwise show up only as a timeout."""
    for child in children:
        if child.process.returncode is not None:
            raise ChildProtocolError(f"{child.label} exited with code {child.process.returncode}")


async def drain(system: QueueSystem, url: str, workload: Workload) -> dict[str, object]:
    """Pre-enqueue M jobs, settle the database, release W workers, wait until none is left unfinished."""
    total = workload.drain_jobs
    await enqueue_in_batches(system, url, total, workload.bulk_batch_size)
    await expect_unfinished(system, url, total)
    await settle(url)
    arguments = [[system.name, url] for _ in range(workload.workers)]
    async with (
        started_children("worker", "benchmarks.worker", arguments) as workers,
        await connect(url) as connection,
    ):
        started = time.perf_counter()
        release_all(workers)
        while await system.count_unfinished_jobs(connection) > 0:
            ensure_alive(workers)
            if time.perf_counter() - started > DRAIN_TIMEOUT_SECONDS:
                raise MeasurementError(f"{system.name}: drain did not finish in {DRAIN_TIMEOUT_SECONDS} s")
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        seconds = time.perf_counter() - started
    return {
        "jobs": total,
        "workers": workload.workers,
        "seconds": round(seconds, 3),
        "per_s": per_second(total, seconds),
    }


async def measure_drain(system: QueueSystem, admin_url: str, workload: Workload) -> dict[str, object]:
    """The drain against an otherwise empty job table."""
    async with installed_database(system, admin_url, 3) as url:
        return await drain(system, url, workload)


async def measure_pickup_latency(
    system: QueueSystem, admin_url: str, workload: Workload
) -> dict[str, object]:
    """Probed jobs at a steady pace into idle, waiting workers; handler start minus enqueue commit.

    The commit time is taken right after the enqueue call returns, so it includes the commit's trip back
    to the enqueuer; a worker woken by NOTIFY can start the handler before that, which shows up as a
    small negative latency (a few milliseconds at most on a busy 2-core machine), for any system.
    """
    total = workload.latency_jobs
    interval = 1.0 / workload.latency_jobs_per_second
    async with installed_database(system, admin_url, 4) as url:
        arguments = [[system.name, url] for _ in range(workload.workers)]
        async with started_children("worker", "benchmarks.worker", arguments) as workers:
            release_all(workers)
            await warm_up(system, url, workload, workers)
            committed_at = await enqueue_at_pace(system, url, total, interval)
            started_at = await collect_probes(url, total, workers)
    latencies = [started_at[probe] - committed_at[probe] for probe in committed_at]
    return {
        "jobs": total,
        "jobs_per_second": workload.latency_jobs_per_second,
        "workers": workload.workers,
        **latency_summary_ms(latencies),
    }


async def warm_up(system: QueueSystem, url: str, workload: Workload, workers: list[Child]) -> None:
    """Run a few untimed jobs through the workers, then let them fall idle.

    First-use costs (statement preparation, lazily imported code paths, the first dequeue) would
    otherwise land on the first probes of whichever system pays them; the idle pause afterwards makes
    every probe meet workers that are waiting, as the measurement intends.
    """
    enqueuer = await system.open_enqueuer(url)
    try:
        for _ in range(WARM_UP_JOBS):
            await enqueuer.enqueue_one(None)
            await asyncio.sleep(1.0 / workload.latency_jobs_per_second)
    finally:
        await enqueuer.close()
    deadline = time.perf_counter() + PROBE_COLLECTION_TIMEOUT_SECONDS
    async with await connect(url) as connection:
        while await system.count_unfinished_jobs(connection) > 0:
            ensure_alive(workers)
            if time.perf_counter() > deadline:
                raise MeasurementError(f"{system.name}: warm-up jobs were not processed")
            await asyncio.sleep(DRAIN_POLL_SECONDS)
    await asyncio.sleep(workload.latency_warmup_seconds)


async def enqueue_at_pace(system: QueueSystem, url: str, total: int, interval: float) -> dict[int, float]:
    """Enqueue probes 0..total-1 on a fixed schedule; probe -> time.time() right after its commit."""
    committed_at: dict[int, float] = {}
    enqueuer = await system.open_enqueuer(url)
    try:
        schedule_start = time.perf_counter()
        for probe in range(total):
            delay = schedule_start + probe * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await enqueuer.enqueue_one(probe)
            committed_at[probe] = time.time()
    finally:
        await enqueuer.close()
    return committed_at


async def collect_probes(url: str, total: int, workers: list[Child]) -> dict[int, float]:
    """Wait until every probed handler has recorded its start, then return the start times."""
    deadline = time.perf_counter() + PROBE_COLLECTION_TIMEOUT_SECONDS
    async with await connect(url) as connection:
        while True:
            started_at = await handler_start_times(connection)
            if len(started_at) >= total:
                return started_at
            ensure_alive(workers)
            if time.perf_counter() > deadline:
                raise MeasurementError(f"only {len(started_at)} of {total} probed jobs started")
            await asyncio.sleep(0.1)


async def measure_drain_with_history(
    system: QueueSystem, admin_url: str, workload: Workload
) -> dict[str, object]:
    """The drain again, after the system's tables were filled with a long finished history."""
    async with installed_database(system, admin_url, 5) as url:
        started = time.perf_counter()
        async with await connect(url) as connection:
            await system.insert_finished_history(connection, workload.history_jobs)
        await settle(url)
        setup_seconds = time.perf_counter() - started
        result = await drain(system, url, workload)
    return {"history_jobs": workload.history_jobs, "history_setup_seconds": round(setup_seconds, 1), **result}
