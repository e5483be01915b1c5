"""``shop worker`` started while PostgreSQL is down waits for it, and runs tasks once it is back.

The cluster is this module's own, with password authentication (as production has), so that a wrong
password is refused the way it would be there. A scenario stops it before starting a worker and starts
it again while the worker waits; the worker is a real process, told what to run by the hidden
``--registry`` option (this module's one task), and the test enqueues and reads tasks with queue_core
as any application would. Every wait is for a condition (a log line, a task's state), never a fixed time.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, TaskState, enqueue, state_of
from shop import migrations
from shop.database import create_engine_from_url
from tests.support.databases import libpq_url
from tests.support.postgres_cluster import PostgresBinariesNotFound, PostgresCluster
from tests.support.processes import LoggedProcess, Processes, shop_command

PASSWORD = "CRUNCHY-ARMCHAIR-7"
DATABASE = "depot"
WAITING = "database not reachable yet ("
PARCEL_REGISTRY = "tests.e2e.test_worker_waiting_for_the_database:parcel_registry"

parcel_registry = TaskRegistry()


@parcel_registry.task("weigh-parcel", queue="parcels")
def weigh_parcel(task: RunningTask, session: Session) -> None:
    """Stands in for real work: running it is what moves the task to succeeded."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """A running cluster that wants a password, with a migrated ``depot`` database."""
    try:
        cluster = PostgresCluster(password=PASSWORD)
    except PostgresBinariesNotFound as error:
        pytest.skip(f"these scenarios start their own PostgreSQL: {error}")
    try:
        cluster.start()
        with psycopg.connect(libpq_url(cluster.url()), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        migrations.upgrade(cluster.url(DATABASE))
        yield cluster
    finally:
        cluster.remove()


@contextmanager
def stopped(cluster: PostgresCluster) -> Iterator[None]:
    """The cluster stopped for the block (it may start it again itself); running again after it."""
    cluster.stop()
    try:
        yield
    finally:
        if not cluster.is_running():
            cluster.start()


def start_worker(processes: Processes, database_url: str) -> LoggedProcess:
    environment = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    command = shop_command("worker", "--registry", PARCEL_REGISTRY, "--concurrency", "2")
    return processes.start("worker", command, environment=environment)


def waiting_lines(worker: LoggedProcess) -> list[str]:
    return [line for line in worker.log_text().splitlines() if WAITING in line]


def enqueue_parcel(database_url: str) -> uuid.UUID:
    engine = create_engine_from_url(database_url)
    try:
        with Session(engine) as session, session.begin():
            return enqueue(session, "weigh-parcel", queue="parcels")
    finally:
        engine.dispose()


def task_state(database_url: str, task_id: uuid.UUID) -> TaskState | None:
    engine = create_engine_from_url(database_url)
    try:
        with Session(engine) as session:
            return state_of(session, task_id)
    finally:
        engine.dispose()


@pytest.mark.timeout(120)
def test_a_worker_started_while_the_database_is_down_waits_and_runs_tasks_once_it_is_back(
    cluster: PostgresCluster, processes: Processes
) -> None:
    database_url = cluster.url(DATABASE)
    with stopped(cluster):
        worker = start_worker(processes, database_url)
        # Two lines, at most one per 5 s: the worker has been alive and waiting for several seconds.
        processes.wait_until(
            lambda: len(waiting_lines(worker)) >= 2, what="the worker logs twice that it waits"
        )
        cluster.start()
    parcel = enqueue_parcel(database_url)

    processes.wait_until(
        lambda: task_state(database_url, parcel) == TaskState.SUCCEEDED,
        what="the worker weighs the parcel enqueued once the database is back",
    )
    assert worker.stop(signal.SIGTERM, seconds=10) == 0
    log_text = worker.log_text()
    assert "Connection refused" in waiting_lines(worker)[0]
    assert "retrying in" in waiting_lines(worker)[0]
    assert "database reachable after" in log_text
    assert "Traceback" not in log_text


@pytest.mark.timeout(60)
def test_a_worker_sent_sigterm_while_it_waits_for_the_database_exits_0_at_once(
    cluster: PostgresCluster, processes: Processes
) -> None:
    with stopped(cluster):
        worker = start_worker(processes, cluster.url(DATABASE))
        processes.wait_until(lambda: waiting_lines(worker), what="the worker logs that it waits")
        stopping_since = time.monotonic()
        exit_code = worker.stop(signal.SIGTERM, seconds=10)

    assert exit_code == 0
    assert time.monotonic() - stopping_since < 3.0
    assert "stopped before the database was reachable" in worker.log_text()


@pytest.mark.timeout(60)
def test_a_worker_with_a_wrong_password_exits_at_once_with_the_fix(
    cluster: PostgresCluster, processes: Processes
) -> None:
    wrong = cluster.url(DATABASE).replace(f":{PASSWORD}@", ":not-the-password@")
    worker = start_worker(processes, wrong)
    exit_code = worker.popen.wait(timeout=30)  # were it to wait for the database, it would wait forever

    assert exit_code == 1
    assert waiting_lines(worker) == []
    last_line = worker.log_text().splitlines()[-1]
    assert last_line.startswith(
        f"Error: cannot use the database at postgresql+psycopg://postgres:***@127.0.0.1:{cluster.port}/depot"
    )
    assert 'password authentication failed for user "postgres"' in last_line
    assert "; set DATABASE_URL to a reachable database" in last_line
    assert "Traceback" not in worker.log_text()
