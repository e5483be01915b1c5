"""The ``shop`` command: Flask's own (``shop run``, ``shop routes``), ``db``, ``worker`` and ``queue``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup

from shop import migrations
from shop.app import create_app
from shop.cli_database import checked_database_url, explained_database_errors
from shop.queue_commands import queue
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


main = FlaskGroup(create_app=create_app, help="Run and manage the shop.")
main.add_command(db)
main.add_command(worker_command)
main.add_command(queue)
