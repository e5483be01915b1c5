"""The migrations, run on both backends: the schema they build is the schema the models describe."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

import queue_core
from queue_core import QueueBase
from queue_core.migrations import FIRST_REVISION
from shop.migrations import TARGET_METADATA, alembic_config

QUEUE_TABLES = set(QueueBase.metadata.tables)
CLAIM_INDEX = "ix_queue_tasks_claimable"


def claim_index_sql(engine: Engine) -> str:
    """The claim index as the database itself reports it."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        else:
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        return str(connection.execute(text(query), {"name": CLAIM_INDEX}).scalar_one())


def test_migrated_database_has_every_queue_table(engine: Engine) -> None:
    assert QUEUE_TABLES
    assert set(inspect(engine).get_table_names()) >= QUEUE_TABLES


def test_migrated_database_is_at_the_newest_revision_of_every_branch(
    engine: Engine, database_url: str
) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    # alembic_version names the newest revisions applied; those they depend on are applied with them.
    applied = {revision.revision for revision in script.iterate_revisions(current, "base")}
    assert set(script.get_heads()) <= applied


def test_claim_index_holds_only_pending_tasks_in_claim_order(engine: Engine) -> None:
    index_sql = " ".join(claim_index_sql(engine).split()).lower()

    assert "priority desc" in index_sql
    assert "where" in index_sql
    assert "'pending'" in index_sql.split("where", 1)[1]


def schema_differences(engine: Engine) -> list[tuple[str, Any]]:
    """What autogenerate would write if asked for a new revision now."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"target_metadata": TARGET_METADATA})
        # Alembic takes a list of MetaData here, as in env.py, though its annotation names only one.
        differences = list(compare_metadata(context, TARGET_METADATA))  # type: ignore[arg-type]
    if engine.dialect.name == "sqlite":
        # Alembic cannot reflect SQLite expression indexes such as the claim index's "priority DESC", so
        # it always reports that index as changed; test_claim_index_... checks it instead.
        differences = [
            difference
            for difference in differences
            if not (
                isinstance(difference, tuple)
                and difference[0] in {"add_index", "remove_index"}
                and difference[1].name == CLAIM_INDEX
            )
        ]
    return differences


def test_migrations_match_the_models(engine: Engine) -> None:
    assert schema_differences(engine) == [], "models changed: regenerate (see shop/migrations)"


def test_downgrade_to_base_removes_every_queue_table_and_upgrade_restores_them(
    engine: Engine, database_url: str
) -> None:
    config = alembic_config(database_url)

    command.downgrade(config, "base")
    assert not QUEUE_TABLES & set(inspect(engine).get_table_names())

    command.upgrade(config, "heads")
    assert set(inspect(engine).get_table_names()) >= QUEUE_TABLES


def test_the_queue_has_a_branch_of_its_own_in_its_package_and_the_shops_branch_depends_on_it() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    queue_versions = Path(queue_core.__file__).parent / "migrations" / "versions"

    queue_revisions = list(script.iterate_revisions("queue_core@head", "base"))
    shop_history = [revision.revision for revision in script.iterate_revisions("shop@head", "base")]

    assert queue_revisions
    assert all(Path(revision.path).parent == queue_versions for revision in queue_revisions)
    assert (
        FIRST_REVISION in shop_history
    )  # upgrading the shop's branch alone creates the queue's tables first


def test_a_database_the_shop_migrated_before_the_queue_had_its_own_branch_upgrades_in_place(
    engine: Engine, database_url: str
) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    # The queue's revision kept its ID: a database the old history left at its first step says "0001".
    command.upgrade(config, FIRST_REVISION)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == (FIRST_REVISION,)

    command.upgrade(config, "heads")

    assert schema_differences(engine) == []


def test_a_database_at_the_shops_last_head_before_the_branches_gets_the_queues_later_revisions(
    engine: Engine, database_url: str
) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "base")
    # Where every database the shop migrated before the split stands: the shop's 0003, the queue's 0001.
    command.upgrade(config, "0003")
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == ("0003",)

    command.upgrade(config, "heads")  # what `shop db upgrade` runs

    with engine.connect() as connection:
        heads = set(MigrationContext.configure(connection).get_current_heads())
    assert heads == set(ScriptDirectory.from_config(config).get_heads())
    assert schema_differences(engine) == []
