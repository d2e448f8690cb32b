"""Upkeep of an SQLite store file: folding its write-ahead log in, backing it up.

Plain ``sqlite3`` on the file itself, never MLMD: what a copy of the file
(``cp``, a backup) holds, and a consistent copy before a schema migration.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from pathlib import Path

from zentrack._files import make_private


def checkpoint(path: Path) -> None:
    """Fold SQLite's write-ahead log into the store file ``path``.

    Without it, recent records live only in ``metadata.sqlite-wal`` and a
    plain copy of the store file (a backup, ``cp``) would miss them.  The
    caller drops MLMD's connection first.
    """
    with contextlib.suppress(sqlite3.Error):
        connection = sqlite3.connect(path, timeout=5)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()


def backup(path: Path) -> Path:
    """Copy the store file aside (``<name>.backup-<time>``, private) and return the copy.

    SQLite's own backup is consistent and includes the write-ahead log; a
    plain file copy is the fallback.
    """
    target = path.with_name(f"{path.name}.backup-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        source, copy = sqlite3.connect(path), sqlite3.connect(target)
        with copy:
            source.backup(copy)
        source.close()
        copy.close()
    except sqlite3.Error:
        shutil.copy2(path, target)
    make_private(target)
    return target
