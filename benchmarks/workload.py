"""The sizes of one benchmark run, in one place, so the JSON can record exactly what was measured."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Workload:
    """Every size and pace the measurements use; ``quick`` divides the sizes by ten."""

    enqueuers: int = 4
    single_enqueue_jobs: int = 3_000
    bulk_enqueue_jobs: int = 20_000
    bulk_batch_size: int = 1_000
    workers: int = 2
    drain_jobs: int = 20_000
    latency_jobs_per_second: float = 100.0
    latency_seconds: float = 10.0
    latency_warmup_seconds: float = 2.0
    history_jobs: int = 1_000_000

    @classmethod
    def quick(cls) -> Workload:
        """A run that finishes in a few minutes: every size shrunk tenfold, the pace kept."""
        return cls(
            single_enqueue_jobs=300,
            bulk_enqueue_jobs=2_000,
            bulk_batch_size=100,
            drain_jobs=2_000,
            latency_seconds=1.0,
            history_jobs=100_000,
        )

    @property
    def latency_jobs(self) -> int:
        """How many probed jobs the pickup-latency measurement enqueues."""
        return round(self.latency_jobs_per_second * self.latency_seconds)
