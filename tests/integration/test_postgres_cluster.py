"""The throwaway cluster the suites lean on when no server is given, including across restarts."""

from collections.abc import Iterator

import psycopg
import pytest

from tests.support.databases import libpq_url
from tests.support.postgres_cluster import PostgresCluster


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


def count_parcels(cluster: PostgresCluster) -> int:
    with psycopg.connect(libpq_url(cluster.url())) as connection:
        return int(connection.execute("SELECT count(*) FROM parcels").fetchone()[0])  # type: ignore[index]


@pytest.mark.slow
def test_committed_rows_survive_an_immediate_stop(cluster: PostgresCluster) -> None:
    with psycopg.connect(libpq_url(cluster.url()), autocommit=True) as connection:
        assert connection.execute("SHOW fsync").fetchone() == ("on",)
        connection.execute("CREATE TABLE parcels (label text)")
        connection.execute("INSERT INTO parcels VALUES ('CRUNCHY-ARMCHAIR'), ('WOBBLY-LAMP')")

    cluster.restart(mode="immediate")

    assert count_parcels(cluster) == 2


@pytest.mark.slow
def test_removed_cluster_leaves_nothing_behind(cluster: PostgresCluster) -> None:
    cluster.remove()

    assert not cluster.base_dir.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(libpq_url(cluster.url()), connect_timeout=2)
