"""Real timeouts against a running ``shop gateway``: the client gives up, the gateway may have charged.

The in-process tests lose answers on purpose to choose which side of the capture a timeout falls; here
the gateway really hangs longer than the client waits, and its own coin decides (half the time it
captured before the hang). Whatever the coins say, the ledger ends with at most one charge for the
payment, and it agrees with the payment: captured, or, when the budget ran out, refunded or voided.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from payments.gateway_client import GatewayClient
from payments.models import PaymentState
from tests.integration.payments.conftest import PaymentsDesk
from tests.support.credentials import bearer
from tests.support.gateway_process import running_gateway
from tests.support.inprocess import error_rows

CLIENT_TIMEOUT_SECONDS = 0.3
GATEWAY_HANG_SECONDS = 1.5


@pytest.mark.slow
@pytest.mark.postgres_only  # the shop's backend does not matter here; the gateway's timeouts do
def test_real_timeouts_end_in_one_charge_that_agrees_with_the_payment(
    desk: PaymentsDesk, tmp_path: Path
) -> None:
    gateway_database = f"sqlite:///{tmp_path / 'gateway-process.sqlite3'}"
    options = ["--workers", "1", "--threads", "16", "--timeout-rate", "1"]
    options += ["--hang-seconds", str(GATEWAY_HANG_SECONDS)]
    with running_gateway(gateway_database, tmp_path, *options) as gateway:
        desk.client = GatewayClient(gateway.base_url, api_key=gateway.api_key, timeout=CLIENT_TIMEOUT_SECONDS)
        requested = desk.request()

        desk.work()

        with httpx.Client(base_url=gateway.base_url, headers=bearer(gateway.api_key)) as books:
            ledger = books.get("/v1/ledger", params={"reference": str(requested.id)}).json()
            void = books.get(f"/v1/charges/payment-{requested.id}").json()
        desk.client.close()

    payment = desk.payment(requested.id)
    assert requested.processing_task_id is not None
    errors = error_rows(desk.engine, requested.processing_task_id)
    assert errors, "the first attempt, at least, timed out"
    assert {error["error_type"] for error in errors} == {"payments.gateway_client.GatewayTimeout"}
    statuses = [charge["status"] for charge in ledger["charges"]]
    if payment.payment_state is PaymentState.CAPTURED:
        assert statuses == ["captured"]
        assert ledger["charges"][0]["id"] == payment.gateway_charge_id
    else:  # all six attempts timed out: the budget is spent and the key voided
        assert payment.payment_state is PaymentState.FAILED
        assert len(errors) == 5  # the sixth attempt recorded the failure instead of raising
        assert payment.gateway_refund_status in ("refunded", "voided")
        assert statuses == (["refunded"] if payment.gateway_refund_status == "refunded" else [])
        assert void["status"] in ("refunded", "voided")
    assert ledger["summary"]["captured"] <= 1
