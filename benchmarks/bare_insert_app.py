"""A bare Flask app with one endpoint that does one INSERT: the floor ``POST /api/orders`` is read against.

``benchmarks.shop_end_to_end`` serves it with gunicorn and ``deploy/gunicorn.conf.py``, as ``shop web``
serves the shop (the same processes, threads and access log), on the same database. It parses the JSON
body, inserts it as one row in its own transaction and answers 201 with the row's ID: what any web
tier on this stack pays per request, and nothing the shop adds (validation, pricing, idempotency, tasks).
Its engine keeps one pooled connection per request thread, as the shop's does, without a pre-ping.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, request
from sqlalchemy import Column, DateTime, MetaData, Table, Uuid, create_engine, func, insert, text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()
bare_orders = Table(
    "bench_bare_orders",
    metadata,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


def create_app() -> Flask:
    """The app, built after gunicorn's fork (its engine must not cross one); reads ``DATABASE_URL``."""
    engine = create_engine(os.environ["DATABASE_URL"], pool_size=int(os.environ.get("WEB_THREADS", "8")))
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/orders")
    def place() -> tuple[dict[str, Any], int]:
        with engine.begin() as connection:
            row_id = connection.execute(
                insert(bare_orders).values(body=request.get_json()).returning(bare_orders.c.id)
            ).scalar_one()
        return {"id": str(row_id)}, 201

    return app
