"""What the shop and the gateway write under ``var/`` is readable by its owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gateway_simulator.database import create_gateway_engine
from shop.database import create_engine_from_url
from shop.private_files import open_private_log


@pytest.fixture(autouse=True)
def everyday_umask() -> Iterator[None]:
    """The usual umask, which leaves new files world-readable unless the code says otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_while_open(engine: Engine, database: Path) -> dict[str, int]:
    """Write a row, and while the connection is open (WAL and shared-memory files exist) read the modes."""
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE armchairs (sku TEXT)"))
            connection.execute(text("INSERT INTO armchairs VALUES ('CRUNCHY-ARMCHAIR')"))
            connection.commit()
            return {p.name: mode(p) for p in database.parent.iterdir() if p.name.startswith(database.name)}
    finally:
        engine.dispose()


@pytest.mark.parametrize("make_engine", [create_engine_from_url, create_gateway_engine])
def test_a_new_sqlite_database_and_its_directories_are_private(
    make_engine: Callable[[str], Engine], tmp_path: Path
) -> None:
    database = tmp_path / "var" / "nested" / "shop.sqlite3"
    engine = make_engine(f"sqlite:///{database}")

    modes = modes_while_open(engine, database)

    assert modes == {"shop.sqlite3": 0o600, "shop.sqlite3-wal": 0o600, "shop.sqlite3-shm": 0o600}
    assert (mode(tmp_path / "var"), mode(tmp_path / "var" / "nested")) == (0o700, 0o700)


def test_an_existing_database_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)

    modes = modes_while_open(
        create_engine_from_url(f"sqlite:///{shared / 'shop.sqlite3'}"), shared / "shop.sqlite3"
    )

    assert mode(shared) == 0o755
    assert modes["shop.sqlite3"] == 0o600


def test_a_demo_log_is_private_even_when_an_earlier_run_left_it_readable(tmp_path: Path) -> None:
    log_path = tmp_path / "var" / "demo-logs" / "web.log"
    log_path.parent.mkdir(parents=True)
    log_path.write_text("yesterday's run\n")
    log_path.chmod(0o644)

    with open_private_log(log_path) as log:
        log.write(b"today's run\n")

    assert log_path.read_text() == "today's run\n"
    assert mode(log_path) == 0o600
    assert mode(tmp_path / "var" / "demo-logs") == 0o755  # made by someone else: left alone


def test_new_demo_log_directories_are_private(tmp_path: Path) -> None:
    log_path = tmp_path / "var" / "demo-logs" / "worker-1.log"

    with open_private_log(log_path) as log:
        log.write(b"started\n")

    assert (mode(tmp_path / "var"), mode(log_path.parent), mode(log_path)) == (0o700, 0o700, 0o600)
