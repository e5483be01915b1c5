"""A real ``shop gateway`` process for tests, started on a free port and always stopped afterwards.

Until the command is registered in ``shop.cli.main`` it is started as ``python -m shop.cli.gateway``,
which runs the same click command. It gets its API key from the environment, as in production (the tests'
``GATEWAY_API_KEY`` unless told otherwise). Its output goes to a file that ``log_text`` reads back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.gateway_requests import GATEWAY_API_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 30.0


@dataclass
class GatewayProcess:
    """A started gateway: its process, its base URL, the API key it requires and its log."""

    popen: subprocess.Popen[bytes]
    base_url: str
    api_key: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: signal.Signals = signal.SIGTERM, seconds: float = 15.0) -> int:
        """Send ``signum`` and wait for the exit; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signum)
        return self.popen.wait(timeout=seconds)


def free_port() -> int:
    """A port nobody listens on right now (the OS's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_gateway(
    database_url: str, log_dir: Path, *options: str, api_key: str = GATEWAY_API_KEY
) -> Iterator[GatewayProcess]:
    """Start the gateway on ``database_url``, wait until it answers ``/healthz``; kill it on the way out."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"gateway-{port}.log"
    command = [sys.executable, "-m", "shop.cli.gateway", "--port", str(port)]
    command += ["--database-url", database_url, *options]
    environment = {**os.environ, "GATEWAY_API_KEY": api_key}
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    gateway = GatewayProcess(popen, f"http://127.0.0.1:{port}", api_key, log_path)
    try:
        _wait_until_healthy(gateway)
        yield gateway
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait()
        print(gateway.log_text())  # pytest shows it only when the test failed


def _wait_until_healthy(gateway: GatewayProcess) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if gateway.popen.poll() is not None:
            raise AssertionError(f"the gateway exited with {gateway.popen.returncode}:\n{gateway.log_text()}")
        try:
            if httpx.get(f"{gateway.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway did not answer in {START_SECONDS} s:\n{gateway.log_text()}")
        time.sleep(0.1)
