"""The key of each worker's session advisory lock (``queue_workers.session_lock_key``, ADR 0012).

A worker that holds a session lock writes its key here; a rescuer that can take that lock knows the
worker is dead and hands its tasks back at once, without waiting for the lease. NULL for workers that
hold none (older workers during a rolling deploy among them), which keep the lease rule alone.

Revision ID: queue_core_0003
Revises: queue_core_0002
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "queue_core_0003"
down_revision: str | Sequence[str] | None = "queue_core_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("queue_workers", sa.Column("session_lock_key", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_workers") as batch:
        batch.drop_column("session_lock_key")
