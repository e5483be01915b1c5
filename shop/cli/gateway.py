"""``shop gateway``: run the payment gateway simulator in the foreground, under gunicorn, until SIGTERM.

Gunicorn runs inside this process (``gunicorn.app.base.BaseApplication``) rather than replacing it with
``python -m gunicorn``: click checks the options, and the database is prepared (tables created, failure
injection set) before gunicorn starts, so a missing API key, a wrong URL, an unreachable database or a
taken port is one line from click instead of a worker that fails to boot in gunicorn's log; and the
application reaches gunicorn as an object built from checked options, not as an import string plus
environment variables.
From then on gunicorn's arbiter owns the process: SIGTERM stops it gracefully (requests in flight get
``GRACEFUL_SECONDS``, after which an injected timeout still hanging is cut off), SIGINT at once; it
exits 0 either way.

Workers are threaded (``gthread``), so a request hanging on an injected timeout holds one thread, not a
process. Each worker process builds its own app, and so its own database engine, after the fork.

Its environment variables are named ``GATEWAY_SIMULATOR_*``, apart from the shop's ``GATEWAY_*`` settings
of its provider (``GATEWAY_URL``, ``GATEWAY_TIMEOUT_SECONDS``: shop/config.py), so that one environment
(``shop demo``'s, a test's) holds both and each reaches only its own process: the simulator's hang is
not the shop's patience. ``GATEWAY_API_KEY`` alone is read by both, being the secret the two ends share.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]  # no type hints shipped
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from gateway_simulator import create_app
from gateway_simulator.api_key import API_KEY_VARIABLE, ApiKeyError, checked_api_key
from gateway_simulator.database import (
    DATABASE_URL_VARIABLE,
    create_gateway_engine,
    database_url_from_env,
    normalize_database_url,
)
from gateway_simulator.failure_injection import FailureSettings, update_settings
from gateway_simulator.models import Base
from gateway_simulator.schemas import MAX_HANG_SECONDS
from shop.cli.ports import check_port_is_free

GRACEFUL_SECONDS = 5
SUPPORTED_BACKENDS = ("postgresql", "sqlite")
DEFAULTS = FailureSettings()
# Names the simulator once read; set, they would now be silently ignored, so the command refuses them.
RENAMED_VARIABLES = {
    "GATEWAY_DATABASE_URL": DATABASE_URL_VARIABLE,
    "GATEWAY_LATENCY_MS": "GATEWAY_SIMULATOR_LATENCY_MS",
    "GATEWAY_TRANSIENT_ERROR_RATE": "GATEWAY_SIMULATOR_TRANSIENT_ERROR_RATE",
    "GATEWAY_TIMEOUT_RATE": "GATEWAY_SIMULATOR_TIMEOUT_RATE",
    "GATEWAY_DECLINE_RATE": "GATEWAY_SIMULATOR_DECLINE_RATE",
}


class GatewayServer(BaseApplication):
    """Gunicorn serving the simulator on one database, configured from a dict instead of argv."""

    def __init__(self, build_app: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.build_app = build_app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # Recent gunicorn opens a control socket at one path per user: two gateways (or a gateway beside
        # the shop's own gunicorn) would fight over it, and nothing here uses it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Flask:
        return self.build_app()


@click.command("gateway")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True, help="Port.")
@click.option(
    "--database-url",
    default=None,
    envvar=DATABASE_URL_VARIABLE,
    help=f"The gateway's own database. [default: ${DATABASE_URL_VARIABLE}, else var/gateway.sqlite3]",
)
@click.option(
    "--api-key",
    default=None,
    envvar=API_KEY_VARIABLE,
    help=f"The key every request but /healthz must carry (Bearer). [default: ${API_KEY_VARIABLE}; prefer "
    "the variable: a command line is visible to every user of the machine]",
)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Processes.")
@click.option(
    "--threads", type=click.IntRange(min=1), default=16, show_default=True, help="Threads per process."
)
@click.option(
    "--latency-ms",
    type=click.IntRange(0, 60_000),
    default=DEFAULTS.latency_ms,
    envvar="GATEWAY_SIMULATOR_LATENCY_MS",
    show_default=True,
    show_envvar=True,
    help="Delay before every charge and refund request is handled.",
)
@click.option(
    "--transient-error-rate",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULTS.transient_error_rate,
    envvar="GATEWAY_SIMULATOR_TRANSIENT_ERROR_RATE",
    show_default=True,
    show_envvar=True,
    help="Share of new charges answered 503 with nothing recorded.",
)
@click.option(
    "--timeout-rate",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULTS.timeout_rate,
    envvar="GATEWAY_SIMULATOR_TIMEOUT_RATE",
    show_default=True,
    show_envvar=True,
    help="Share of new charges that hang; half of them are captured before the hang.",
)
@click.option(
    "--decline-rate",
    type=click.FloatRange(0.0, 1.0),
    default=DEFAULTS.decline_rate,
    envvar="GATEWAY_SIMULATOR_DECLINE_RATE",
    show_default=True,
    show_envvar=True,
    help="Share of new charges declined.",
)
@click.option(
    "--hang-seconds",
    type=click.FloatRange(0.0, MAX_HANG_SECONDS, min_open=True),
    default=DEFAULTS.hang_seconds,
    envvar="GATEWAY_SIMULATOR_HANG_SECONDS",
    show_default=True,
    show_envvar=True,
    help="How long a timed-out request hangs; make it longer than the client's timeout (the shop's "
    "GATEWAY_TIMEOUT_SECONDS).",
)
def gateway_command(
    host: str,
    port: int,
    database_url: str | None,
    api_key: str | None,
    workers: int,
    threads: int,
    latency_ms: int,
    transient_error_rate: float,
    timeout_rate: float,
    decline_rate: float,
    hang_seconds: float,
) -> None:
    """Run the payment gateway simulator until SIGTERM or SIGINT.

    The failure-injection options are applied at start, replacing whatever an earlier run left in the
    database; change them while it runs with PUT /v1/failure-injection.
    """
    _refuse_renamed_variables(os.environ)
    try:
        api_key = checked_api_key(api_key)
    except ApiKeyError as error:
        raise click.ClickException(str(error)) from None
    url = database_url_from_env() if database_url is None else normalize_database_url(database_url)
    shown_url = _checked_database_url(url)
    settings = FailureSettings(latency_ms, transient_error_rate, timeout_rate, decline_rate, hang_seconds)
    check_port_is_free(host, port)
    with _explained_database_errors(shown_url):
        _prepare_database(url, settings)
    base_url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    click.echo(f"Payment gateway simulator on {base_url} (database {shown_url}); stop with SIGTERM or Ctrl+C")
    options = {
        "bind": f"{host}:{port}" if ":" not in host else f"[{host}]:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "graceful_timeout": GRACEFUL_SECONDS,
        "proc_name": "shop-gateway",
    }
    GatewayServer(lambda: create_app(url, api_key=api_key), options).run()


def _prepare_database(url: str, settings: FailureSettings) -> None:
    # Tables are created here, once, before the workers fork: two workers racing to create them on
    # PostgreSQL would collide.
    engine = create_gateway_engine(url)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            update_settings(session, settings.as_dict())
    finally:
        engine.dispose()


def _refuse_renamed_variables(environ: Mapping[str, str]) -> None:
    for old, new in RENAMED_VARIABLES.items():
        if environ.get(old):
            raise click.ClickException(
                f"{old} is no longer read: the simulator's own variables are named GATEWAY_SIMULATOR_*; "
                f"set {new} instead"
            )


def _checked_database_url(url: str) -> str:
    """The URL as it may be shown (password hidden); a one-line error unless the simulator can use it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise click.BadParameter(f"{url!r} is not a database URL", param_hint="--database-url") from None
    shown_url = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise click.BadParameter(f"{shown_url}: use PostgreSQL or SQLite", param_hint="--database-url")
    return shown_url


@contextmanager
def _explained_database_errors(shown_url: str) -> Iterator[None]:
    try:
        yield
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise click.ClickException(f"no database driver for {shown_url} ({error})") from None
    except (OperationalError, ProgrammingError) as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "connection failed"
        raise click.ClickException(f"cannot use the database at {shown_url} ({reason})") from None
    except OSError as error:
        raise click.ClickException(f"cannot use the database at {shown_url} ({error})") from None


if __name__ == "__main__":
    gateway_command()
