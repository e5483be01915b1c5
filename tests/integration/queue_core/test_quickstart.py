"""The guide's quickstart runs as written, on an empty database of each backend."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.quickstart import EXPECTED_OUTPUT, invoices_with_their_task_states, write_quickstart


def test_quickstart_sends_the_invoice_its_row_points_at(
    make_empty_database: Callable[[], str], tmp_path: Path
) -> None:
    url = make_empty_database()
    script = write_quickstart(tmp_path)

    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == EXPECTED_OUTPUT
    assert invoices_with_their_task_states(url) == [("Crunchy Armchairs Ltd", True, "succeeded")]
