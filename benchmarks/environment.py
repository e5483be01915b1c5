"""The machine and software a run measured, recorded so that two result files can be compared honestly."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys

from benchmarks.databases import server_facts


def memory_gib() -> float | None:
    """Total memory from /proc/meminfo (Linux); None elsewhere."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None if it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


async def describe_machine(admin_url: str) -> dict[str, object]:
    """CPU count, memory, Python, and the PostgreSQL settings that matter for queue throughput."""
    return {
        "nproc": os.cpu_count(),
        "memory_gib": memory_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "psycopg": installed_version("psycopg"),
        "postgresql": await server_facts(admin_url),
    }
