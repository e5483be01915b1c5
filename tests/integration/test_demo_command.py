"""``shop demo``, the README's demo command, run as a new user would: real processes on SQLite.

The check mode (``--exit-when-settled``) runs the whole demo, waits until every sample order has settled
and stops the gateway, the web app and the workers; here it runs on ports and files of its own, and with
no ``GATEWAY_API_KEY``, so the demo makes one and hands it to every process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway_process import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_starts_every_process_settles_its_sample_orders_and_stops_them(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
    }
    environment.pop("GATEWAY_API_KEY", None)
    command = [
        sys.executable, "-m", "shop", "demo", "--exit-when-settled", "--orders", "6",
        "--port", str(free_port()), "--gateway-port", str(free_port()), "--log-dir", str(tmp_path / "logs"),
    ]  # fmt: skip

    result = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=220, cwd=tmp_path
    )

    logs = "\n".join(
        f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((tmp_path / "logs").glob("*.log"))
    )
    assert result.returncode == 0, result.stdout + result.stderr + logs
    assert "Placed 6 sample orders" in result.stdout
    assert "The shop is running: open http://127.0.0.1:" in result.stdout
    assert "Sample orders:" in result.stdout and "rejected" in result.stdout  # the fraud.example one
    assert "shipped" in result.stdout  # charged: the workers sent the gateway the demo's key
    assert "Stopped the gateway, the web app and the workers." in result.stdout
