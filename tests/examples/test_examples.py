"""Every program in examples/ runs as a reader would run it, on SQLite and on PostgreSQL, and says what
its claim promises.

Each run gets an empty database (not a migrated one), so an example also proves it creates the schema
it needs by itself.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import PostgresServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MOST_LINES = 90  # "each under about 80 lines": room for a docstring line, not for a second topic

# For each example, lines its output must contain (regular expressions), each with how often.
EXPECTED: dict[str, list[tuple[str, int]]] = {
    "enqueue_with_pointer": [
        (r"^committed: +invoice waiting, task pending$", 1),
        (r"^rolled back: invoice missing, task missing$", 1),
        (r"^after a worker ran: invoice sent, task succeeded$", 1),
    ],
    "handler_finds_its_row": [
        (r"^printed the label of CRUNCHY-ARMCHAIR$", 1),
        (r"^kept parcel's task succeeded, deleted parcel's task discarded$", 1),
        (r"^label of CRUNCHY-ARMCHAIR was already printed: nothing to do$", 1),
    ],
    "one_to_one": [
        (r"^two payments pointing at one task: refused by the database", 1),
        (r"^charged payment \d+: (12\.50|9\.90) EUR$", 2),
        (r"^payment \d+: captured True, pointer None$", 2),
    ],
    "batch": [
        (r"^dispatched a batch of 3 ready shipments$", 1),
        (r"^manifest [0-9a-f-]{36}: 3 shipments, to \['DE', 'FR', 'NL'\]$", 1),
        (r"^dispatched a batch of 2 ready shipments$", 1),
        (r"^manifest [0-9a-f-]{36}: 2 shipments, to \['BE', 'GB'\]$", 1),
    ],
    "parallel_join": [(r"^order \d+: (screening|reservation) finished second and joined", 3)],
    "duplicates_and_cancel": [
        (r"^asked twice for the sales export: one task$", 1),
        (r"^cancelled the stock export: its task is cancelled$", 1),
        (r"^sales: exported 1 time\(s\), task succeeded$", 1),
        (r"^stock: exported 0 time\(s\), task cancelled$", 1),
    ],
    "retry_dead_requeue": [
        (r"^task dead after 3 attempt\(s\); synced: False$", 1),
        (r"^  attempt 3 failed: ConnectionError: the CRM did not answer attempt 3$", 2),
        (r"^re-queued: pending$", 1),
        (r"^task succeeded after 4 attempt\(s\); synced: True$", 1),
    ],
    "periodic": [(r"^[2-9] ticks counted by two workers; the most any tick ran: 1 time\(s\)$", 1)],
    "remote_call": [
        (r"^cancelled the mail to grace@example.com while the provider was sending it: the row was free$", 1),
        (r"^mail to ada@example.com: sent, provider id MSG-\d$", 1),
        (r"^mail to grace@example.com: cancelled, provider id None$", 1),
    ],
    "progress": [
        (r"^running: (25|50|75)% \(chunk [123] of 4\)$", -1),  # -1: at least once
        (r"^finished: succeeded$", 1),
    ],
}


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'example.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"example_{server.token}_{secrets.token_hex(3)}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_the_example_runs_and_shows_its_claim(example: str, empty_database_url: str, tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{example}.py")],
        env={**os.environ, "DATABASE_URL": empty_database_url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    for pattern, times in EXPECTED[example]:
        found = len(re.findall(pattern, finished.stdout, flags=re.MULTILINE))
        assert found >= 1 if times == -1 else found == times, (pattern, finished.stdout)


def test_every_example_is_run_here_listed_in_the_readme_and_short() -> None:
    programs = {path.stem: path for path in EXAMPLES.glob("*.py") if path.stem != "__init__"}
    readme = (EXAMPLES / "README.md").read_text()

    assert set(programs) == set(EXPECTED)
    assert [name for name in sorted(programs) if f"({name}.py)" not in readme] == []
    assert {
        name: n for name, path in programs.items() if (n := len(path.read_text().splitlines())) > MOST_LINES
    } == {}
