"""The queue's dead tasks, newest first, through a partial index (``ix_queue_tasks_dead``).

A dashboard lists the newest dead tasks on every refresh; without this index that listing reads every
finished task (see queue_core/_dashboard.py and tests/integration/queue_core/test_inspection_at_scale.py).

Revision ID: queue_core_0002
Revises: 0001
Create Date: 2026-12-01 15:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "queue_core_0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_queue_tasks_dead",
        "queue_tasks",
        ["created_at", "id"],
        unique=False,
        postgresql_where=sa.text("state = 'dead'"),
        sqlite_where=sa.text("state = 'dead'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_queue_tasks_dead",
        table_name="queue_tasks",
        postgresql_where=sa.text("state = 'dead'"),
        sqlite_where=sa.text("state = 'dead'"),
    )
