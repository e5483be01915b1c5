"""Failed sign-ins, counted per client address: after a few, ``/sign-in`` refuses every try for a while.

Only a wrong key counts: a form refused for its origin or its CSRF token never reaches the key check, so
a page on another site cannot lock an operator out by posting for them, and a right key costs nothing.
The counting is the ``limits`` library's moving window (the core of Flask-Limiter), kept in memory per
process by default; several web processes share one count through ``RATELIMIT_STORAGE_URI`` (Redis, ...).
Behind a proxy, the client's address is right only with ``SHOP_TRUSTED_PROXIES`` set; without it every
client shares the proxy's address, and so one count.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many, storage, strategies

ALLOWED_FAILURES = "5/minute;30/hour"
NAMESPACE = "failed-sign-in"


class SignInAttempts:
    """The failed sign-ins of each client address, within ``ALLOWED_FAILURES``."""

    def __init__(self, storage_uri: str, allowed_failures: str = ALLOWED_FAILURES) -> None:
        self._limits: list[RateLimitItem] = parse_many(allowed_failures)
        self._window = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_uri))

    def seconds_until_allowed(self, address: str) -> int:
        """0 if ``address`` may try now; else how long until it may (the ``Retry-After``)."""
        waits = [
            self._window.get_window_stats(limit, NAMESPACE, address).reset_time - time.time()
            for limit in self._limits
            if not self._window.test(limit, NAMESPACE, address)
        ]
        return max(1, math.ceil(max(waits))) if waits else 0

    def record_failure(self, address: str) -> None:
        for limit in self._limits:
            self._window.hit(limit, NAMESPACE, address)
