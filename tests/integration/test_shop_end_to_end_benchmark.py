"""``python -m benchmarks.shop_end_to_end`` at tiny sizes still runs, settles every order and reports.

The benchmark is run rarely and by hand; this keeps it from rotting between runs. It starts a cluster of
its own (the PostgreSQL server binaries are needed), so it is skipped where they are missing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.postgres_cluster import PostgresBinariesNotFound, find_postgres_bindir
from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.slow

PROCESS_TIERS = {
    "web",
    "gateway",
    "postgresql",
    "worker-1",
    "worker-2",
    "benchmark_client",
    "total",
    "machine_busy",
}


@pytest.fixture(scope="module")
def report() -> dict:
    try:
        find_postgres_bindir()
    except PostgresBinariesNotFound as error:
        pytest.skip(f"the benchmark starts its own PostgreSQL: {error}")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.shop_end_to_end", "--orders", "20", "--http-seconds", "1"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def test_every_order_of_both_scenarios_settles_with_sane_numbers(report):
    assert set(report["scenarios"]) == {"a_gateway_instant", "b_gateway_200ms_10pct_errors"}
    for scenario in report["scenarios"].values():
        assert scenario["unsettled"] == 0
        assert sum(scenario["final_states"].values()) == 20
        assert scenario["placement"]["statuses"] == {"202": 20}
        assert scenario["placement"]["orders_per_second"] > 0
        assert scenario["end_to_end"]["orders_per_second"] > 0
        latency = scenario["placed_to_shipped_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
        assert set(scenario["cpu_ms_per_order"]) == PROCESS_TIERS
        assert all(value >= 0 for value in scenario["cpu_ms_per_order"].values())
        assert scenario["commits_per_order"] >= 1
        assert scenario["statements_per_order"] >= scenario["commits_per_order"]
        assert scenario["peak_connections"]["workers_together"] >= 2


def test_the_http_tier_compares_the_shop_with_the_bare_app_at_both_concurrencies(report):
    for connections in ("8_connections", "32_connections"):
        row = report["http_tier"][connections]
        for side in ("shop", "bare"):
            assert row[side]["requests_per_second"] > 0
            assert row[side]["failed"] == 0
        assert row["bare"]["statements_per_request"] >= 3  # BEGIN, INSERT, COMMIT
        assert row["shop_over_bare"] > 0


def test_the_http_tier_times_the_hot_reads_each_answered_without_a_transaction(report):
    reads = report["http_tier"]["reads"]
    assert set(reads) == {
        "GET /api/orders/<id>",
        "GET /api/orders?limit=20",
        "GET /orders (page)",
        "GET /queue (page)",
    }
    for row in reads.values():
        assert row["requests_per_second"] > 0
        assert row["failed"] == 0  # the pages' requests were signed in
    # The order with its lines in one query, its tasks' states in another: no BEGIN, no ROLLBACK.
    assert reads["GET /api/orders/<id>"]["statements_per_request"] == 2


def test_the_machine_and_settings_are_recorded(report):
    assert report["machine"]["nproc"] >= 1
    assert report["machine"]["postgresql"]["server_version"]
    assert report["settings"]["orders"] == 20
