"""The shop's web process behind nginx, for the end-to-end suite: the shipped configuration, run unprivileged.

``running_shop_web`` migrates an SQLite file and starts ``shop web``; ``running_nginx`` starts the system's
nginx with ``deploy/nginx.conf`` and ``deploy/nginx-site.conf`` as shipped, except for two lines: where
it listens and where gunicorn is (free ports on 127.0.0.1). Every file nginx writes stays in the test's
directory (``-p``), and both processes are killed, with their children, on the way out.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.credentials import web_environment
from tests.support.e2e_processes import REPO_ROOT, START_SECONDS, ShopProcess
from tests.support.http_probe import wait_until_answering

NGINX = Path("/usr/sbin/nginx")
DEPLOY = REPO_ROOT / "deploy"
# The lines of deploy/nginx-site.conf that a test changes, as shipped.
SHIPPED_LISTEN = "listen 8080;"
SHIPPED_UPSTREAM = "server 127.0.0.1:8000;"


def start_logged(name: str, command: list[str], work_dir: Path, environment: dict[str, str]) -> ShopProcess:
    """``command`` in a process group of its own, logging to ``<work_dir>/<name>.log``."""
    log_path = work_dir / f"{name}.log"
    log = log_path.open("wb")
    popen = subprocess.Popen(
        command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return ShopProcess(name, popen, log_path, log)


def raise_if_exited(process: ShopProcess) -> None:
    if not process.is_alive():
        raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_text()}")


@contextmanager
def running_shop_web(work_dir: Path, port: int, *, workers: int = 1) -> Iterator[ShopProcess]:
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
    shop = [sys.executable, "-m", "shop"]
    subprocess.run([*shop, "db", "upgrade"], cwd=REPO_ROOT, env=environment, check=True, timeout=60)
    web_command = [*shop, "web", "--port", str(port), "--workers", str(workers)]
    web = start_logged("web", web_command, work_dir, environment)
    try:
        wait_until_answering(
            [f"http://127.0.0.1:{port}/healthz"],
            check_alive=lambda: raise_if_exited(web),
            timeout=START_SECONDS,
            explain=web.log_text,
        )
        yield web
    finally:
        web.kill()


def wait_until_listening(port: int, process: ShopProcess) -> None:
    """Until ``port`` on 127.0.0.1 accepts connections (nginx answers even while gunicorn is away)."""
    deadline = time.monotonic() + START_SECONDS
    while True:
        raise_if_exited(process)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{process.name} did not listen on {port}:\n{process.log_text()}"
                ) from None
            time.sleep(0.1)


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
def running_nginx(prefix: Path, port: int, upstream_port: int) -> Iterator[ShopProcess]:
    """nginx in the foreground with the shipped configuration, listening on ``port`` in front of gunicorn."""
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text((DEPLOY / "nginx.conf").read_text())
    (prefix / "nginx-site.conf").write_text(site_for_test(port, upstream_port))
    directives = "daemon off;"
    if os.geteuid() == 0:
        # nginx started by root runs its workers as "nobody", who may not enter the test's directory.
        directives += " user root;"
    command = [str(NGINX), "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-g", directives]
    nginx = start_logged("nginx", command, prefix, dict(os.environ))
    try:
        wait_until_listening(port, nginx)
        yield nginx
    finally:
        nginx.kill()
