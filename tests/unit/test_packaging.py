"""queue_core ships two ways from this repository, and the two agree on what it needs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

REPOSITORY = Path(__file__).resolve().parents[2]


def project(pyproject: Path) -> dict[str, Any]:
    return dict(tomllib.loads(pyproject.read_text())["project"])


def test_the_shop_requires_what_queue_core_requires_with_the_same_bounds() -> None:
    shop = project(REPOSITORY / "pyproject.toml")
    queue_core = project(REPOSITORY / "distributions" / "queue-core" / "pyproject.toml")
    extras = queue_core["optional-dependencies"].values()

    required = set(queue_core["dependencies"]).union(*extras)

    assert required <= set(shop["dependencies"])


def test_queue_core_alone_requires_neither_flask_nor_marshmallow_nor_a_driver() -> None:
    queue_core = project(REPOSITORY / "distributions" / "queue-core" / "pyproject.toml")

    names = {Requirement(requirement).name.lower() for requirement in queue_core["dependencies"]}

    assert names == {"sqlalchemy", "croniter"}


def test_importing_queue_core_and_its_migrations_package_needs_no_optional_library() -> None:
    probe = (
        "import sys, queue_core, queue_core.migrations; "
        "print(*[name for name in ('alembic', 'psycopg', 'flask', 'marshmallow') if name in sys.modules])"
    )

    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == ""  # none of them was imported
