"""The ``shop`` command: ``db``, ``web``, ``worker``, ``gateway``, ``demo``, ``queue``, ``operator-key``,
and Flask's own."""

from __future__ import annotations

import dataclasses
import secrets

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup

from shop import migrations
from shop.access.operator_keys import DIGEST_PREFIX, digest_of, new_key
from shop.cli.database import checked_database_url, explained_database_errors
from shop.cli.demo import demo_command
from shop.cli.gateway import gateway_command
from shop.cli.queue import queue
from shop.cli.web import web_command
from shop.cli.worker import worker_command
from shop.config import Settings, SettingsError
from shop.web.app import create_app

db = AppGroup("db", help="Manage the database schema.")


@db.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration up to the newest one."""
    url = current_app.config["DATABASE_URL"]
    shown_url = checked_database_url(url)
    with explained_database_errors(shown_url):
        migrations.upgrade(url)
    click.echo(f"Database at {shown_url} is at the newest schema.")


@click.command("operator-key")
def operator_key_command() -> None:
    """Make a new operator key; print it, and the digest to put in SHOP_OPERATOR_KEYS instead of it."""
    key = new_key()
    click.echo(f"key:    {key}")
    click.echo(f"digest: {DIGEST_PREFIX}{digest_of(key)}")
    click.echo(
        "Give the key to the operator (it is shown once) and add the digest to SHOP_OPERATOR_KEYS "
        "(comma separated), then restart the web app.",
        err=True,
    )


def create_app_for_commands() -> Flask:
    """``create_app``, with a settings mistake told in one line (``Error: GATEWAY_URL=...``).

    A command serves no browser, so without ``SHOP_SECRET_KEY`` it gets a throwaway key of its own.
    """
    try:
        settings = Settings.from_env()
        if settings.secret_key is None:
            settings = dataclasses.replace(settings, secret_key=secrets.token_urlsafe(32))
        return create_app(settings)
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


main = FlaskGroup(create_app=create_app_for_commands, help="Run and manage the shop.")
main.add_command(db)
main.add_command(worker_command)
main.add_command(queue)
main.add_command(web_command)
main.add_command(gateway_command)
main.add_command(demo_command)
main.add_command(operator_key_command)
