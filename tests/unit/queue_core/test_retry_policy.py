"""RetryPolicy: exponential backoff with jitter, and the values it refuses."""

from __future__ import annotations

import random

import pytest

from queue_core import RetryPolicy


class FixedRandom(random.Random):
    """A random source that always draws the same number, to pin the jitter factor."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_delay_doubles_with_each_failed_attempt_without_jitter() -> None:
    policy = RetryPolicy(base_seconds=0.5, jitter=0.0)
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


def test_delay_is_capped() -> None:
    policy = RetryPolicy(base_seconds=10, cap_seconds=60, jitter=0.0)
    assert policy.delay_after(3) == 40
    assert policy.delay_after(4) == 60
    assert policy.delay_after(30) == 60


def test_jitter_scales_the_delay_between_one_minus_jitter_and_one() -> None:
    policy = RetryPolicy(base_seconds=2, jitter=0.5)
    assert policy.delay_after(2, FixedRandom(0.0)) == 4.0
    assert policy.delay_after(2, FixedRandom(0.999999)) == pytest.approx(2.0, abs=1e-5)
    rng = random.Random(20261122)
    delays = [policy.delay_after(2, rng) for _ in range(2000)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    # The jitter really spreads retries: both halves of the band are used.
    assert min(delays) < 2.5 and max(delays) > 3.5


def test_full_jitter_may_retry_at_once_but_never_later_than_the_exponential() -> None:
    policy = RetryPolicy(base_seconds=1, jitter=1.0)
    rng = random.Random(7)
    assert all(0.0 <= policy.delay_after(3, rng) <= 4.0 for _ in range(500))


def test_attempt_zero_or_below_waits_the_base_delay() -> None:
    policy = RetryPolicy(base_seconds=3, jitter=0.0)
    assert policy.delay_after(0) == 3
    assert policy.delay_after(-2) == 3


@pytest.mark.parametrize("max_attempts", [0, -1])
def test_rejects_fewer_than_one_attempt(max_attempts: int) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=max_attempts)


@pytest.mark.parametrize("jitter", [-0.01, 1.01])
def test_rejects_jitter_outside_zero_to_one(jitter: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=jitter)


def test_accepts_the_edges_of_the_jitter_range() -> None:
    assert RetryPolicy(jitter=0.0).jitter == 0.0
    assert RetryPolicy(jitter=1.0).jitter == 1.0


@pytest.mark.parametrize(("base_seconds", "cap_seconds"), [(-1.0, 3600.0), (1.0, -5.0)])
def test_rejects_negative_delays(base_seconds: float, cap_seconds: float) -> None:
    # A negative wait is meaningless: it would schedule the retry in the past.
    with pytest.raises(ValueError):
        RetryPolicy(base_seconds=base_seconds, cap_seconds=cap_seconds)
