"""Requests that only read (GET, HEAD, OPTIONS): no transaction on PostgreSQL, and no write anywhere.

Under READ COMMITTED every statement takes its own snapshot, so a transaction around a read request
buys nothing and costs a BEGIN and a ROLLBACK; the web app runs such requests in autocommit instead
(``shop.web.database``). Because autocommit would keep a write, their session refuses to write at all.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import select, text, update

from orders.models import Product
from request_session import db, transaction
from shop.web.database import ReadOnlyRequestError, engine_of
from tests.support.credentials import OPERATOR_HEADERS

NEW_SKU = "SNEAKY-STOOL"


@pytest.fixture
def probing_app(app: Flask) -> Flask:
    """The real app with a few extra views that report on, or misuse, their request's session."""

    def statement_moments() -> dict[str, bool]:
        """now() is when the transaction began: two statements 10 ms apart see one moment only if they
        share a transaction."""
        first = db().scalar(text("SELECT now()"))
        time.sleep(0.01)
        second = db().scalar(text("SELECT now()"))
        return {"one_transaction": first == second}

    def add_a_product() -> str:
        db().add(Product(sku=NEW_SKU, name="Sneaky stool", unit_price_cents=100, on_hand=1))
        db().flush()
        return "written"

    def raise_prices() -> str:
        db().execute(update(Product).values(unit_price_cents=Product.unit_price_cents + 1))
        return "written"

    app.add_url_rule("/probe/moments", "moments_get", statement_moments, methods=["GET"])
    app.add_url_rule(
        "/api/probe/moments-in-transaction",
        "moments_post",
        lambda: transaction(lambda _session: statement_moments()),
        methods=["POST"],
    )
    app.add_url_rule("/probe/add-product", "add_product", add_a_product, methods=["GET"])
    app.add_url_rule("/probe/raise-prices", "raise_prices", raise_prices, methods=["GET"])
    return app


@pytest.mark.postgres_only
def test_a_read_request_runs_each_statement_on_its_own_and_a_write_request_in_one_transaction(
    probing_app: Flask,
) -> None:
    client = probing_app.test_client()

    read = client.get("/probe/moments").get_json()
    written = client.post("/api/probe/moments-in-transaction", headers=OPERATOR_HEADERS).get_json()

    assert read == {"one_transaction": False}
    assert written == {"one_transaction": True}


@pytest.mark.parametrize("path", ["/probe/add-product", "/probe/raise-prices"])
def test_a_read_request_that_tries_to_write_fails_and_writes_nothing(probing_app: Flask, path: str) -> None:
    catalogue_before = _catalogue(probing_app)

    with pytest.raises(ReadOnlyRequestError):  # the test app lets errors through; gunicorn answers 500
        probing_app.test_client().get(path)

    assert _catalogue(probing_app) == catalogue_before  # no new product, no changed price


def _catalogue(app: Flask) -> list[tuple[str, int]]:
    with engine_of(app).connect() as connection:
        rows = connection.execute(select(Product.sku, Product.unit_price_cents).order_by(Product.sku))
        return [(sku, price) for sku, price in rows]
