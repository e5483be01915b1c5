"""Files the shop writes for itself (SQLite databases, the demo's logs): readable by their owner only.

They hold customers' email addresses and the queue's arguments, so they are made ``0600`` in directories
made ``0700``, whatever the umask. An existing file or directory keeps the mode it has: the shop tightens
only what it creates, and never a directory someone pointed it at.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_directory(path: Path) -> None:
    """Create ``path`` and any missing parents, each ``0700``; existing ones are left as they are."""
    missing = [directory for directory in (path, *path.parents) if not directory.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIRECTORY_MODE, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create an empty ``0600`` file at ``path`` unless one exists (SQLite takes an empty file as new).

    SQLite would create the file with the umask's mode, and its ``-wal`` and ``-shm`` files copy the
    database file's mode, so creating the file first is what keeps all three private.
    """
    make_private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))


def open_private_log(path: Path) -> IO[bytes]:
    """``path`` opened for writing from the start, made ``0600`` even if an earlier run left it wider."""
    make_private_directory(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    os.fchmod(descriptor, PRIVATE_FILE_MODE)
    return os.fdopen(descriptor, "wb")
