"""How ``shop`` commands reach the database: one engine per command, and one-line errors that say the fix.

A command run by hand or from cron should never answer a wrong ``DATABASE_URL`` or a stopped server with
a traceback from deep inside SQLAlchemy: every command goes through ``command_engine`` (or, for
migrations, ``checked_database_url`` and ``explained_database_errors``), which turns those failures into
one line naming the database (password hidden) and what to change.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import current_app
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, ProgrammingError

from shop.database import SessionLimits, create_engine_from_url

SUPPORTED_BACKENDS = ("postgresql", "sqlite")
FIX_HINT = "set DATABASE_URL to a reachable database, e.g. postgresql://postgres@127.0.0.1:5432/shop"
SCHEMA_HINT = "run `shop db upgrade` first"


def checked_database_url(url: str) -> str:
    """The URL as it may be shown (password hidden); a one-line error unless the queue can run on it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise click.ClickException(f"DATABASE_URL {url!r} is not a database URL; {FIX_HINT}") from None
    shown_url = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise click.ClickException(f"{shown_url}: the shop runs on PostgreSQL or SQLite only; {FIX_HINT}")
    return shown_url


@contextmanager
def explained_database_errors(shown_url: str) -> Iterator[None]:
    """Turn a missing driver, an unreachable server or a missing schema into one line with the fix."""
    try:
        yield
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise click.ClickException(f"no database driver for {shown_url} ({error}); {FIX_HINT}") from None
    except (OperationalError, ProgrammingError) as error:
        reason = _first_line(error.orig) if error.orig else "connection failed"
        hint = SCHEMA_HINT if _is_missing_table(reason) else FIX_HINT
        raise click.ClickException(f"cannot use the database at {shown_url} ({reason}); {hint}") from None
    except OSError as error:
        raise click.ClickException(f"cannot use the database at {shown_url} ({error}); {FIX_HINT}") from None


@contextmanager
def command_engine(
    *, connections: int | None = None, limits: SessionLimits | None = None
) -> Iterator[Engine]:
    """An engine on the app's ``DATABASE_URL`` for the length of one command, disposed afterwards.

    ``connections`` bounds its pool exactly (no overflow); by default it is a small pool that may grow.
    ``limits``: what each of its connections sets on PostgreSQL (``shop worker`` passes its own).
    Database errors raised inside the ``with`` block come out as one line (see the module docstring), so a
    command keeps its transactions inside the block and prints after it.
    """
    url = current_app.config["DATABASE_URL"]
    with explained_database_errors(checked_database_url(url)):
        if connections is None:
            engine = create_engine_from_url(url, limits=limits)
        else:
            engine = create_engine_from_url(url, pool_size=connections, max_overflow=0, limits=limits)
        try:
            yield engine
        finally:
            engine.dispose()


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _is_missing_table(reason: str) -> bool:
    # SQLite says "no such table: queue_tasks"; PostgreSQL says 'relation "queue_tasks" does not exist'.
    return reason.startswith("no such table") or (
        reason.startswith("relation ") and "does not exist" in reason
    )
