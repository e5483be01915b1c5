"""A worker's statements keep their partial indexes under PostgreSQL's generic plans.

psycopg prepares a statement that a connection runs often, and PostgreSQL then settles on one *generic*
plan for it, made without the parameters' values. Had the claim sent ``state = $1``, that plan could not
use the partial index of pending rows (``WHERE state = 'pending'``): a worker whose statements were
planned while the table was small went on scanning the whole table once a long history arrived. Here
every statement of a worker's round (claim, completion, heartbeat, rescue, expiry, pruning) is captured,
prepared and explained with ``plan_cache_mode = force_generic_plan`` over 200,000 finished tasks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from queue_core import RunningTask, TaskRegistry, WorkerSettings
from queue_core._heartbeat import Holdings, beat
from queue_core._maintenance import expire_overdue, prune, rescue_abandoned
from queue_core.testing import drain

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only]

HISTORY = 200_000
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def load_history(engine: Engine) -> None:
    """200,000 tasks that finished yesterday, in one statement, then ANALYZE: a long-running shop's table."""
    with engine.begin() as connection:
        connection.execute(
            text(
                """
                INSERT INTO queue_tasks (id, name, queue, state, priority, attempts, max_attempts,
                                         run_at, created_at, started_at, finished_at, cancel_requested)
                SELECT gen_random_uuid(), 'stack-crates', 'depot', 'succeeded', 0, 1, 5,
                       now() - interval '1 day', now() - interval '1 day', now() - interval '1 day',
                       now() - interval '1 day', false
                FROM generate_series(1, :count)
                """
            ),
            {"count": HISTORY},
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE queue_tasks"))


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every statement sent through ``engine`` inside the block that reads or changes ``queue_tasks``."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "queue_tasks" in statement and not statement.lstrip().upper().startswith("INSERT"):
            sent.append((statement, dict(parameters or {})))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def generic_plan(engine: Engine, statement: str, parameters: dict[str, Any]) -> str:
    """The plan PostgreSQL makes for ``statement`` once prepared, without knowing its parameters' values."""
    names = list(dict.fromkeys(PLACEHOLDER.findall(statement)))
    prepared = PLACEHOLDER.sub(lambda match: f"${names.index(match.group(1)) + 1}", statement)
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert isinstance(connection, psycopg.Connection)
        with psycopg.ClientCursor(connection) as cursor:  # EXECUTE's arguments are written in, not bound
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE probe AS {prepared}")
            arguments = ", ".join(["%s"] * len(names))
            cursor.execute(
                f"EXPLAIN EXECUTE probe({arguments})" if names else "EXPLAIN EXECUTE probe",
                [parameters[name] for name in names],
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
            cursor.execute("DEALLOCATE probe")
        connection.rollback()
        return plan
    finally:
        raw.close()


def test_a_workers_statements_use_the_partial_indexes_even_under_generic_plans(engine: Engine) -> None:
    load_history(engine)
    registry = TaskRegistry()

    @registry.task("stack-crates", queue="depot")
    def stack_crates(task: RunningTask, session: Session) -> None:
        """Nothing to stack: the statements around the handler are what is measured."""

    with Session(engine) as session, session.begin():
        for _ in range(3):
            stack_crates.enqueue(session)

    with captured(engine) as sent:
        assert drain(engine, registry).counts == {"succeeded": 3}  # the worker's claim and completion
        with engine.begin() as connection:
            beat(connection, uuid.uuid4(), ["depot"], WorkerSettings(), lambda: Holdings(set(), []))
            rescue_abandoned(connection)
            expire_overdue(connection)
            prune(connection, registry.references, older_than_seconds=7 * 86400)

    assert len(sent) >= 6
    for statement, parameters in sent:
        plan = generic_plan(engine, statement, parameters)
        assert "Seq Scan on queue_tasks" not in plan, (
            f"a generic plan scans the task table:\n{statement}\n{plan}"
        )
