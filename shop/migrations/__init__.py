"""The one home of the schema's history: Alembic, configured in code (there is no ``alembic.ini``).

Every package's tables are migrated from here: ``TARGET_METADATA`` lists them for autogenerate.
Autogenerate against an empty PostgreSQL database, then read the result: it must keep the partial
indexes' ``postgresql_where`` and ``sqlite_where`` and the claim index's ``priority DESC``. For example,
to rebuild the initial revision after deleting ``versions/0001_queue_core.py``::

    createdb -h 127.0.0.1 -U postgres shop_autogen
    .venv/bin/python -c "from alembic import command; from shop.migrations import alembic_config; \
        command.revision(alembic_config('postgresql://postgres@127.0.0.1:5432/shop_autogen'), \
        message='queue_core', rev_id='0001', autogenerate=True)"
    dropdb -h 127.0.0.1 -U postgres shop_autogen
    .venv/bin/ruff format shop/migrations/versions
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from orders.models import OrdersBase
from payments.models import PaymentsBase
from queue_core import QueueBase
from shipping.models import ShippingBase
from shop.access.operator_sessions import AccessBase

MIGRATIONS_DIR = Path(__file__).resolve().parent
# Every package that owns tables: the queue, the three bounded contexts, and the shop's own (sessions).
TARGET_METADATA: list[MetaData] = [
    QueueBase.metadata,
    OrdersBase.metadata,
    PaymentsBase.metadata,
    ShippingBase.metadata,
    AccessBase.metadata,
]


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` for ``url``; ``env.py`` reads the URL from ``config.attributes``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Revision files are named by their id and slug: versions/0001_queue_core.py.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision``."""
    command.upgrade(alembic_config(url), revision)
