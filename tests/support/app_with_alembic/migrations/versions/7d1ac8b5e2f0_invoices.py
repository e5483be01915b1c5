"""The application's first revision: invoices, each pointing at the task that sends it.

It depends on queue_core's first revision, so ``alembic upgrade heads`` creates the queue's tables first.

Revision ID: 7d1ac8b5e2f0
Revises: None
Depends on: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d1ac8b5e2f0"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("invoicing",)
depends_on: str | Sequence[str] | None = "0001"  # queue_core.migrations.FIRST_REVISION


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer", sa.String(100), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("sending_task_id", sa.Uuid(), nullable=True, unique=True),
    )


def downgrade() -> None:
    op.drop_table("invoices")
