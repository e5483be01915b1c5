"""``shop web``: serve the web app with gunicorn, configured by ``deploy/gunicorn.conf.py``.

This command replaces itself with ``gunicorn --config deploy/gunicorn.conf.py 'shop.web.app:create_app()'``
(``os.execv``), the same command a container would run, so there is one way the app is served and
gunicorn's arbiter receives SIGTERM and SIGINT directly.
"""

from __future__ import annotations

import os
import sys

import click

from shop.cli.ports import check_port_is_free
from shop.config import REPO_ROOT, Settings, SettingsError, require_secret_key

GUNICORN_CONFIG = REPO_ROOT / "deploy" / "gunicorn.conf.py"
APP_FACTORY = "shop.web.app:create_app()"


@click.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Gunicorn worker processes. Default: WEB_CONCURRENCY, else 2.",
)
def web_command(host: str, port: int, workers: int | None) -> None:
    """Serve the shop's web app and API with gunicorn until SIGTERM or SIGINT."""
    try:
        # Fail here, in one line, rather than in every gunicorn worker's boot.
        require_secret_key(Settings.from_env())
    except SettingsError as error:
        raise click.ClickException(str(error)) from None
    if not GUNICORN_CONFIG.exists():
        raise click.ClickException(f"{GUNICORN_CONFIG} is missing; run this from a checkout of the project")
    check_port_is_free(host, port)
    argv = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), "--bind", f"{host}:{port}"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    click.echo(f"Serving the shop on http://{host}:{port}/ (API docs at /api/docs)", err=True)
    sys.stderr.flush()
    os.execv(sys.executable, [*argv, APP_FACTORY])
