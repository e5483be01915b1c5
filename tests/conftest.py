"""Fixtures every suite shares: a PostgreSQL server, and a freshly migrated database per test.

A test asks for ``postgres_url`` or ``sqlite_url`` for one backend, or ``database_url`` (or ``engine``) to
run once on each; mark it ``postgres_only`` to keep only the PostgreSQL run. ``make_empty_database``
makes databases without any table, on each backend in turn, for code that creates its own schema.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url

from shop.database import create_engine_from_url
from tests.support.databases import PostgresServer, SqliteTemplate, session_token
from tests.support.discovery import NoPostgresAvailable, find_postgres
from tests.support.processes import Processes

BACKENDS = ("postgresql", "sqlite")
URL_FIXTURES = {"postgresql": "postgres_url", "sqlite": "sqlite_url"}
database_creation_seconds = pytest.StashKey[list[float]]()
postgres_source = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[database_creation_seconds] = []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses ``database_url`` once per backend (PostgreSQL only if marked so)."""
    if "database_url" in metafunc.fixturenames:
        only_postgres = metafunc.definition.get_closest_marker("postgres_only") is not None
        backends = BACKENDS[:1] if only_postgres else BACKENDS
        metafunc.parametrize("database_url", backends, indirect=True, ids=backends)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (see ``tests.support.discovery``); tests may add databases."""
    try:
        found = find_postgres()
    except NoPostgresAvailable as error:
        pytest.exit(str(error), returncode=pytest.ExitCode.USAGE_ERROR)
    request.config.stash[postgres_source] = found.source
    server = PostgresServer(found.admin_url, found.source, session_token())
    try:
        yield server
    finally:
        try:
            server.drop_all()
        finally:
            if found.cluster is not None:
                found.cluster.remove()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    """The session's migrated SQLite file, migrated on first use."""
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new, migrated PostgreSQL database for this test alone (``postgresql+psycopg://``)."""
    started = time.perf_counter()
    url = postgres_server.fresh_migrated_database()
    request.config.stash[database_creation_seconds].append(time.perf_counter() - started)
    yield url
    postgres_server.drop_database(str(make_url(url).database))


@pytest.fixture
def sqlite_url(sqlite_template: SqliteTemplate, tmp_path: Path) -> str:
    """A new, migrated SQLite file for this test alone, inside its ``tmp_path``."""
    return sqlite_template.copy_to(tmp_path / "shop.sqlite3")


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """A new, migrated database on the backend this run of the test is for."""
    return str(request.getfixturevalue(URL_FIXTURES[request.param]))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on this test's database, built the way the app builds its own."""
    engine = create_engine_from_url(database_url)
    yield engine
    engine.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say which server the session used and what a fresh database cost, so regressions get noticed."""
    timings = config.stash[database_creation_seconds]
    if postgres_source in config.stash and timings:
        first, rest = timings[0], timings[1:]
        typical = f"{1000 * sorted(rest)[len(rest) // 2]:.0f} ms median after" if rest else "no others"
        terminalreporter.write_line(
            f"PostgreSQL: {config.stash[postgres_source]}; {len(timings)} per-test databases, "
            f"{1000 * first:.0f} ms for the first (migrates the template), {typical}"
        )


@pytest.fixture(params=BACKENDS)
def make_empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes new databases with no tables at all (not even the migrations'), on each backend in turn."""
    if request.param == "sqlite":
        files = (tmp_path / f"empty-{number}.sqlite3" for number in itertools.count(1))
        yield lambda: f"sqlite:///{next(files)}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    made: list[str] = []

    def make() -> str:
        made.append(server.fresh_empty_database())
        return made[-1]

    yield make
    for url in made:
        server.drop_database(str(make_url(url).database))


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Where a test starts real processes; all stopped when it ends, their logs shown if it failed."""
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
        started.print_logs()  # shown by pytest when the test failed
