"""A real ``shop gateway`` process for tests, started on a free port and always stopped afterwards.

It gets its API key from the environment, as in production (the tests' ``GATEWAY_API_KEY`` unless told
otherwise), and any other variables a test gives it. Its output goes to a file that ``log_text`` reads
back, after the stop too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.support.gateway_requests import GATEWAY_API_KEY
from tests.support.processes import LoggedProcess, Processes, answering, free_port, shop_command


class GatewayProcess(LoggedProcess):
    """A started gateway: the process and its log, its base URL and the API key it requires."""

    def __init__(
        self,
        database_url: str,
        log_dir: Path,
        options: Sequence[str],
        api_key: str,
        environment: Mapping[str, str],
    ) -> None:
        port = free_port()
        command = shop_command("gateway", "--port", str(port), "--database-url", database_url, *options)
        variables = {**os.environ, **environment, "GATEWAY_API_KEY": api_key}
        super().__init__(f"gateway-{port}", command, log_dir, variables)
        self.base_url = f"http://127.0.0.1:{port}"
        self.api_key = api_key


@contextmanager
def running_gateway(
    database_url: str,
    log_dir: Path,
    *options: str,
    api_key: str = GATEWAY_API_KEY,
    environment: Mapping[str, str] | None = None,
) -> Iterator[GatewayProcess]:
    """Start the gateway on ``database_url``, wait until it answers ``/healthz``; kill it on the way out."""
    with Processes(log_dir, stop_seconds=0) as processes:
        gateway = processes.add(GatewayProcess(database_url, log_dir, options, api_key, environment or {}))
        processes.wait_until(answering(f"{gateway.base_url}/healthz"), what="the gateway answers /healthz")
        yield gateway
