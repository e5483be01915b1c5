"""The ``shop`` command: Flask's commands (``shop run``, ``shop routes``) plus ``shop db``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from shop import migrations
from shop.app import create_app

SUPPORTED_BACKENDS = ("postgresql", "sqlite")
FIX_HINT = "set DATABASE_URL to a reachable database, e.g. postgresql://postgres@127.0.0.1:5432/shop"

db = AppGroup("db", help="Manage the database schema.")


@db.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration up to the newest one."""
    url = current_app.config["DATABASE_URL"]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise click.ClickException(f"DATABASE_URL {url!r} is not a database URL; {FIX_HINT}") from None
    shown_url = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise click.ClickException(f"{shown_url}: the shop runs on PostgreSQL or SQLite only; {FIX_HINT}")
    # Errors become one line that says what to change, instead of a traceback from deep in Alembic.
    try:
        migrations.upgrade(url)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise click.ClickException(f"no database driver for {shown_url} ({error}); {FIX_HINT}") from None
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "connection failed"
        raise click.ClickException(f"cannot use the database at {shown_url} ({reason}); {FIX_HINT}") from None
    except OSError as error:
        raise click.ClickException(f"cannot use the database at {shown_url} ({error}); {FIX_HINT}") from None
    click.echo(f"Database at {shown_url} is at the newest schema.")


main = FlaskGroup(create_app=create_app, help="Run and manage the shop.")
main.add_command(db)
