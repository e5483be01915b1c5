"""queue_core installed alone from the repository into a fresh virtualenv, as another project would.

No shop, no Flask, no marshmallow, not even psycopg until PostgreSQL is wanted. Empty databases of both
backends get the queue's schema both ways (``create_tables``, and an application's own Alembic that
includes queue_core's revisions), and the guide's quickstart runs on each.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.support.app_with_alembic import ALEMBIC_INI
from tests.support.databases import PostgresServer
from tests.support.quickstart import EXPECTED_OUTPUT, invoices_with_their_task_states, write_quickstart

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[3]
DISTRIBUTION = Path("distributions") / "queue-core"
# Nothing of this checkout's environment may leak into the virtualenv's processes.
LEAKY_VARIABLES = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DATABASE_URL"}


class Virtualenv:
    """A new virtualenv without pip of its own: this checkout's pip installs into it (``pip --python``)."""

    def __init__(self, directory: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
        self.python = directory / "bin" / "python"

    def install(self, *requirements: str) -> None:
        pip = [sys.executable, "-m", "pip", "--python", str(self.python), "install", "--quiet"]
        subprocess.run([*pip, *requirements], check=True, timeout=300)

    def run(self, *arguments: str, cwd: Path, database_url: str | None = None) -> str:
        """Run the virtualenv's python in ``cwd`` (never this checkout); its output, after it succeeded."""
        env = {name: value for name, value in os.environ.items() if name not in LEAKY_VARIABLES}
        if database_url is not None:
            env["DATABASE_URL"] = database_url
        result = subprocess.run(
            [str(self.python), *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


def copy_of_the_distribution(directory: Path) -> Path:
    """The distribution's directory in a copy of the files it builds from, laid out as in the repository.

    Built in place, setuptools would leave ``build/`` beside the checkout's pyproject.toml, and a later
    build would ship whatever that held, modules deleted since included.
    """
    for source in (Path("queue_core"), DISTRIBUTION):
        shutil.copytree(
            REPOSITORY / source,
            directory / source,
            ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"),
        )
    return directory / DISTRIBUTION


def run_quickstart(venv: Virtualenv, directory: Path, database_url: str | None = None) -> None:
    """Run the guide's quickstart in ``directory``; without a URL it uses its SQLite default there."""
    directory.mkdir(exist_ok=True)
    output = venv.run(str(write_quickstart(directory)), cwd=directory, database_url=database_url)

    assert output.splitlines() == EXPECTED_OUTPUT
    url = database_url or f"sqlite:///{directory / 'quickstart.sqlite3'}"
    assert invoices_with_their_task_states(url) == [("Crunchy Armchairs Ltd", True, "succeeded")]


def migrate_with_alembic_and_run_quickstart(venv: Virtualenv, directory: Path, database_url: str) -> None:
    """The application's own Alembic creates the queue's tables and its own; the quickstart then runs."""
    directory.mkdir(exist_ok=True)
    venv.run("-m", "alembic", "-c", ALEMBIC_INI, "upgrade", "heads", cwd=directory, database_url=database_url)
    assert invoices_with_their_task_states(database_url) == []
    run_quickstart(venv, directory, database_url)


def test_queue_core_installs_alone_migrates_empty_databases_and_runs_the_quickstart(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    venv = Virtualenv(tmp_path / "venv")
    venv.install(f"{copy_of_the_distribution(tmp_path / 'checkout')}[migrations]")

    found = venv.run(
        "-c",
        "import importlib.util, queue_core; print(queue_core.__file__); "
        "print(*[name for name in ('flask', 'marshmallow', 'psycopg', 'shop', 'orders') "
        "if importlib.util.find_spec(name)])",
        cwd=tmp_path,
    ).splitlines()
    assert Path(found[0]).is_relative_to(tmp_path / "venv")
    assert found[1] == ""  # none of them

    run_quickstart(venv, tmp_path / "sqlite-create-tables")
    migrate_with_alembic_and_run_quickstart(
        venv, tmp_path / "sqlite-alembic", f"sqlite:///{tmp_path / 'alembic.sqlite3'}"
    )

    venv.install("psycopg[binary]")
    databases = [postgres_server.fresh_empty_database() for _ in range(2)]
    try:
        run_quickstart(venv, tmp_path / "postgresql-create-tables", databases[0])
        migrate_with_alembic_and_run_quickstart(venv, tmp_path / "postgresql-alembic", databases[1])
    finally:
        for url in databases:
            postgres_server.drop_database(str(make_url(url).database))
