"""``shop worker``: run a queue worker in the foreground until SIGTERM or SIGINT.

Meant to be the main process of a container or a systemd unit: it logs one line per event to stderr,
finishes the tasks in hand on SIGTERM (within the grace period) and exits 0. Started before PostgreSQL
is up, or during a restart, it waits for it (queue_core's ``startup_patience``); a misconfigured
``DATABASE_URL`` exits 1 at once with the fix.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

import click
from flask import current_app
from flask.cli import with_appcontext

from queue_core import TaskRegistry, Worker, WorkerSettings
from shop import bootstrap
from shop.cli.database import command_engine
from shop.config import app_settings
from shop.database import SessionLimits
from shop.tasks import registry_for

SECONDS_PER_DAY = 86_400
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A handler's transaction waits on nothing but its own Python between statements (remote calls happen
# outside it, ADR 0011), so one idle for 2 s belongs to a frozen process: PostgreSQL ends it and its row
# locks go (its lease fence already refuses anything it would still write). A handler waits at most 1 s
# for a row lock; then its attempt fails and the queue runs it again after a backoff. Short, because a
# handler waiting on a lock holds one of the worker's few pooled connections: with longer waits, the
# reservations queued behind a frozen worker's product rows took every connection and the whole worker
# stood still (tests/e2e/test_frozen_worker.py). No statement_timeout: maintenance statements (pruning,
# repair) grow with the history they walk, and what stalls others is a held lock, which these bound.
WORKER_LIMITS = SessionLimits(lock_timeout_seconds=1.0, idle_in_transaction_seconds=2.0)

log = logging.getLogger(__name__)


class QueueNames(click.ParamType):
    """A comma-separated list of queue names: ``default,mail``."""

    name = "queue[,queue...]"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        names = [part.strip() for part in str(value).split(",")]
        if not all(names):
            self.fail(f"{value!r} has an empty queue name; give names separated by commas", param, ctx)
        return names


class RegistryReference(click.ParamType):
    """``module:attribute`` naming a ``TaskRegistry``, or a function without arguments that returns one."""

    name = "module:attr"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> TaskRegistry:
        if isinstance(value, TaskRegistry):
            return value
        module_name, _, attribute = str(value).partition(":")
        if not module_name or not attribute:
            self.fail(f"{value!r} is not of the form module:attribute", param, ctx)
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            self.fail(f"cannot load {value!r}: {error}", param, ctx)
        registry = found() if callable(found) and not isinstance(found, TaskRegistry) else found
        if not isinstance(registry, TaskRegistry):
            self.fail(f"{value!r} is not a TaskRegistry", param, ctx)
        return registry


@click.command("worker")
@click.option(
    "--queues",
    type=QueueNames(),
    default=None,
    help="Queues to claim from, comma-separated. Default: every queue the registered tasks use.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Tasks run at once (threads). Tasks waiting on another service hold no database connection, "
    "so this can be many times --db-connections.",
)
@click.option(
    "--db-connections",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Database connections the tasks share, at most; the worker's own bookkeeping uses up to 3 "
    "more, and LISTEN and the session lock one each.",
)
@click.option(
    "--lease-seconds",
    type=click.FloatRange(min=1.0),
    default=30.0,
    show_default=True,
    help="Silence after which another worker takes this worker's tasks.",
)
@click.option(
    "--fast-rescue/--no-fast-rescue",
    default=True,
    show_default=True,
    help="Hold a session lock so that this worker's tasks run again within a second if it dies "
    "(docs/adr/0012). Turn it off behind a connection pooler in transaction mode, which does not keep "
    "session locks; the 30 s lease still applies.",
)
@click.option(
    "--prune-after-days",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Also prune finished tasks older than this. Default: this worker does not prune.",
)
@click.option(
    "--startup-patience",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Seconds to wait at start for a PostgreSQL that is down or restarting (retrying with backoff, "
    "a log line every few seconds), then exit 1. Default: wait as long as it takes. A wrong password, "
    "a missing database or an unmigrated schema exits at once.",
)
@click.option("--registry", type=RegistryReference(), default=None, hidden=True)
@with_appcontext
def worker_command(
    queues: list[str] | None,
    concurrency: int,
    db_connections: int,
    lease_seconds: float,
    fast_rescue: bool,
    prune_after_days: float | None,
    startup_patience: float | None,
    registry: TaskRegistry | None,
) -> None:
    """Claim and run tasks until SIGTERM or SIGINT, then finish the tasks in hand and exit 0.

    Logs one line per event to stderr. For tests and demos, the hidden option --registry module:attr
    runs the TaskRegistry found there (or returned by calling it) instead of the application's.
    """
    registry = registry_for(current_app) if registry is None else registry
    _refuse_when_idle_by_design(registry, queues)
    settings = WorkerSettings(
        queues=queues,
        concurrency=concurrency,
        lease_seconds=lease_seconds,
        fast_rescue=fast_rescue,
        prune_after_seconds=None if prune_after_days is None else prune_after_days * SECONDS_PER_DAY,
        startup_patience=startup_patience,
    )
    _log_to_stderr()
    shop_settings = app_settings()
    if shop_settings.gateway_api_key is None:
        log.warning("GATEWAY_API_KEY is not set: the payment gateway will refuse every charge and refund")
    with (
        command_engine(connections=db_connections, limits=WORKER_LIMITS) as engine,
        bootstrap.gateway_client(shop_settings) as gateway,
    ):
        worker = Worker(engine, registry, settings, session_info=bootstrap.session_info(gateway=gateway))
        log.info("running tasks %s", ", ".join(sorted(registry.names)))
        worker.run()


def _refuse_when_idle_by_design(registry: TaskRegistry, queues: Sequence[str] | None) -> None:
    """A worker claims only task names it knows, so with none (in its queues) it would idle forever."""
    if not registry.names:
        raise click.ClickException(
            "nothing to work on: no tasks are registered (contexts plug into shop.tasks.build_registry)"
        )
    if queues is not None and not any(d.options.queue in queues for d in registry.definitions):
        raise click.ClickException(
            f"nothing to work on: no registered task uses queue(s) {', '.join(queues)} "
            f"(registered tasks use {', '.join(registry.queues())})"
        )


def _log_to_stderr() -> None:
    # The process's own logging setup: this command is the process's entry point, so it owns the root logger.
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
