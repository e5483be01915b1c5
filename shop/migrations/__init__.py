"""The shop's Alembic environment, configured in code (there is no ``alembic.ini``).

Two branches meet here: ``queue_core`` (the queue's tables, whose revisions ship inside the queue_core
package, ``queue_core/migrations/versions``) and ``shop`` (the contexts' tables and the shop's own, in
``versions/`` beside this file), whose first revision depends on the queue's first. ``upgrade`` takes
both to their heads. ``TARGET_METADATA`` lists every package's tables for autogenerate.

A new revision goes on one branch: name it with ``head`` (``"shop@head"`` or ``"queue_core@head"``) and
Alembic writes it into that branch's directory. Autogenerate against an empty PostgreSQL database
migrated to the heads, then read the result: it must keep the partial indexes' ``postgresql_where`` and
``sqlite_where`` and the claim index's ``priority DESC``. For example::

    createdb -h 127.0.0.1 -U postgres shop_autogen
    .venv/bin/python -c "from alembic import command; from shop.migrations import alembic_config, upgrade; \
        url = 'postgresql://postgres@127.0.0.1:5432/shop_autogen'; upgrade(url); \
        command.revision(alembic_config(url), message='queue claims by name', rev_id='queue_core_0003', \
        head='queue_core@head', autogenerate=True)"
    dropdb -h 127.0.0.1 -U postgres shop_autogen
    .venv/bin/ruff format shop/migrations/versions queue_core/migrations/versions

Revision IDs are shared by both directories, so a new one must be unused in either: the queue's are
named ``queue_core_NNNN`` (its first, ``0001``, predates the branch), the shop's ``NNNN``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData

from orders.models import OrdersBase
from payments.models import PaymentsBase
from queue_core import QueueBase
from queue_core.migrations import VERSION_LOCATION
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
    # One location per line, so that neither a space nor a colon in a path splits it.
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", f"{MIGRATIONS_DIR / 'versions'}\n{VERSION_LOCATION}")
    # Revision files are named by their id and slug: versions/0002_orders_payments_shipping.py.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Migrate the database at ``url`` to ``revision``: by default, every branch to its newest."""
    command.upgrade(alembic_config(url), revision)
