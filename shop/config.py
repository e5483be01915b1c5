"""Settings read from the environment, once, by whoever starts the process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{REPO_ROOT / 'var' / 'shop.sqlite3'}"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8001"
MIN_ADMIN_TOKEN_LENGTH = 16
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """An environment variable holds something the shop cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class Settings:
    """Everything the app, the CLI and the workers need to know about their surroundings."""

    database_url: str = DEFAULT_DATABASE_URL
    gateway_url: str = DEFAULT_GATEWAY_URL  # the payment provider the charge tasks call
    gateway_timeout_seconds: float = 5.0  # past this, a charge's outcome is unknown and the task retries
    ready_max_due_tasks: int = 10_000  # /readyz fails when more due tasks than this wait
    ready_max_oldest_due_seconds: float = 300.0  # ... or when the oldest has waited longer than this
    # The web pages' buttons (place orders, failure injection, retry, cancel) act only for a browser that
    # signed in with this token, unless demo mode lets anyone act (``shop demo`` turns it on).
    admin_token: str | None = None
    demo_mode: bool = False
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
            ready_max_due_tasks=int(_number(environ, "READY_MAX_DUE_TASKS", cls.ready_max_due_tasks)),
            ready_max_oldest_due_seconds=_number(
                environ, "READY_MAX_OLDEST_DUE_SECONDS", cls.ready_max_oldest_due_seconds
            ),
            admin_token=_admin_token(environ, "SHOP_ADMIN_TOKEN"),
            demo_mode=_flag(environ, "SHOP_DEMO_MODE"),
            trusted_hosts=_names(environ, "SHOP_TRUSTED_HOSTS"),
        )


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


def _admin_token(environ: Mapping[str, str], name: str) -> str | None:
    raw = environ.get(name)
    if not raw:
        return None
    if len(raw) < MIN_ADMIN_TOKEN_LENGTH or not raw.isascii() or not raw.isprintable() or " " in raw:
        raise SettingsError(
            f"{name} must be at least {MIN_ADMIN_TOKEN_LENGTH} visible ASCII characters without spaces; "
            "set it to e.g. the output of `python3 -c 'import secrets; print(secrets.token_urlsafe())'`"
        )
    return raw


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
