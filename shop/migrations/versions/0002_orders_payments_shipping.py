"""The three bounded contexts' tables: orders (with products), payments, shipments.

The products are seeded here: the catalogue is reference data the demo and the tests order from, and
stock is plentiful so that load tests run out of patience before they run out of armchairs.

The first revision of the ``shop`` branch; it depends on the ``queue_core`` branch's first revision
(``queue_core/migrations/versions``), so the queue's tables always exist first.

Revision ID: 0002
Revises: None
Depends on: 0001
Create Date: 2026-11-22 07:42:40.622620
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("shop",)
depends_on: str | Sequence[str] | None = "0001"

CATALOGUE = [
    ("CRUNCHY-ARMCHAIR", "Crunchy armchair", 24_900),
    ("WOBBLY-TABLE", "Wobbly table", 12_500),
    ("SHINY-LAMP", "Shiny lamp", 3_990),
    ("FLUFFY-RUG", "Fluffy rug", 8_900),
    ("TINY-TEAPOT", "Tiny teapot", 1_450),
    ("HEAVY-BOOKSHELF", "Heavy bookshelf", 19_900),
]


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("customer_email", sa.String(length=254), nullable=False),
        sa.Column("shipping_country", sa.String(length=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("fraud_check_task_id", sa.Uuid(), nullable=True),
        sa.Column("stock_reservation_task_id", sa.Uuid(), nullable=True),
        sa.Column("fraud_cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stock_reserved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('screening', 'awaiting_payment', 'paid', 'shipped', 'rejected', 'payment_failed', "
            "'cancelled')",
            name=op.f("ck_orders_known_state"),
        ),
        sa.CheckConstraint("total_cents >= 0", name=op.f("ck_orders_total_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_orders_idempotency_key")),
    )
    op.create_index("ix_orders_state_created_at", "orders", ["state", "created_at"], unique=False)
    op.create_index(
        "uq_orders_fraud_check_task_id",
        "orders",
        ["fraud_check_task_id"],
        unique=True,
        postgresql_where=sa.text("fraud_check_task_id IS NOT NULL"),
        sqlite_where=sa.text("fraud_check_task_id IS NOT NULL"),
    )
    op.create_index(
        "uq_orders_stock_reservation_task_id",
        "orders",
        ["stock_reservation_task_id"],
        unique=True,
        postgresql_where=sa.text("stock_reservation_task_id IS NOT NULL"),
        sqlite_where=sa.text("stock_reservation_task_id IS NOT NULL"),
    )
    products = op.create_table(
        "products",
        sa.Column("sku", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= on_hand", name=op.f("ck_products_reserved_within_stock")
        ),
        sa.CheckConstraint("unit_price_cents >= 0", name=op.f("ck_products_price_not_negative")),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_products")),
    )
    op.bulk_insert(
        products,
        [
            {"sku": sku, "name": name, "unit_price_cents": price, "on_hand": 1_000_000, "reserved": 0}
            for sku, name, price in CATALOGUE
        ],
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_order_lines_quantity_positive")),
        sa.CheckConstraint("unit_price_cents >= 0", name=op.f("ck_order_lines_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["sku"], ["products.sku"], name=op.f("fk_order_lines_sku_products")),
        sa.PrimaryKeyConstraint("order_id", "line_number", name=op.f("pk_order_lines")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("processing_task_id", sa.Uuid(), nullable=True),
        sa.Column("refund_task_id", sa.Uuid(), nullable=True),
        sa.Column("gateway_charge_id", sa.String(length=64), nullable=True),
        sa.Column("gateway_refund_status", sa.String(length=32), nullable=True),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'captured', 'declined', 'failed', 'cancelled', 'refunding', 'refunded')",
            name=op.f("ck_payments_known_state"),
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_payments_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payments_idempotency_key")),
        sa.UniqueConstraint("order_id", name=op.f("uq_payments_order_id")),
    )
    op.create_index(
        "uq_payments_processing_task_id",
        "payments",
        ["processing_task_id"],
        unique=True,
        postgresql_where=sa.text("processing_task_id IS NOT NULL"),
        sqlite_where=sa.text("processing_task_id IS NOT NULL"),
    )
    op.create_index(
        "uq_payments_refund_task_id",
        "payments",
        ["refund_task_id"],
        unique=True,
        postgresql_where=sa.text("refund_task_id IS NOT NULL"),
        sqlite_where=sa.text("refund_task_id IS NOT NULL"),
    )
    op.create_table(
        "shipments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("destination_country", sa.String(length=2), nullable=False),
        sa.Column("shipping_task_id", sa.Uuid(), nullable=True),
        sa.Column("manifest_number", sa.String(length=64), nullable=True),
        sa.Column("tracking_number", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state <> 'in_batch' OR shipping_task_id IS NOT NULL", name=op.f("ck_shipments_batch_has_task")
        ),
        sa.CheckConstraint(
            "state IN ('ready', 'in_batch', 'dispatched', 'cancelled')", name=op.f("ck_shipments_known_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("order_id", name=op.f("uq_shipments_order_id")),
    )
    op.create_index(op.f("ix_shipments_shipping_task_id"), "shipments", ["shipping_task_id"], unique=False)
    op.create_index("ix_shipments_state_created_at", "shipments", ["state", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_shipments_state_created_at", table_name="shipments")
    op.drop_index(op.f("ix_shipments_shipping_task_id"), table_name="shipments")
    op.drop_table("shipments")
    op.drop_index(
        "uq_payments_refund_task_id",
        table_name="payments",
        postgresql_where=sa.text("refund_task_id IS NOT NULL"),
        sqlite_where=sa.text("refund_task_id IS NOT NULL"),
    )
    op.drop_index(
        "uq_payments_processing_task_id",
        table_name="payments",
        postgresql_where=sa.text("processing_task_id IS NOT NULL"),
        sqlite_where=sa.text("processing_task_id IS NOT NULL"),
    )
    op.drop_table("payments")
    op.drop_table("order_lines")
    op.drop_table("products")
    op.drop_index(
        "uq_orders_stock_reservation_task_id",
        table_name="orders",
        postgresql_where=sa.text("stock_reservation_task_id IS NOT NULL"),
        sqlite_where=sa.text("stock_reservation_task_id IS NOT NULL"),
    )
    op.drop_index(
        "uq_orders_fraud_check_task_id",
        table_name="orders",
        postgresql_where=sa.text("fraud_check_task_id IS NOT NULL"),
        sqlite_where=sa.text("fraud_check_task_id IS NOT NULL"),
    )
    op.drop_index("ix_orders_state_created_at", table_name="orders")
    op.drop_table("orders")
