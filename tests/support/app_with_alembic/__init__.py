"""An application's own Alembic that includes queue_core's revisions, set up as docs/queue-core.md says.

``alembic -c tests/support/app_with_alembic/alembic.ini upgrade heads`` migrates ``DATABASE_URL``: the
queue's branch first, then the application's (its invoices table), which depends on it.
"""

from pathlib import Path

ALEMBIC_INI = str(Path(__file__).with_name("alembic.ini"))
