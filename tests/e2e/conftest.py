"""Fixtures of the end-to-end suite: one throwaway PostgreSQL cluster, a summary per scenario.

Every test here is marked ``e2e`` (``pytest -m "not e2e"`` leaves them out). The cluster is started once
for the module's scenarios, each of which creates a database of its own on it; the scenario that restarts
PostgreSQL starts a cluster of its own. Each scenario's summary is printed at the end of the run, in
pytest's terminal summary, passed or failed (and at once with ``-s``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.e2e_client import Summary
from tests.support.postgres_cluster import PostgresBinariesNotFound, PostgresCluster

SUMMARIES = pytest.StashKey[list[Summary]]()
E2E_DIR = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end: real processes, a throwaway PostgreSQL, faults")
    config.stash[SUMMARIES] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    summaries = config.stash.get(SUMMARIES, [])
    if summaries:
        terminalreporter.section("end-to-end scenarios")
        for summary in summaries:
            for line in summary.lines():
                terminalreporter.write_line(line)


def new_cluster() -> PostgresCluster:
    try:
        cluster = PostgresCluster()
    except PostgresBinariesNotFound as error:
        pytest.skip(f"the end-to-end suite starts its own PostgreSQL: {error}")
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[PostgresCluster]:
    """A cluster for every scenario that does not stop PostgreSQL; each scenario makes its own database."""
    cluster = new_cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster for one scenario alone (it may stop and restart it)."""
    cluster = new_cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def database_name(request: pytest.FixtureRequest) -> str:
    """The scenario's own database on the shared cluster, named after the test."""
    return re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:60]


@pytest.fixture
def summary(request: pytest.FixtureRequest) -> Iterator[Summary]:
    """The scenario's summary: filled in by the test, timed, printed with -s and at the end of the run."""
    found = Summary(scenario=request.node.name)
    yield found
    found.finish()
    request.config.stash[SUMMARIES].append(found)
    print("\n" + "\n".join(found.lines()))
