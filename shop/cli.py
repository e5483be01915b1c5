"""The ``shop`` command: ``db``, ``web``, ``worker``, ``gateway``, ``demo``, ``queue``, and Flask's own."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup

from shop import migrations
from shop.app import create_app
from shop.cli_database import checked_database_url, explained_database_errors
from shop.config import SettingsError
from shop.demo_command import demo_command
from shop.gateway_command import gateway_command
from shop.queue_commands import queue
from shop.web_command import web_command
from shop.worker_command import worker_command

db = AppGroup("db", help="Manage the database schema.")


@db.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration up to the newest one."""
    url = current_app.config["DATABASE_URL"]
    shown_url = checked_database_url(url)
    with explained_database_errors(shown_url):
        migrations.upgrade(url)
    click.echo(f"Database at {shown_url} is at the newest schema.")


def create_app_for_commands() -> Flask:
    """``create_app``, with a settings mistake told in one line (``Error: GATEWAY_URL=...``)."""
    try:
        return create_app()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


main = FlaskGroup(create_app=create_app_for_commands, help="Run and manage the shop.")
main.add_command(db)
main.add_command(worker_command)
main.add_command(queue)
main.add_command(web_command)
main.add_command(gateway_command)
main.add_command(demo_command)
