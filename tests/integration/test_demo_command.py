"""``shop demo``, the README's demo command, run as a new user would: real processes on SQLite.

The check mode (``--exit-when-settled``) runs the whole demo, waits until every sample order has settled
and stops the gateway, the web app and the workers; here it runs on ports and files of its own, and with
no ``GATEWAY_API_KEY``, so the demo makes one and hands it to every process.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from shop.cli.demo import _demo_secret_key
from tests.support.credentials import web_environment
from tests.support.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_starts_every_process_settles_its_sample_orders_and_stops_them(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "GATEWAY_SIMULATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
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
    written = [tmp_path / "logs", *(tmp_path / "logs").iterdir(), *tmp_path.glob("*.sqlite3")]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in written} == {
        p.name: 0o700 if p.is_dir() else 0o600 for p in written
    }  # readable by their owner only


@contextmanager
def listening_socket() -> Iterator[socket.socket]:
    """Another program's server: a socket listening on a port of the OS's choosing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken


def connections_waiting(server: socket.socket) -> int:
    """How many connections reached ``server`` (none of them accepted yet)."""
    server.setblocking(False)
    count = 0
    while True:
        try:
            connection, _ = server.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


@pytest.mark.parametrize("option", ["--port", "--gateway-port"])
def test_demo_on_a_taken_port_stops_at_once_naming_it_and_places_nothing(tmp_path: Path, option: str) -> None:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "GATEWAY_SIMULATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
    }
    ports = {"--port": str(free_port()), "--gateway-port": str(free_port())}
    with listening_socket() as taken:
        ports[option] = str(taken.getsockname()[1])
        command = [sys.executable, "-m", "shop", "demo", "--log-dir", str(tmp_path / "logs")]
        command += [word for pair in ports.items() for word in pair]

        result = subprocess.run(
            command, env=environment, capture_output=True, text=True, timeout=60, cwd=tmp_path
        )

        assert connections_waiting(taken) == 0
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{ports[option]} (Address already in use); "
        f"choose another port with {option}"
    ]
    assert list(tmp_path.iterdir()) == []  # no database, no logs: nothing was started


def test_web_on_a_taken_port_stops_at_once_naming_it(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    environment = {**os.environ, "DATABASE_URL": database_url, **web_environment()}
    with listening_socket() as taken:
        port = taken.getsockname()[1]

        result = subprocess.run(
            [sys.executable, "-m", "shop", "web", "--port", str(port)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another port with --port"
    ]


def test_web_without_a_secret_key_stops_at_once_saying_how_to_make_one(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SHOP_")}

    result = subprocess.run(
        [sys.executable, "-m", "shop", "web", "--port", str(free_port())],
        env={**environment, "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: SHOP_SECRET_KEY is not set") and "secrets.token_urlsafe(32)" in line


def test_the_demo_keeps_its_secret_key_in_directories_only_its_owner_may_enter(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "demo" / "demo-secret-key"
    previous_umask = os.umask(0o022)  # the common umask, under which a plain mkdir makes 0755
    try:
        key = _demo_secret_key(key_file)
    finally:
        os.umask(previous_umask)

    assert _demo_secret_key(key_file) == key  # made once, then kept
    modes = {
        p.name: stat.S_IMODE(p.stat().st_mode) for p in (key_file, key_file.parent, key_file.parent.parent)
    }
    assert modes == {"demo-secret-key": 0o600, "demo": 0o700, "var": 0o700}
