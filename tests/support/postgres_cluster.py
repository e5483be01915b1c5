"""A throwaway PostgreSQL cluster, started from the server binaries in a temporary directory.

It listens on a free TCP port on 127.0.0.1 and keeps its unix socket inside its own directory, so it
never meets a server it did not start. It trusts every connection, unless built with a ``password``:
then TCP connections must give it (``scram-sha-256``), as a production server's do. ``fsync`` stays on:
a suite that restarts the database mid-run must see what a real crash would leave behind. When run as
root, the binaries run as the ``postgres`` system user, because ``initdb`` refuses to run as root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from tests.support.processes import free_port

SUPERUSER = "postgres"
StopMode = Literal["smart", "fast", "immediate"]


class PostgresBinariesNotFound(RuntimeError):  # noqa: N818 - says what happened
    """Neither ``PATH`` nor ``/usr/lib/postgresql/*/bin`` holds ``initdb`` and ``pg_ctl``."""


def find_postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: on ``PATH`` first, else the newest Debian install."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    installed = [path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()]
    if not installed:
        raise PostgresBinariesNotFound("no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    return max(installed, key=lambda path: _version_key(path.parent.name))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


class PostgresCluster:
    """One cluster: ``initdb`` when built, then ``start``, ``stop``, ``restart`` at will, ``remove`` last."""

    def __init__(
        self, bindir: Path | None = None, port: int | None = None, password: str | None = None
    ) -> None:
        self.bindir = bindir or find_postgres_bindir()
        self.port = port or free_port()
        self.password = password
        self.base_dir = Path(tempfile.mkdtemp(prefix="shop-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_file = self.base_dir / "server.log"
        self.socket_dir.mkdir()
        self._run_as_postgres_user = os.geteuid() == 0
        if self._run_as_postgres_user:
            shutil.chown(self.base_dir, user=SUPERUSER, group=SUPERUSER)
            shutil.chown(self.socket_dir, user=SUPERUSER, group=SUPERUSER)
        self._initdb()

    def _initdb(self) -> None:
        arguments = ["--pgdata", str(self.data_dir), "--username", SUPERUSER, "--encoding", "UTF8"]
        if self.password is None:
            self._run("initdb", *arguments, "--auth", "trust", "--no-instructions")
            return
        password_file = self.base_dir / "password"  # initdb reads the superuser's password from a file
        password_file.write_text(self.password + "\n")
        if self._run_as_postgres_user:
            shutil.chown(password_file, user=SUPERUSER, group=SUPERUSER)
        try:
            auth = ["--auth-local", "trust", "--auth-host", "scram-sha-256", "--pwfile", str(password_file)]
            self._run("initdb", *arguments, *auth, "--no-instructions")
        finally:
            password_file.unlink()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=on"
        self._run(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--log",
            str(self.log_file),
            "--wait",
            "--options",
            options,
        )

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server; ``immediate`` skips the shutdown checkpoint, like a crash would."""
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", mode, "--wait")

    def restart(self, mode: StopMode = "fast") -> None:
        """Stop the server with ``mode`` and start it again on the same port."""
        self.stop(mode)
        self.start()

    def is_running(self) -> bool:
        """Whether ``pg_ctl status`` finds a server on this data directory."""
        status = self._run("pg_ctl", "status", "--pgdata", str(self.data_dir), check=False)
        return status.returncode == 0

    def url(self, dbname: str = "postgres") -> str:
        """A SQLAlchemy URL for ``dbname`` on this cluster, as the superuser (with the password, if any)."""
        user = SUPERUSER if self.password is None else f"{SUPERUSER}:{self.password}"
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{dbname}"

    def remove(self) -> None:
        """Stop the server if it runs and delete everything the cluster wrote."""
        if self.data_dir.exists() and self.is_running():
            self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def server_log(self) -> str:
        """What the server wrote to its log, for failure messages."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self._run_as_postgres_user:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.base_dir, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"{self.server_log()}"
            )
        return result
