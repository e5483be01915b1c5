"""The ledger: every charge with counts by status, per merchant reference if asked."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.gateway_requests import inject, ledger, post_charge, post_refund


def test_the_ledger_counts_charges_by_status_and_sums_what_is_still_captured(client: FlaskClient) -> None:
    post_charge(client, "armchair-1", amount_cents=12_900)
    post_charge(client, "lamp-1", amount_cents=4_500, reference="ORDER-FLICKERING-LAMP")
    post_charge(client, "rug-1", amount_cents=7_000, reference="ORDER-THREADBARE-RUG")
    post_refund(client, "rug-refund-1", "rug-1")
    post_refund(client, "vase-refund-1", "vase-1")
    inject(client, decline_rate=1.0)
    post_charge(client, "table-1", reference="ORDER-WOBBLY-TABLE")

    books = ledger(client)

    assert books["summary"] == {
        "captured": 2,
        "refunded": 1,
        "declined": 1,
        "voided": 1,
        "captured_amount_cents": 12_900 + 4_500,
    }
    keys = [charge["idempotency_key"] for charge in books["charges"]]
    assert keys == ["armchair-1", "lamp-1", "rug-1", "vase-1", "table-1"]


def test_the_ledger_filtered_by_reference_shows_that_reference_alone(client: FlaskClient) -> None:
    post_charge(client, "armchair-1")
    post_charge(client, "armchair-2", amount_cents=100)
    post_charge(client, "lamp-1", reference="ORDER-FLICKERING-LAMP")

    books = ledger(client, "ORDER-CRUNCHY-ARMCHAIR")

    assert [c["idempotency_key"] for c in books["charges"]] == ["armchair-1", "armchair-2"]
    assert books["summary"]["captured"] == 2
    assert ledger(client, "ORDER-NOBODY")["charges"] == []


def test_the_ledger_refuses_a_bad_filter(client: FlaskClient) -> None:
    assert client.get("/v1/ledger?reference=").status_code == 422
    assert client.get("/v1/ledger?reference=%00").status_code == 422
    assert client.get("/v1/ledger?colour=red").json == {"errors": {"colour": ["Unknown field."]}}
