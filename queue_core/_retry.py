"""How long to wait before the next attempt of a failed task."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, per task name.

    Attempt ``n`` (1-based) that fails waits ``base * 2**(n-1)`` seconds, capped at ``cap``, then scaled
    by a random factor in ``[1 - jitter, 1]`` so that tasks that failed together do not retry together.
    After ``max_attempts`` attempts the task is ``dead``.
    """

    max_attempts: int = 5
    base_seconds: float = 1.0
    cap_seconds: float = 3600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if self.base_seconds < 0 or self.cap_seconds < 0:
            raise ValueError("base_seconds and cap_seconds must not be negative")

    def delay_after(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        exponential = min(self.cap_seconds, self.base_seconds * 2.0 ** max(0, attempt - 1))
        factor: float = 1.0 - self.jitter * (rng or random).random()
        return exponential * factor
