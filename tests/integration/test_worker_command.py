"""``shop worker``: bad options and an empty registry are refused; a real process runs tasks until SIGTERM,
waits for a database it cannot reach, and exits at once, with the fix, on a misconfigured one.

The application's registry is still empty, so the process tests pass the hidden ``--registry`` option
(``tests.integration.test_worker_command:parcel_registry``) to give the worker this module's one real task.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, enqueue
from queue_core._models import task_table, worker_table
from shop.cli.main import main
from shop.web.app import create_app
from tests.support.credentials import web_settings
from tests.support.databases import PostgresServer
from tests.support.processes import REPO_ROOT, LoggedProcess, Processes

SHOP = Path(sys.executable).parent / "shop"
PARCEL_REGISTRY = "tests.integration.test_worker_command:parcel_registry"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) \S+: ")

parcel_registry = TaskRegistry()


@parcel_registry.task("weigh-parcel", queue="parcels")
def weigh_parcel(task: RunningTask, session: Session) -> None:
    """Stands in for real work: running it is what moves the task to succeeded."""


def shop(*args: str) -> Result:
    """Run ``shop ARGS`` in this process, for the checks made before the worker touches a database."""
    app = create_app(web_settings("sqlite://"))
    return app.test_cli_runner().invoke(main, list(args))


def test_worker_with_no_registered_tasks_says_there_is_nothing_to_work_on() -> None:
    result = shop("worker", "--registry", "queue_core:TaskRegistry")  # a registry with nothing in it

    assert result.exit_code == 1
    assert result.output == (
        "Error: nothing to work on: no tasks are registered (contexts plug into shop.tasks.build_registry)\n"
    )


def test_worker_for_queues_no_registered_task_uses_says_there_is_nothing_to_work_on() -> None:
    result = shop("worker", "--queues", "mail,invoices", "--registry", PARCEL_REGISTRY)

    assert result.exit_code == 1
    assert result.output == (
        "Error: nothing to work on: no registered task uses queue(s) mail, invoices "
        "(registered tasks use parcels)\n"
    )


@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("--concurrency", "0", "0 is not in the range x>=1"),
        ("--concurrency", "many", "'many' is not a valid integer"),
        ("--lease-seconds", "0.5", "0.5 is not in the range x>=1.0"),
        ("--prune-after-days", "-1", "-1.0 is not in the range x>=0.0"),
        ("--startup-patience", "-1", "-1.0 is not in the range x>=0.0"),
        ("--queues", "parcels,,mail", "has an empty queue name"),
        ("--registry", "tests.integration.test_worker_command", "is not of the form module:attribute"),
        ("--registry", "tests.integration.test_worker_command:no_such_registry", "cannot load"),
        ("--registry", "shop.tasks:REGISTRY_CONFIG_KEY", "is not a TaskRegistry"),
    ],
)
def test_worker_turns_a_bad_option_into_a_usage_error(option: str, value: str, complaint: str) -> None:
    result = shop("worker", option, value)

    assert result.exit_code == 2
    assert f"Error: Invalid value for '{option}'" in result.output
    assert complaint in result.output
    assert "Traceback" not in result.output


def test_worker_help_documents_the_registry_option_for_tests_and_demos() -> None:
    result = shop("worker", "--help")

    assert result.exit_code == 0
    assert "--registry module:attr" in result.output


def start_worker(processes: Processes, database_url: str, *args: str) -> LoggedProcess:
    # PYTHONPATH lets the process import this module for --registry; everything else it imports anyway.
    environment = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(REPO_ROOT)}
    command = [str(SHOP), "worker", "--registry", PARCEL_REGISTRY, *args]
    return processes.start("worker", command, environment=environment)


@pytest.mark.slow
def test_worker_process_registers_runs_tasks_and_exits_0_soon_after_sigterm(
    database_url: str, engine: Engine, processes: Processes
) -> None:
    with Session(engine) as session, session.begin():
        parcels = [enqueue(session, "weigh-parcel", queue="parcels") for _ in range(3)]

    process = start_worker(processes, database_url, "--queues", "parcels", "--concurrency", "2")

    def registered_and_done() -> bool:
        with engine.connect() as connection:
            workers = connection.execute(select(worker_table.c.pid, worker_table.c.concurrency)).all()
            states = set(connection.scalars(select(task_table.c.state).where(task_table.c.id.in_(parcels))))
        return workers == [(process.pid, 2)] and states == {"succeeded"}

    processes.wait_until(
        registered_and_done, what="the worker is in queue_workers and has weighed every parcel", timeout=15
    )
    stopping_since = time.monotonic()
    exit_code = process.stop(signal.SIGTERM, seconds=10)

    assert exit_code == 0
    assert time.monotonic() - stopping_since < 5
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(worker_table)) == 0
    lines = process.log_text().splitlines()
    assert lines, "the worker logged nothing"
    assert all(LOG_LINE.match(line) for line in lines), lines
    assert any("running tasks weigh-parcel" in line for line in lines)
    assert any("started: queues=['parcels'] concurrency=2" in line for line in lines)
    assert any("received SIGTERM" in line for line in lines)
    assert "stopped" in lines[-1]


@pytest.mark.slow
def test_worker_process_gives_up_on_an_unreachable_server_after_its_startup_patience_with_the_fix(
    processes: Processes,
) -> None:
    process = start_worker(processes, "postgresql://clerk:s3cret@127.0.0.1:1/shop", "--startup-patience", "1")
    exit_code = process.popen.wait(timeout=30)

    assert exit_code == 1
    lines = process.log_text().splitlines()
    assert any("database not reachable yet (" in line and "Connection refused" in line for line in lines)
    assert lines[-1].startswith(
        "Error: cannot use the database at postgresql+psycopg://clerk:***@127.0.0.1:1/shop"
    )
    assert "set DATABASE_URL" in lines[-1]
    assert "Traceback" not in process.log_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("database", "user", "refusal", "fix"),
    [
        ("no_such_shop", "postgres", 'database "no_such_shop" does not exist', "set DATABASE_URL"),
        ("postgres", "no_such_clerk", 'role "no_such_clerk" does not exist', "set DATABASE_URL"),
        (None, "postgres", 'relation "queue_workers" does not exist', "run `shop db upgrade` first"),
    ],
    ids=["missing-database", "unknown-role", "schema-not-migrated"],
)
def test_worker_process_on_a_misconfigured_database_exits_at_once_with_the_fix(
    postgres_server: PostgresServer,
    processes: Processes,
    database: str | None,
    user: str,
    refusal: str,
    fix: str,
) -> None:
    url = postgres_server.fresh_empty_database() if database is None else postgres_server.url(database)
    process = start_worker(
        processes, url.replace("//postgres@", f"//{user}@", 1)
    )  # waits forever if it waits
    exit_code = process.popen.wait(timeout=30)

    assert exit_code == 1
    log_text = process.log_text()
    assert "not reachable yet" not in log_text
    last_line = log_text.splitlines()[-1]
    assert last_line.startswith("Error: cannot use the database at postgresql+psycopg://")
    assert refusal in last_line
    assert last_line.split("; ")[-1].startswith(fix)
    assert "Traceback" not in log_text
