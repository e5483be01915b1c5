"""How a worker behaves (``WorkerSettings``) and what it counts (``WorkerStats``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker behaves. The defaults suit tasks that call other services; see docs/performance.md."""

    queues: Sequence[str] | None = None  # None: every queue the registry's tasks use
    concurrency: int = 4  # runner threads
    prefetch: int | None = None  # tasks claimed ahead, waiting in the local buffer; default 4 x concurrency
    group_size: int = 50  # most tasks sharing one commit
    group_window: float = 0.05  # seconds a commit group stays open collecting tasks
    lease_seconds: float = 30.0  # silence after which a worker's tasks are rescued
    heartbeat_interval: float | None = None  # default lease_seconds / 5
    poll_interval: float = 1.0  # claim this often even without a notification
    maintenance_interval: float = 1.0
    prune_after_seconds: float | None = None  # None: this worker does not prune
    prune_every_seconds: float = 60.0
    shutdown_grace: float = 30.0
    listen: bool = True  # LISTEN/NOTIFY on PostgreSQL
    # On PostgreSQL, hold a session advisory lock so that this worker's tasks are rescued within a maintenance
    # pass of its death, not its lease (ADR 0012). Off where the connection is pooled per transaction.
    fast_rescue: bool = True
    # On PostgreSQL, seconds a starting worker waits for a database that is down or restarting, retrying
    # with backoff, before it raises; None: as long as it takes. A misconfiguration raises at once.
    startup_patience: float | None = None

    @property
    def buffer_size(self) -> int:
        # Enough for each runner to find several tasks waiting when it opens a commit group: with two
        # per runner, groups held one or two tasks, each paying a whole synchronous commit.
        return self.prefetch if self.prefetch is not None else 4 * self.concurrency

    @property
    def heartbeat_every(self) -> float:
        return self.heartbeat_interval if self.heartbeat_interval is not None else self.lease_seconds / 5


@dataclass
class WorkerStats:
    """Counters for logs and tests."""

    claimed: int = 0
    claims: int = 0  # claim transactions that returned tasks
    commit_groups: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
