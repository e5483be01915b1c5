"""The guide's quickstart as a reader copies it, and what running it must leave behind.

docs/queue-core.md is the source: the tests run the first Python block of its "Quickstart" section, so a
change to the guide is a change to what they run.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "queue-core.md"
# What the program prints on a database it starts from empty.
EXPECTED_OUTPUT = [
    "sending invoice 1 to Crunchy Armchairs Ltd",
    "invoice 1 for Crunchy Armchairs Ltd: sent",
]


def quickstart_code() -> str:
    """The first ``python`` code block of the guide's Quickstart section."""
    section = GUIDE.read_text().split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"


def write_quickstart(directory: Path) -> Path:
    """Save the quickstart as ``quickstart.py`` in ``directory``, as the guide tells a reader to."""
    path = directory / "quickstart.py"
    path.write_text(quickstart_code())
    return path


def invoices_with_their_task_states(url: str) -> list[tuple[str, bool, str | None]]:
    """Each invoice's customer, whether it was sent, and the state of the task its pointer names."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT invoices.customer, invoices.sent, queue_tasks.state FROM invoices"
                    " LEFT JOIN queue_tasks ON queue_tasks.id = invoices.sending_task_id ORDER BY invoices.id"
                )
            )
            return [(customer, bool(sent), state) for customer, sent, state in rows]
    finally:
        engine.dispose()
