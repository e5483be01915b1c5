"""The ``shop`` command: Flask's commands (``shop run``, ``shop routes``) plus ``shop db``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from shop import migrations
from shop.app import create_app

FIX_HINT = "set DATABASE_URL to a reachable database, e.g. postgresql://postgres@127.0.0.1:5432/shop"

db = AppGroup("db", help="Manage the database schema.")


@db.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration up to the newest one."""
    url = current_app.config["DATABASE_URL"]
    try:
        shown_url = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise click.ClickException(f"DATABASE_URL {url!r} is not a database URL; {FIX_HINT}") from None
    try:
        migrations.upgrade(url)
    except NoSuchModuleError:
        raise click.ClickException(f"no database driver for {shown_url}; {FIX_HINT}") from None
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else "connection failed"
        raise click.ClickException(f"cannot use the database at {shown_url} ({reason}); {FIX_HINT}") from None
    click.echo(f"Database at {shown_url} is at the newest schema.")


main = FlaskGroup(create_app=create_app, help="Run and manage the shop.")
main.add_command(db)
