"""Settings read from the environment, once, by whoever starts the process."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = f"sqlite:///{REPO_ROOT / 'var' / 'shop.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    """Everything the app, the CLI and the workers need to know about their surroundings."""

    database_url: str = DEFAULT_DATABASE_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``DATABASE_URL`` from ``environ`` (default ``os.environ``); unset means an SQLite file."""
        environ = os.environ if environ is None else environ
        return cls(database_url=normalize_database_url(environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL))


def normalize_database_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at psycopg 3; SQLAlchemy would otherwise look for psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url
