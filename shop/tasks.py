"""The application's task registry: every bounded context's tasks, schedules and task references, merged.

Workers and the ``shop queue`` commands see only this registry, so a task a context forgets to plug in
here is never run, and a reference column left out is neither protected from pruning nor checked.
"""

from __future__ import annotations

from flask import Flask

from queue_core import TaskRegistry

REGISTRY_CONFIG_KEY = "TASK_REGISTRY"


def build_registry() -> TaskRegistry:
    """The registry of the whole application, built fresh on each call.

    Each bounded context will keep its own ``TaskRegistry`` in its ``tasks.py`` and be merged here, one
    line per context, e.g. ``registry.include(orders.tasks.registry)``. Orders, payments and shipping do
    not exist yet, so today the registry is empty and a worker refuses to start with nothing to do.
    """
    return TaskRegistry()


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
