"""Summaries of latency samples."""

from __future__ import annotations

import statistics


def latency_summary_ms(samples_seconds: list[float]) -> dict[str, float | int]:
    """p50/p95/p99 (inclusive method: never beyond the observed range), mean and extremes, in ms."""
    if len(samples_seconds) < 2:
        raise ValueError("need at least two samples for percentiles")
    milliseconds = sorted(sample * 1000.0 for sample in samples_seconds)
    cut_points = statistics.quantiles(milliseconds, n=100, method="inclusive")
    return {
        "count": len(milliseconds),
        "p50": round(cut_points[49], 3),
        "p95": round(cut_points[94], 3),
        "p99": round(cut_points[98], 3),
        "mean": round(statistics.fmean(milliseconds), 3),
        "min": round(milliseconds[0], 3),
        "max": round(milliseconds[-1], 3),
    }


def per_second(count: int, seconds: float) -> float:
    """A rate rounded for reading; the raw count and seconds are recorded next to it."""
    return round(count / seconds, 1)
