"""One benchmark run: every measurement for every system, gathered into one JSON-ready document.

Measurements are the outer loop and systems the inner one, so whatever drifts during a run (page cache,
a checkpoint, a noisy neighbour) lands on all systems alike, and each ratio compares numbers taken
minutes apart rather than a whole run apart. A measurement that fails for one system is recorded as an
error and the others go on.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

import psycopg

from benchmarks.environment import describe_machine
from benchmarks.measurements import (
    MeasurementError,
    measure_drain,
    measure_drain_with_history,
    measure_enqueue_bulk,
    measure_enqueue_single,
    measure_pickup_latency,
)
from benchmarks.processes import ChildProtocolError
from benchmarks.systems import QueueSystem, SystemUnavailableError, load_system
from benchmarks.workload import Workload

# What a system (rather than the harness) can get wrong; recorded so that one broken system does not hide
# the others' numbers. Anything else is a harness bug and stops the run.
EXPECTED_FAILURES = (MeasurementError, ChildProtocolError, psycopg.Error, TimeoutError)

Measurement = Callable[[QueueSystem, str, Workload], Awaitable[dict[str, object]]]

# Measurement name -> how to take it; the order is the run order.
MEASUREMENTS: dict[str, Measurement] = {
    "enqueue_single": measure_enqueue_single,
    "enqueue_bulk": measure_enqueue_bulk,
    "drain": measure_drain,
    "pickup_latency": measure_pickup_latency,
    "drain_with_history": measure_drain_with_history,
}


def log(message: str) -> None:
    """Progress goes to stderr; stdout carries only the JSON document."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_systems(names: list[str], explicit: bool) -> tuple[list[QueueSystem], dict[str, str]]:
    """The systems to run, and the reasons others were skipped (only when the user did not ask for them)."""
    systems: list[QueueSystem] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            systems.append(load_system(name))
        except SystemUnavailableError as error:
            if explicit:
                raise
            skipped[name] = str(error)
            log(f"skipping {name}: {error}")
    return systems, skipped


def headline(details: dict[str, dict[str, object]]) -> dict[str, object]:
    """The numbers one reads first, taken from the per-measurement details."""
    numbers: dict[str, object] = {}
    for name in ("enqueue_single", "enqueue_bulk", "drain", "drain_with_history"):
        if name in details and "per_s" in details[name]:
            numbers[f"{name}_per_s"] = details[name]["per_s"]
    if "pickup_latency" in details and "p50" in details["pickup_latency"]:
        numbers["pickup_latency_ms"] = {key: details["pickup_latency"][key] for key in ("p50", "p95", "p99")}
    drain = numbers.get("drain_per_s")
    with_history = numbers.get("drain_with_history_per_s")
    if isinstance(drain, float) and isinstance(with_history, float):
        numbers["drain_with_history_ratio"] = round(with_history / drain, 3)
    return numbers


def relative_to(baseline: str, results: dict[str, dict[str, object]]) -> dict[str, dict[str, float]]:
    """Each system's headline numbers divided by the baseline's (>1 means more jobs/s, or slower pickup)."""
    base = results.get(baseline, {})
    ratios: dict[str, dict[str, float]] = {}
    for name, result in results.items():
        ratios[name] = {}
        for metric, value in result.items():
            base_value = base.get(metric)
            if metric == "pickup_latency_ms" and isinstance(value, dict) and isinstance(base_value, dict):
                ratios[name]["pickup_latency_p50"] = round(value["p50"] / base_value["p50"], 3)
            elif metric.endswith("_per_s") and isinstance(value, float) and isinstance(base_value, float):
                ratios[name][metric] = round(value / base_value, 3)
    return ratios


async def run_suite(
    admin_url: str, system_names: list[str], explicit_systems: bool, workload: Workload, command: list[str]
) -> tuple[dict[str, object], bool]:
    """Run everything; returns the document and whether every measurement succeeded."""
    started_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    systems, skipped = load_systems(system_names, explicit_systems)
    measurements = {
        name: run
        for name, run in MEASUREMENTS.items()
        if workload.history_jobs or name != "drain_with_history"
    }
    details: dict[str, dict[str, dict[str, object]]] = {system.name: {} for system in systems}
    all_succeeded = True
    for measurement_name, measure in measurements.items():
        for system in systems:
            log(f"{measurement_name}: {system.name}")
            try:
                details[system.name][measurement_name] = await measure(system, admin_url, workload)
            except EXPECTED_FAILURES as error:
                all_succeeded = False
                traceback.print_exc()
                details[system.name][measurement_name] = {"error": f"{type(error).__name__}: {error}"}
            log(f"{measurement_name}: {system.name}: {details[system.name][measurement_name]}")
    results = {system.name: headline(details[system.name]) for system in systems}
    baseline = "queue_core" if "queue_core" in results else (systems[0].name if systems else "")
    document: dict[str, object] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        "command": command,
        "machine": await describe_machine(admin_url),
        "parameters": workload.__dict__ | {"latency_jobs": workload.latency_jobs},
        "systems": {
            system.name: {
                "library_version": system.library_version(),
                "throughput_settings": system.throughput_settings(),
                "results": results[system.name],
                "details": details[system.name],
            }
            for system in systems
        },
        "relative_to": {"baseline": baseline, "ratios": relative_to(baseline, results)},
        "skipped_systems": skipped,
    }
    return document, all_succeeded
