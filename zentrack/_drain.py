"""Moving journaled records into MLMD, one writer at a time.

Draining takes an advisory ``flock`` on the store's lock file, so writers of
one SQLite store queue up on the lock instead of hitting MLMD's
"database is locked" retries.  It can run in the tracking process (explicit
``flush()``, reads, exit) or in a short-lived child process started by the
tracker (``python -m zentrack._drain STORE``), which keeps MLMD's GIL-holding
writes off the user's threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from zentrack._journal import Chunk, pending_chunks, retire, write_offset
from zentrack._location import Location, parse
from zentrack._store import MetadataStore
from zentrack.exceptions import StoreError

#: Records per MLMD write call: large enough to amortise each call's fixed cost.
BATCH = 1000


@contextlib.contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold the store's writer lock (blocking) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def drain_journals(store: MetadataStore, journal_dir: Path, batch: int = BATCH) -> int:
    """Write every complete journal line not yet in the store; return the count.

    The caller holds the writer lock.  Offsets advance only after MLMD has
    committed the lines before them, so a crash at any point replays at
    most one batch, which the store recognises by record id.
    """
    written = 0
    lines: list[bytes] = []
    marks: list[tuple[Path, int]] = []
    finished: list[Chunk] = []

    def commit() -> None:
        nonlocal written
        if lines:
            written += store.write(lines)
        for path, offset in marks:
            write_offset(path, offset)
        lines.clear()
        marks.clear()

    for chunk in pending_chunks(journal_dir):
        position = chunk.start
        for line in chunk.lines:
            position += len(line) + 1
            if line.strip():
                lines.append(line)
            if len(lines) >= batch:
                marks.append((chunk.path, position))
                commit()
        marks.append((chunk.path, chunk.end))
        finished.append(chunk)
    commit()
    for chunk in finished:
        retire(chunk)
    return written


def drain(location: Location, store: MetadataStore | None = None) -> int:
    """Drain all journals of ``location`` under its writer lock."""
    assert location.journal_dir is not None and location.lock_path is not None
    if not location.journal_dir.is_dir():
        return 0
    with writer_lock(location.lock_path):
        return drain_journals(store or MetadataStore(location), location.journal_dir)


def main(argv: list[str]) -> int:
    """Entry point of the background drainer process."""
    if len(argv) != 1:
        print("usage: python -m zentrack._drain STORE", file=sys.stderr)
        return 2
    try:
        drain(parse(argv[0]))
    except StoreError as exc:
        print(f"zentrack: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
