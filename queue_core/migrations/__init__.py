"""queue_core's schema history: Alembic revisions on a branch of their own, labelled ``queue_core``.

The revisions live in ``versions/`` and import only Alembic and SQLAlchemy. An application with its own
Alembic lists ``VERSION_LOCATION`` among its ``version_locations`` and makes its first revision depend on
``FIRST_REVISION``; an application without Alembic calls ``queue_core.create_tables`` instead. Both are
shown in docs/queue-core.md ("The queue's schema"). Importing this package needs no Alembic.
"""

from typing import Final

# A package resource, as Alembic reads it in ``version_locations``: found wherever queue_core is installed.
VERSION_LOCATION: Final = "queue_core:migrations/versions"
# The branch label, for ``alembic upgrade queue_core@head`` and ``alembic history -r queue_core@base:``.
BRANCH_LABEL: Final = "queue_core"
# The revision that creates the queue's tables: what an application's own first revision depends on.
FIRST_REVISION: Final = "0001"
