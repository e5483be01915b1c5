"""Waiting for freshly started servers: poll their health URLs, failing fast if a process died."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx


def wait_until_answering(
    urls: Sequence[str], *, check_alive: Callable[[], None], timeout: float, explain: Callable[[], str] = str
) -> None:
    """Until each URL answers 200, in order. ``check_alive`` raises as soon as a process exits, and
    ``explain()`` (e.g. the processes' logs) is added to the failure when time runs out."""
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            check_alive()
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer 200 within {timeout:.0f} s\n{explain()}".rstrip())
            time.sleep(0.2)
