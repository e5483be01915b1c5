"""``shop db upgrade``: one line on success, one line with the fix on failure."""

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import inspect

from shop.cli.main import main
from shop.database import create_engine_from_url


def run_shop(*args: str, database_url: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env={"DATABASE_URL": database_url})
    return result.exit_code, result.output


def test_db_upgrade_creates_the_schema_and_says_so_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new-shop' / 'shop.sqlite3'}"

    exit_code, output = run_shop("db", "upgrade", database_url=url)

    assert exit_code == 0, output
    assert output.count("\n") == 1
    assert "newest schema" in output
    engine = create_engine_from_url(url)
    assert "queue_tasks" in inspect(engine).get_table_names()
    engine.dispose()


def test_db_upgrade_on_an_unreachable_server_says_how_to_fix_it_in_one_line() -> None:
    exit_code, output = run_shop("db", "upgrade", database_url="postgresql://clerk:s3cret@127.0.0.1:1/shop")

    assert exit_code == 1
    assert output.startswith(
        "Error: cannot use the database at postgresql+psycopg://clerk:***@127.0.0.1:1/shop"
    )
    assert "set DATABASE_URL" in output
    assert "s3cret" not in output
    assert output.count("\n") == 1


def test_db_upgrade_with_a_malformed_url_says_how_to_fix_it_in_one_line() -> None:
    exit_code, output = run_shop("db", "upgrade", database_url="not a url")

    assert exit_code == 1
    assert "is not a database URL" in output
    assert output.count("\n") == 1


def test_db_upgrade_refuses_databases_the_queue_does_not_run_on() -> None:
    exit_code, output = run_shop("db", "upgrade", database_url="mysql://clerk@127.0.0.1/shop")

    assert exit_code == 1
    assert "PostgreSQL or SQLite only" in output
    assert output.count("\n") == 1


def test_db_upgrade_without_the_named_driver_says_how_to_fix_it_in_one_line() -> None:
    exit_code, output = run_shop("db", "upgrade", database_url="postgresql+nodriver://clerk@127.0.0.1/shop")

    assert exit_code == 1
    assert output.startswith("Error: no database driver for postgresql+nodriver://clerk@127.0.0.1/shop")
    assert output.count("\n") == 1


def test_shop_console_script_runs_db_upgrade(tmp_path: Path) -> None:
    shop = Path(sys.executable).parent / "shop"
    url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"

    result = subprocess.run(
        [str(shop), "db", "upgrade"], env={"DATABASE_URL": url}, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "newest schema" in result.stdout


def test_a_bad_setting_in_the_environment_is_one_line_for_every_command() -> None:
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"GATEWAY_TIMEOUT_SECONDS": "soon"})

    assert result.exit_code == 1
    assert result.output == "Error: GATEWAY_TIMEOUT_SECONDS='soon' is not a number; set it to e.g. 5\n"
