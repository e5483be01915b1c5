"""The shop's web process behind nginx, for the end-to-end suite: the shipped configuration, run unprivileged.

``running_shop_web`` migrates an SQLite file and starts ``shop web``; ``running_nginx`` starts the system's
nginx with ``deploy/nginx.conf`` and ``deploy/nginx-site.conf`` as shipped, except for two lines: where
it listens and where gunicorn is (free ports on 127.0.0.1). Every file nginx writes stays in the test's
directory (``-p``). Both are started and killed, with their children, by ``tests.support.processes``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.credentials import web_environment
from tests.support.processes import REPO_ROOT, LoggedProcess, Processes, answering, listening, shop_command

NGINX = Path("/usr/sbin/nginx")
DEPLOY = REPO_ROOT / "deploy"
# The lines of deploy/nginx-site.conf that a test changes, as shipped.
SHIPPED_LISTEN = "listen 8080;"
SHIPPED_UPSTREAM = "server 127.0.0.1:8000;"


@contextmanager
def running_shop_web(work_dir: Path, port: int, *, workers: int = 1) -> Iterator[LoggedProcess]:
    """``shop db upgrade`` then ``shop web`` on an SQLite file, trusting one proxy's X-Forwarded-For."""
    work_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{work_dir / 'shop.sqlite3'}",
        "WEB_THREADS": "8",
        "SHOP_TRUSTED_PROXIES": "1",
        "PYTHONUNBUFFERED": "1",
        **web_environment(),
    }
    subprocess.run(shop_command("db", "upgrade"), cwd=REPO_ROOT, env=environment, check=True, timeout=60)
    with Processes(work_dir, environment=environment, stop_seconds=0) as processes:
        web = processes.start("web", shop_command("web", "--port", str(port), "--workers", str(workers)))
        processes.wait_until(answering(f"http://127.0.0.1:{port}/healthz"), what="shop web answers /healthz")
        yield web


def site_for_test(listen_port: int, upstream_port: int) -> str:
    """deploy/nginx-site.conf with the test's two ports; fails if the shipped lines have changed."""
    site = (DEPLOY / "nginx-site.conf").read_text()
    for shipped, ours in (
        (SHIPPED_LISTEN, f"listen 127.0.0.1:{listen_port};"),
        (SHIPPED_UPSTREAM, f"server 127.0.0.1:{upstream_port};"),
    ):
        if site.count(shipped) != 1:
            raise AssertionError(f"deploy/nginx-site.conf should hold {shipped!r} once; update {__name__}")
        site = site.replace(shipped, ours)
    return site


@contextmanager
def running_nginx(prefix: Path, port: int, upstream_port: int) -> Iterator[LoggedProcess]:
    """nginx in the foreground with the shipped configuration, listening on ``port`` in front of gunicorn."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text((DEPLOY / "nginx.conf").read_text())
    (prefix / "nginx-site.conf").write_text(site_for_test(port, upstream_port))
    directives = "daemon off;"
    if os.geteuid() == 0:
        # nginx started by root runs its workers as "nobody", who may not enter the test's directory.
        directives += " user root;"
    command = [str(NGINX), "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-g", directives]
    with Processes(prefix, stop_seconds=0) as processes:
        nginx = processes.start("nginx", command)
        processes.wait_until(listening(port), what=f"nginx listens on {port}")
        yield nginx
