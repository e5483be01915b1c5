"""Scenario 8: schemathesis fuzzes every operation of /api/openapi.json on the running shop.

It runs as schemathesis' own command line (``st run``), the way a reader would run it against their
deployment, with two checks: no answer is a 5xx, and every answer matches the schema the API documents.
It runs twice: as an operator (every operation reached) and with no credential at all (every operation
but the catalogue and placing an order answers 401, documented in the schema).
Random IDs only ever reach the 404 branch, so a few real orders are placed and settled first (shipped,
rejected, cancelled), and schemathesis is given their IDs, and the catalogue's SKUs, as dictionaries it
draws from half the time: the answers worth checking against the schema are the ones with data in them.
The seed is fixed so a run is repeatable; the number of examples per operation keeps it near a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.credentials import OPERATOR_HEADERS
from tests.support.e2e_client import (
    SKUS,
    Summary,
    all_pages,
    cancel_order,
    orders_by_id,
    place_orders,
    wait_until_settled,
    web_client,
)
from tests.support.e2e_processes import running_shop
from tests.support.postgres_cluster import PostgresCluster

SCHEMATHESIS = Path(sys.executable).parent / "st"
CHECKS = "not_a_server_error,response_schema_conformance"
EXAMPLES_PER_OPERATION = 100
SEED = 20260101
OPERATOR_HEADER = f"Authorization: {OPERATOR_HEADERS['Authorization']}"


@pytest.mark.timeout(420)
def test_fuzzing_the_documented_api_finds_no_server_error_and_no_answer_off_schema(
    shared_cluster: PostgresCluster, database_name: str, tmp_path: Path, summary: Summary
) -> None:
    with running_shop(shared_cluster, database_name, tmp_path) as shop:
        config = tmp_path / "schemathesis.toml"
        with web_client(shop.web_url) as client:
            config.write_text(_config_with_known_ids(client))
        fuzzing = time.monotonic()
        as_operator = _fuzz(shop.web_url, config, tmp_path, ["--header", OPERATOR_HEADER])
        anonymous = _fuzz(shop.web_url, config, tmp_path, [])
        summary.notes.append(
            f"schemathesis ran {time.monotonic() - fuzzing:.1f} s (operator, then anonymous)"
        )
        for result in (as_operator, anonymous):
            summary.notes += [f"st: {line}" for line in result.stdout.splitlines() if _is_tally(line)]
        with web_client(shop.web_url) as client:
            summary.orders.update(order["state"] for order in orders_by_id(client).values())
        summary.charges.update(charge["status"] for charge in shop.ledger()["charges"])
        shop.check_alive()

        for result in (as_operator, anonymous):
            print(result.stdout)
            assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]


def _fuzz(web_url: str, config: Path, work_dir: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    """One ``st run`` over the whole document, with ``extra`` options (a credential header, or none)."""
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "run", f"{web_url}/api/openapi.json",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--seed", str(SEED),
        # One worker thread: on CPython 3.11 the ast module's recursion counter is shared between threads,
        # and two of schemathesis's threads walking schemas at once crashed it once in three full runs
        # ("SystemError: AST constructor recursion depth mismatch"), failing the run with no answer at fault.
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "20",
        "--no-color",
        *extra,
    ]  # fmt: skip
    return subprocess.run(command, cwd=work_dir, capture_output=True, text=True, timeout=200, check=False)


def _config_with_known_ids(client: httpx.Client) -> str:
    """A schemathesis.toml whose dictionaries hold the IDs of settled orders, payments, shipments, batches."""
    placed = place_orders(client, 4, label="fuzz-seed")
    placed += place_orders(client, 1, label="fuzz-fraud", email_of=lambda _n: "mallory@fraud.example")
    cancelled = place_orders(client, 1, label="fuzz-cancel")
    cancel_order(client, cancelled[0])
    wait_until_settled(client, placed + cancelled, timeout=60)
    payments = all_pages(client, "/api/payments", "payments")
    shipments = all_pages(client, "/api/shipments", "shipments")
    dictionaries = {
        "orders": placed + cancelled,
        "payments": [p["id"] for p in payments],
        "shipments": [s["id"] for s in shipments],
        "batches": sorted({s["batch_task"]["id"] for s in shipments if s["batch_task"]}),
        "skus": SKUS,
    }
    bindings = {
        "path.order_id": "orders",
        "path.payment_id": "payments",
        "path.shipment_id": "shipments",
        "path.task_id": "batches",
        "body.lines[*].sku": "skus",
    }
    lines = ["[parameters]"]
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}' for key, name in bindings.items()]
    for name, values in dictionaries.items():
        lines += ["", f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    return "\n".join(lines) + "\n"


def _is_tally(line: str) -> bool:
    """The lines of schemathesis' closing summary worth repeating in ours."""
    return " generated, " in line or line.strip().startswith("Tested:")
