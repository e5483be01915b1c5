"""The browser tests' worker registry: the whole application's, plus one task whose first attempt fails.

``browser.fails_first_time`` allows one attempt, so its first run ends ``dead`` at once: a dead task made
on purpose, in a second, with nothing else disturbed (no gateway outage to wait out through a charge's six
attempts). Re-queued from the dashboard it gets a second attempt, which succeeds; its page then shows the
first attempt's error and the success after it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from queue_core import RetryPolicy, RunningTask, TaskRegistry
from shop.tasks import build_registry as build_shop_registry

registry = TaskRegistry()


@registry.task("browser.fails_first_time", queue="browser", retry=RetryPolicy(max_attempts=1))
def fails_first_time(task: RunningTask, session: Session) -> None:
    """Fail on the first attempt only (the error names what went wrong, as a real one would)."""
    if task.attempt == 1:
        raise RuntimeError("the CRUNCHY-ARMCHAIR fell off the truck (the first attempt always fails)")


def build_registry() -> TaskRegistry:
    """What ``shop worker --registry tests.browser.flaky_tasks:build_registry`` runs."""
    combined = build_shop_registry()
    combined.include(registry)
    return combined
