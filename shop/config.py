"""Settings read from the environment, once, by whoever starts the process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from shop.access.operator_keys import OperatorKeyError, OperatorKeys

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_KEY = "shop.settings"  # app.extensions key: the settings the app was built with (app_settings)
DEFAULT_DATABASE_URL = f"sqlite:///{REPO_ROOT / 'var' / 'shop.sqlite3'}"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8001"
MIN_SECRET_KEY_LENGTH = 32
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds something the shop cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class Settings:
    """Everything the app, the CLI and the workers need to know about their surroundings."""

    # Secrets (a URL may hold a password) stay out of ``repr``, and so out of logs and tracebacks.
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)
    gateway_url: str = DEFAULT_GATEWAY_URL  # the payment provider the charge tasks call
    gateway_timeout_seconds: float = 5.0  # past this, a charge's outcome is unknown and the task retries
    # Sent to the gateway as ``Authorization: Bearer``; out of repr so that no log line shows it.
    gateway_api_key: str | None = field(default=None, repr=False)
    ready_max_due_tasks: int = 10_000  # /readyz fails when more due tasks than this wait
    # Request threads per web process (gunicorn's ``threads``, deploy/gunicorn.conf.py reads the same
    # variable): the web engine keeps this many connections, one for each thread that may need one.
    web_threads: int = 8
    ready_max_oldest_due_seconds: float = 300.0  # ... or when the oldest has waited longer than this
    # Who may do what (``shop.access``): operators present one of these keys, to the API as a bearer
    # token or once on /sign-in; demo mode (``shop demo`` turns it on) lets anyone act.
    operator_keys: OperatorKeys = OperatorKeys()  # noqa: RUF009 - frozen, so one shared default is safe
    demo_mode: bool = False
    # Signs the pages' sessions and CSRF tokens and derives each order's access token; the web app refuses
    # to start without it. Old keys stay valid for checking (not signing) while listed as fallbacks.
    secret_key: str | None = field(default=None, repr=False)
    secret_key_fallbacks: tuple[str, ...] = field(default=(), repr=False)
    # Where failed sign-ins are counted (``shop.access.sign_in_attempts``): per process by default; a
    # fleet of web processes shares one count through e.g. ``redis://host:6379``.
    rate_limit_storage_uri: str = field(default="memory://", repr=False)
    # Proxies in front of gunicorn that set X-Forwarded-For (1 behind deploy/nginx-site.conf): the app
    # takes the client's address from there. 0 (the default) ignores the header, which a client can forge;
    # set it only where clients cannot reach gunicorn but through those proxies.
    trusted_proxies: int = 0
    # The Host names the app answers (``SHOP_TRUSTED_HOSTS``, comma-separated; ``.example.com`` also
    # matches its subdomains); a request naming another host gets a 400. Empty: any host, as the demo needs.
    trusted_hosts: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default ``os.environ``); unset ones keep their defaults.

        ``DATABASE_URL`` unset means an SQLite file under ``var/``, so the demo runs with no server.
        """
        environ = os.environ if environ is None else environ
        return cls(
            database_url=normalize_database_url(environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            gateway_url=(environ.get("GATEWAY_URL") or DEFAULT_GATEWAY_URL).rstrip("/"),
            gateway_timeout_seconds=_number(environ, "GATEWAY_TIMEOUT_SECONDS", cls.gateway_timeout_seconds),
            gateway_api_key=_gateway_api_key(environ),
            ready_max_due_tasks=int(_number(environ, "READY_MAX_DUE_TASKS", cls.ready_max_due_tasks)),
            web_threads=int(_number(environ, "WEB_THREADS", cls.web_threads)),
            ready_max_oldest_due_seconds=_number(
                environ, "READY_MAX_OLDEST_DUE_SECONDS", cls.ready_max_oldest_due_seconds
            ),
            operator_keys=_operator_keys(environ, "SHOP_OPERATOR_KEYS"),
            demo_mode=_flag(environ, "SHOP_DEMO_MODE"),
            secret_key=_secret_key(environ, "SHOP_SECRET_KEY"),
            secret_key_fallbacks=_secret_key_fallbacks(environ, "SHOP_SECRET_KEY_FALLBACKS"),
            rate_limit_storage_uri=environ.get("RATELIMIT_STORAGE_URI") or cls.rate_limit_storage_uri,
            trusted_proxies=_count(environ, "SHOP_TRUSTED_PROXIES"),
            trusted_hosts=_names(environ, "SHOP_TRUSTED_HOSTS"),
        )


def require_secret_key(settings: Settings) -> str:
    """The web app's secret key; its absence stops the web app at start, with the fix."""
    if settings.secret_key is None:
        raise SettingsError(
            "SHOP_SECRET_KEY is not set: the web app signs sessions, CSRF tokens and order access tokens "
            "with it; set it to e.g. the output of "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'` (the same in every web process)"
        )
    return settings.secret_key


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; set it to e.g. {default:g}") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be positive; set it to e.g. {default:g}")
    return value


def _gateway_api_key(environ: Mapping[str, str]) -> str | None:
    # Only checked to fit a header: how strong a key must be is the gateway's to say, as at a real one.
    raw = environ.get("GATEWAY_API_KEY")
    if raw and (not raw.isascii() or not raw.isprintable() or " " in raw):
        raise SettingsError(
            "GATEWAY_API_KEY must be visible ASCII characters without spaces; make one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return raw or None


def _count(environ: Mapping[str, str], name: str) -> int:
    raw = environ.get(name)
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SettingsError(f"{name}={raw!r} is not a count; set it to e.g. 1")
    return value


def _operator_keys(environ: Mapping[str, str], name: str) -> OperatorKeys:
    if environ.get("SHOP_ADMIN_TOKEN"):
        raise SettingsError(
            f"SHOP_ADMIN_TOKEN is no longer read; operators now use {name} (one key or several, comma "
            "separated); make one with `shop operator-key`"
        )
    try:
        return OperatorKeys.parse(environ.get(name) or "")
    except OperatorKeyError as error:
        raise SettingsError(f"{name}: {error}; make a good one with `shop operator-key`") from None


def _secret_key(environ: Mapping[str, str], name: str) -> str | None:
    raw = environ.get(name)
    return _checked_secret(name, raw) if raw else None


def _secret_key_fallbacks(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = environ.get(name) or ""
    return tuple(_checked_secret(name, key.strip()) for key in raw.split(",") if key.strip())


def _checked_secret(name: str, value: str) -> str:
    if len(value) < MIN_SECRET_KEY_LENGTH or len(set(value)) == 1 or not value.isprintable():
        raise SettingsError(
            f"{name} must be at least {MIN_SECRET_KEY_LENGTH} printable characters, not one repeated; set "
            "it to e.g. the output of `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return value


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name)
    if not raw:
        return False
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(f"{name}={raw!r} is neither true nor false; set it to 1 or 0")


def _names(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = environ.get(name) or ""
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(" " in part or "/" in part for part in names):
        raise SettingsError(f"{name}={raw!r} must list host names separated by commas, like shop.example.com")
    return names


def normalize_database_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at psycopg 3; SQLAlchemy would otherwise look for psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def app_settings() -> Settings:
    """The settings the current Flask app was built with, for views and for commands run under the app."""
    found: Settings = current_app.extensions[SETTINGS_KEY]
    return found
