"""``create_tables`` builds the schema that queue_core's Alembic revisions build, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text

from queue_core import QueueBase, configure_engine, create_tables
from queue_core.migrations import BRANCH_LABEL
from shop.migrations import upgrade
from tests.support.app_with_alembic import ALEMBIC_INI
from tests.support.quickstart import invoices_with_their_task_states

QUEUE_TABLES = sorted(QueueBase.metadata.tables)


def index_definitions(engine: Engine, table: str) -> set[tuple[str, str]]:
    """Each index of ``table`` as the database itself writes it: its columns, order and WHERE clause."""
    if engine.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table"
    else:  # SQLite keeps the CREATE INDEX it was given; indexes it made itself have none
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table AND sql <> ''"
    with engine.connect() as connection:
        return {
            (name, " ".join(sql.split())) for name, sql in connection.execute(text(query), {"table": table})
        }


def described(url: str) -> dict[str, dict[str, Any]]:
    """The queue's tables as reflected from the database: columns, keys, checks and indexes.

    Sets rather than lists: a revision that adds a column appends it, where the models may put it anywhere.
    """
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {
            table: {
                "columns": {
                    (column["name"], str(column["type"]), column["nullable"], column.get("default"))
                    for column in inspector.get_columns(table)
                },
                "primary key": inspector.get_pk_constraint(table),
                "checks": {
                    (check["name"], " ".join(check["sqltext"].split()))
                    for check in inspector.get_check_constraints(table)
                },
                "unique": {unique["name"] for unique in inspector.get_unique_constraints(table)},
                "foreign keys": {
                    (tuple(key["constrained_columns"]), key["referred_table"])
                    for key in inspector.get_foreign_keys(table)
                },
                "indexes": index_definitions(engine, table),
            }
            for table in inspector.get_table_names()
            if table.startswith("queue_")
        }
    finally:
        engine.dispose()


def test_create_tables_builds_what_the_queue_core_revisions_build(
    make_empty_database: Callable[[], str],
) -> None:
    created, migrated = make_empty_database(), make_empty_database()

    engine = create_engine(created)
    create_tables(engine)
    engine.dispose()
    upgrade(migrated, f"{BRANCH_LABEL}@head")

    assert sorted(described(created)) == QUEUE_TABLES
    assert described(created) == described(migrated)


def test_processes_starting_together_on_an_empty_database_all_create_the_tables_without_error(
    make_empty_database: Callable[[], str],
) -> None:
    url = make_empty_database()
    engine = configure_engine(create_engine(url))
    starting = threading.Barrier(4)
    errors: list[BaseException] = []

    def start() -> None:  # what a web process and its workers do at start-up, at the same instant
        starting.wait()
        try:
            create_tables(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()

    assert errors == []
    assert sorted(described(url)) == QUEUE_TABLES


def test_create_tables_leaves_a_migrated_database_as_it_is(engine: Engine, database_url: str) -> None:
    before = described(database_url)

    create_tables(engine)

    assert described(database_url) == before


def test_an_applications_own_alembic_creates_the_queue_before_its_own_tables(
    make_empty_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, reference = make_empty_database(), make_empty_database()
    monkeypatch.setenv("DATABASE_URL", url)

    command.upgrade(Config(ALEMBIC_INI), "heads")

    engine = create_engine(reference)
    create_tables(engine)
    engine.dispose()
    assert invoices_with_their_task_states(url) == []  # the application's table is there, and empty
    assert described(url) == described(reference)
