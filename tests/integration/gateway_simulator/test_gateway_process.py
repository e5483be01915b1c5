"""``shop gateway`` as a real process: many threads racing with one key, the client, its API key, its own
settings apart from the shop's, and a clean stop."""

from __future__ import annotations

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text

from payments.gateway_client import Captured, Declined, GatewayClient, GatewayRejected, GatewayTimeout
from shop import bootstrap
from shop.cli.gateway import GRACEFUL_SECONDS, gateway_command
from shop.config import Settings
from tests.support.credentials import bearer
from tests.support.gateway_process import running_gateway
from tests.support.gateway_requests import ARMCHAIR, GATEWAY_API_KEY

REFERENCE = "ORDER-CRUNCHY-ARMCHAIR"
WITH_KEY = {"GATEWAY_API_KEY": GATEWAY_API_KEY}
HOW_TO_MAKE_ONE = "make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"


def charge_armchair(client: GatewayClient) -> Captured | Declined:
    return client.charge(
        idempotency_key="order-17-payment-1", amount_cents=12_900, currency="EUR", reference=REFERENCE
    )


def charge_rows(database_url: str, idempotency_key: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            statement = select(func.count()).select_from(text("gateway_charges"))
            statement = statement.where(text("idempotency_key = :key"))
            return int(connection.execute(statement, {"key": idempotency_key}).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_twenty_concurrent_requests_with_one_key_make_one_charge_and_twenty_identical_answers(
    postgres_url: str, tmp_path: Path
) -> None:
    with running_gateway(postgres_url, tmp_path, "--workers", "2", "--threads", "16") as gateway:

        def charge(_: int) -> tuple[int, str]:
            response = httpx.post(
                f"{gateway.base_url}/v1/charges",
                json=ARMCHAIR,
                headers={"Idempotency-Key": "order-17-payment-1", **bearer(gateway.api_key)},
                timeout=30.0,
            )
            return response.status_code, json.dumps(response.json(), sort_keys=True)

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(charge, range(20)))

        assert len(answers) == 20
        assert len(set(answers)) == 1
        assert answers[0][0] == 201
        assert charge_rows(postgres_url, "order-17-payment-1") == 1

        assert gateway.stop(signal.SIGTERM) == 0
    assert "Shutting down" in gateway.log_text()


@pytest.mark.slow
def test_the_client_gives_up_on_a_hang_and_a_retry_with_the_same_key_charges_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    options = ("--timeout-rate", "1", "--hang-seconds", "1.5")
    with running_gateway(postgres_url, tmp_path, *options) as gateway:
        key = gateway.api_key
        with (
            GatewayClient(gateway.base_url, api_key=key, timeout=0.3) as client,
            pytest.raises(GatewayTimeout),
        ):
            charge_armchair(client)
        httpx.put(f"{gateway.base_url}/v1/failure-injection", json={"timeout_rate": 0.0}, headers=bearer(key))

        with GatewayClient(gateway.base_url, api_key=key, timeout=5.0) as client:
            retried = charge_armchair(client)

        assert isinstance(retried, Captured)
        books = httpx.get(
            f"{gateway.base_url}/v1/ledger", params={"reference": REFERENCE}, headers=bearer(key)
        ).json()
        assert books["summary"]["captured"] == 1
        assert [charge["id"] for charge in books["charges"]] == [retried.charge_id]
        assert gateway.stop(signal.SIGTERM) == 0


def test_ctrl_c_stops_the_gateway_cleanly(sqlite_url: str, tmp_path: Path) -> None:
    with running_gateway(sqlite_url, tmp_path, "--workers", "1") as gateway:
        assert gateway.stop(signal.SIGINT) == 0
    assert f"Payment gateway simulator on {gateway.base_url}" in gateway.log_text()


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--port", "0"], "'--port': 0 is not in the range 1<=x<=65535."),
        (
            ["--timeout-rate", "1.5"],
            "'--timeout-rate' (env var: 'GATEWAY_SIMULATOR_TIMEOUT_RATE'): 1.5 is not in the range 0.0<=x<=1",
        ),
        (
            ["--hang-seconds", "0"],
            "'--hang-seconds' (env var: 'GATEWAY_SIMULATOR_HANG_SECONDS'): 0.0 is not in the range 0.0<x<=",
        ),
        (
            ["--latency-ms", "slow"],
            "'--latency-ms' (env var: 'GATEWAY_SIMULATOR_LATENCY_MS'): 'slow' is not a valid integer",
        ),
        (["--database-url", "mysql://shop@db/gateway"], "mysql://shop@db/gateway: use PostgreSQL or SQLite"),
        (
            ["--database-url", "postgresql://nobody@127.0.0.1:1/gateway"],
            "Error: cannot use the database at postgresql+psycopg://nobody@127.0.0.1:1/gateway (",
        ),
    ],
    ids=["port", "rate", "hang", "latency", "backend", "unreachable"],
)
def test_bad_options_are_one_line_errors_without_a_traceback(options: list[str], complaint: str) -> None:
    result = CliRunner(env=WITH_KEY).invoke(gateway_command, options)

    assert result.exit_code in (1, 2)
    assert complaint in result.output
    assert "Traceback" not in result.output


