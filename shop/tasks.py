"""The application's task registry: every bounded context's tasks, schedules and task references, merged.

Workers and the ``shop queue`` commands see only this registry, so a task a context forgets to plug in
here is never run, and a reference column left out is neither protected from pruning nor checked.
The registry also holds the one task the composition root owns: repairing dangling references.
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.orm import Session

import orders.tasks
import payments.tasks
import shipping.tasks
from queue_core import RunningTask, TaskRegistry, repair_dangling

log = logging.getLogger(__name__)

REGISTRY_CONFIG_KEY = "TASK_REGISTRY"
REPAIR_EVERY_SECONDS = 5.0


def build_registry() -> TaskRegistry:
    """The registry of the whole application, built fresh on each call: one line per context."""
    registry = TaskRegistry()
    registry.include(orders.tasks.registry)
    registry.include(payments.tasks.registry)
    registry.include(shipping.tasks.registry)

    # A transaction of its own: it locks rows of every context, which other tasks of a commit group
    # would otherwise wait behind (or deadlock with) until the whole group commits.
    @registry.task("shop.repair_dangling_references", queue="maintenance", commits_alone=True)
    def repair_dangling_references(task: RunningTask, session: Session) -> None:
        """Hand rows that point at a task that will never succeed to their context's repair function.

        A handler that runs out of attempts usually settles its row itself; this catches the rest (a
        worker killed during the last attempt, a task cancelled or expired by an operator), so that no
        business object stays stuck behind a dead task. Each column is repaired in a savepoint of its
        own: one that fails (and is logged, and tried again next time) does not hold up the others.
        """
        for reference in registry.references:
            try:
                with session.begin_nested():
                    repair_dangling(session, [reference])
            except Exception:
                log.exception("repairing rows of %s failed; trying again on the next tick", reference.label)

    registry.schedule("shop.repair", repair_dangling_references, every=REPAIR_EVERY_SECONDS)
    return registry


def registry_for(app: Flask) -> TaskRegistry:
    """The registry ``app``'s commands use: ``app.config["TASK_REGISTRY"]`` if set, else ``build_registry()``.

    The config key lets a test or a demo give the commands a registry of its own (with a table of its own
    to reference) without patching this module.
    """
    configured = app.config.get(REGISTRY_CONFIG_KEY)
    if configured is None:
        return build_registry()
    if not isinstance(configured, TaskRegistry):
        raise TypeError(f"app.config[{REGISTRY_CONFIG_KEY!r}] must be a TaskRegistry, not {configured!r}")
    return configured
