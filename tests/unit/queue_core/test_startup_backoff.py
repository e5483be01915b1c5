"""A starting worker's retries back off from half a second to ten, each shortened by a random part."""

from __future__ import annotations

import random

import pytest

from queue_core._startup import retry_delay


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 10.0), (40, 10.0)],
)
def test_retry_delay_doubles_up_to_ten_seconds_and_takes_at_most_half_off(
    failures: int, ceiling: float
) -> None:
    rng = random.Random(1402)
    delays = [retry_delay(failures, rng) for _ in range(200)]

    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert max(delays) - min(delays) > ceiling / 4  # jittered: workers started together spread out
