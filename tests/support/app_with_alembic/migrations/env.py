"""The Alembic environment of an application that stores its queue in its own database.

The database is ``DATABASE_URL``. ``QueueBase.metadata`` sits beside the application's own metadata so
that autogenerate knows the queue's tables and never proposes to drop them.
"""

import os

from alembic import context
from sqlalchemy import MetaData, create_engine

from queue_core import QueueBase

APP_METADATA = MetaData()  # the application's models' metadata (its DeclarativeBase's) goes here
TARGET_METADATA = [APP_METADATA, QueueBase.metadata]


def run_migrations() -> None:
    """Run the pending revisions of every branch asked for, in one transaction."""
    engine = create_engine(os.environ["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=TARGET_METADATA,
                render_as_batch=connection.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


run_migrations()