def test_a_taken_port_is_refused_before_gunicorn_starts(sqlite_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = CliRunner(env=WITH_KEY).invoke(
            gateway_command, ["--port", str(port), "--database-url", sqlite_url]
        )

    assert result.exit_code == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}" in result.output


@pytest.mark.slow
def test_sigterm_stops_the_gateway_even_while_a_request_hangs_on_an_injected_timeout(
    sqlite_url: str, tmp_path: Path
) -> None:
    options = ("--workers", "1", "--timeout-rate", "1", "--hang-seconds", "120")
    with running_gateway(sqlite_url, tmp_path, *options) as gateway:
        key = gateway.api_key
        with (
            GatewayClient(gateway.base_url, api_key=key, timeout=0.5) as client,
            pytest.raises(GatewayTimeout),
        ):
            charge_armchair(client)  # the server thread now sleeps for two minutes

        started = time.monotonic()
        assert gateway.stop(signal.SIGTERM, seconds=30.0) == 0
        assert time.monotonic() - started < GRACEFUL_SECONDS + 5


@pytest.mark.slow
def test_one_environment_sets_the_shops_patience_and_the_simulators_hang_apart(
    sqlite_url: str, tmp_path: Path
) -> None:
    # As in `shop demo` or one host's deployment: the shop's processes and the simulator share variables.
    environment = {
        "GATEWAY_TIMEOUT_SECONDS": "0.5",  # the shop's: how long a worker waits for the gateway
        "GATEWAY_SIMULATOR_HANG_SECONDS": "30",  # the simulator's: how long an injected timeout hangs
        "GATEWAY_SIMULATOR_TIMEOUT_RATE": "1",
    }
    with running_gateway(sqlite_url, tmp_path, "--workers", "1", environment=environment) as gateway:
        injected = httpx.get(f"{gateway.base_url}/v1/failure-injection", headers=bearer(gateway.api_key))
        shop_settings = Settings.from_env(
            {**environment, "GATEWAY_URL": gateway.base_url, "GATEWAY_API_KEY": gateway.api_key}
        )
        started = time.monotonic()
        with bootstrap.gateway_client(shop_settings) as client, pytest.raises(GatewayTimeout):
            charge_armchair(client)
        waited = time.monotonic() - started

    assert (injected.json()["hang_seconds"], injected.json()["timeout_rate"]) == (30.0, 1.0)
    assert shop_settings.gateway_timeout_seconds == 0.5
    assert 0.5 <= waited < 10.0  # the worker gave up after its own 0.5 s, not the simulator's 30 s


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("GATEWAY_DATABASE_URL", "GATEWAY_SIMULATOR_DATABASE_URL"),
        ("GATEWAY_TIMEOUT_RATE", "GATEWAY_SIMULATOR_TIMEOUT_RATE"),
    ],
)
def test_a_variable_the_simulator_no_longer_reads_is_refused_with_its_new_name(
    old: str, new: str, sqlite_url: str
) -> None:
    result = CliRunner(env={**WITH_KEY, old: "1"}).invoke(gateway_command, ["--database-url", sqlite_url])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {old} is no longer read: the simulator's own variables are named GATEWAY_SIMULATOR_*; "
        f"set {new} instead\n"
    )


def test_the_gateway_will_not_start_without_an_api_key_and_says_how_to_make_one(sqlite_url: str) -> None:
    result = CliRunner(env={"GATEWAY_API_KEY": None}).invoke(gateway_command, ["--database-url", sqlite_url])

    assert result.exit_code == 1
    assert result.output == f"Error: GATEWAY_API_KEY is not set; {HOW_TO_MAKE_ONE}\n"


@pytest.mark.parametrize("key", ["changeme", "CRUNCHY-ARMCHAIR-0123456789"])
def test_the_gateway_will_not_start_with_a_short_api_key_nor_echo_it(key: str, sqlite_url: str) -> None:
    result = CliRunner().invoke(gateway_command, ["--api-key", key, "--database-url", sqlite_url])

    assert result.exit_code == 1
    assert result.output.startswith("Error: GATEWAY_API_KEY must be at least 32 visible ASCII characters")
    assert HOW_TO_MAKE_ONE in result.output
    assert key not in result.output


def test_the_workers_client_charges_with_the_key_and_is_rejected_without_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    with running_gateway(sqlite_url, tmp_path, "--workers", "1") as gateway:
        with GatewayClient(gateway.base_url) as keyless, pytest.raises(GatewayRejected, match="401"):
            charge_armchair(keyless)
        stranger = "WOBBLY-TABLE-not-the-gateway-key-0123456789"
        with GatewayClient(gateway.base_url, api_key=stranger) as wrong, pytest.raises(GatewayRejected):
            charge_armchair(wrong)
        with GatewayClient(gateway.base_url, api_key=gateway.api_key) as client:
            charged = charge_armchair(client)

        assert isinstance(charged, Captured)
        assert httpx.get(f"{gateway.base_url}/v1/ledger").status_code == 401
        books = httpx.get(f"{gateway.base_url}/v1/ledger", headers=bearer(gateway.api_key)).json()
        assert [charge["id"] for charge in books["charges"]] == [charged.charge_id]
        assert gateway.api_key not in gateway.log_text()
