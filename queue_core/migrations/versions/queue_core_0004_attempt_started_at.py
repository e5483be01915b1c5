"""When the current attempt's handler started (``queue_tasks.attempt_started_at``, ADR 0015).

A claim counts an attempt; a task a worker claimed ahead and never started gets it back when the worker
dies, and this column is how the rescuer tells the two apart: the worker sets it, in one statement per
batch, just before the handlers of that batch run.

Revision ID: queue_core_0004
Revises: queue_core_0003
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "queue_core_0004"
down_revision: str | Sequence[str] | None = "queue_core_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("queue_tasks", sa.Column("attempt_started_at", sa.DateTime(timezone=True), nullable=True))
    # Tasks running during the upgrade were claimed by workers that never mark a start: count them as
    # started, which is what those workers' rule (an attempt per claim) already did.
    op.execute("UPDATE queue_tasks SET attempt_started_at = started_at WHERE state = 'running'")


def downgrade() -> None:
    with op.batch_alter_table("queue_tasks") as batch:
        batch.drop_column("attempt_started_at")
