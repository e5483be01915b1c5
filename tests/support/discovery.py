"""Finding a PostgreSQL server for the tests, so that no database test is ever skipped for want of one.

In order: ``TEST_DATABASE_URL``; a server on 127.0.0.1:5432 as user ``postgres``; a throwaway cluster
started from the server binaries. If none of these works, the session stops with one line on how to fix it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from shop.config import normalize_database_url
from tests.support.databases import libpq_url
from tests.support.postgres_cluster import PostgresBinariesNotFound, PostgresCluster

LOCAL_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOW_TO_GET_ONE = (
    "no PostgreSQL for the tests: set TEST_DATABASE_URL, start PostgreSQL on 127.0.0.1:5432 "
    "(user postgres, trust auth), or install the server binaries (apt-get install postgresql)"
)


class NoPostgresAvailable(RuntimeError):  # noqa: N818 - says what happened
    """None of the ways to get a server worked; the message says what to do."""


@dataclass
class FoundServer:
    """An admin URL, where it came from, and the cluster to remove afterwards if we started one."""

    admin_url: str
    source: str
    cluster: PostgresCluster | None = None


def find_postgres() -> FoundServer:
    """The first server that answers, in the order this module's docstring gives."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        url = normalize_database_url(configured)
        problem = connection_problem(url)
        if problem:
            raise NoPostgresAvailable(f"TEST_DATABASE_URL is set but its server does not answer ({problem})")
        return FoundServer(url, "TEST_DATABASE_URL")
    if connection_problem(LOCAL_SERVER_URL) is None:
        return FoundServer(LOCAL_SERVER_URL, "the server on 127.0.0.1:5432")
    try:
        cluster = PostgresCluster()
    except PostgresBinariesNotFound:
        raise NoPostgresAvailable(HOW_TO_GET_ONE) from None
    try:
        cluster.start()
    except RuntimeError as error:
        cluster.remove()
        raise NoPostgresAvailable(f"{HOW_TO_GET_ONE}; starting a throwaway cluster failed: {error}") from None
    return FoundServer(cluster.url(), f"a throwaway cluster on 127.0.0.1:{cluster.port}", cluster)


def connection_problem(url: str) -> str | None:
    """Why ``url`` cannot be connected to, in one line, or None if it can."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None
