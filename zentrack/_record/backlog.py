"""Whether a read must flush first, told without a lock and without writing a file.

Every read sees every call that returned before it, in any process: such a
call's line is in its journal (one ``os.write`` before the call returns),
and a journal's ``.offset`` file advances only after MLMD has committed the
lines before it.  So the store already holds every returned call exactly
when no journal is longer than its recorded offset; this module checks
that from one ``os.scandir`` (sizes come with it) and reads an ``.offset``
file only for a journal that grew since it was last read.  A dead writer's
journal stays longer than its offset until drained, so it is always seen.

Runs of processes that died mid-run are marked FAILED by the reconciler,
which reads the store's run contexts.  It only has work when a dead
process's ``.alive`` marker (see :mod:`zentrack._runs.pipeline`) lies in
the folder, which one lock probe per marker of this host tells.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Final

from zentrack._record.journal import SUFFIX, read_offset, writer_alive

_MARKER: Final = ".alive"
#: A dead marker no RUNNING run names is deleted once this old: younger, its
#: process may be between creating it and locking it (see ``_Alive.acquire``).
MARKER_GRACE: Final = 60.0
_NOT_HOST: Final = re.compile(r"[^A-Za-z0-9._-]")
#: Seconds a folder must have been unchanged for its mtime to tell later changes apart.
SETTLED: Final = 1.0


def _host_prefixes() -> tuple[str, ...]:
    """How this host's markers start (as named, and with a file-safe host name)."""
    host = os.uname().nodename
    return tuple({f"{host}-", f"{_NOT_HOST.sub('_', host)[:200] or 'host'}-"})


class Backlog:
    """What waits in one journal folder, probed lock-free (one per tracker).

    Args:
        directory: the store's journal folder.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: journal name -> the offset last read from its ``.offset`` file.
        self._committed: dict[str, int] = {}
        self._hosts = _host_prefixes()
        #: The folder's mtime at the last full scan, if it had not changed for
        #: :data:`SETTLED` seconds then (else None), and what that scan found.
        self._settled_mtime: int | None = None
        self._journals: list[str] = []
        self._markers: list[str] = []

    def scan(self) -> tuple[bool, list[Path]]:
        """(unwritten journal bytes?, dead markers of this host), from sizes and lock probes.

        A file created or deleted changes the folder's mtime; appends do not.
        While the folder is unchanged since a full scan, its journals and
        markers are known: one ``stat`` per journal (and a probe per marker)
        replaces the listing.  Only a folder unchanged for a second before
        that scan counts, since file systems keep mtimes at a coarse clock.
        """
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return False, []
        if mtime == self._settled_mtime:
            found = self._known()
            if found is not None:
                return found
        return self._full_scan(mtime)

    def _known(self) -> tuple[bool, list[Path]] | None:
        committed = self._committed
        pending = False
        for name in self._journals:
            path = os.path.join(self.directory, name)
            try:
                size = os.stat(path, follow_symlinks=False).st_size
            except FileNotFoundError:
                return None  # retired since: list the folder again
            if size > committed[name]:
                committed[name] = read_offset(Path(path))
                pending = pending or size > committed[name]
        dead = [
            Path(self.directory, name)
            for name in self._markers
            if not writer_alive(Path(self.directory, name))
        ]
        return pending, dead

    def _full_scan(self, mtime: int) -> tuple[bool, list[Path]]:
        scanned = time.time_ns()
        known = self._committed
        seen: dict[str, int] = {}
        markers: list[str] = []
        pending = False
        dead: list[Path] = []
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(self.directory):
                name = entry.name
                if name.endswith(SUFFIX):
                    if entry.is_symlink():
                        continue
                    try:
                        size = entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        continue  # retired just now: drained
                    offset = known.get(name, -1)
                    if size > offset:
                        offset = read_offset(Path(entry.path))
                    seen[name] = offset
                    pending = pending or size > offset
                elif (
                    name.endswith(_MARKER)
                    and name.startswith(self._hosts)
                    and not entry.is_symlink()
                ):
                    markers.append(name)
                    if not writer_alive(Path(entry.path)):
                        dead.append(Path(entry.path))
        self._committed = seen  # journals retired since are forgotten
        self._journals, self._markers = list(seen), markers
        self._settled_mtime = mtime if scanned - mtime >= SETTLED * 1e9 else None
        return pending, dead

    def pending(self) -> bool:
        """Tell whether some journal holds bytes that are not in the store yet."""
        return self.scan()[0]

    def dead_markers(self) -> list[Path]:
        """This host's ``.alive`` markers whose process is gone (its lock can be taken)."""
        return self.scan()[1]

    def forget(self) -> None:
        """Drop what was remembered (after a fork; rereading it is cheap)."""
        self._committed = {}
        self._settled_mtime = None


def retire_dead_markers(directory: Path, grace: float = MARKER_GRACE) -> list[Path]:
    """Delete dead markers older than ``grace`` seconds; return them.

    Called under the writer lock right after the reconciler, which deletes
    the markers of the runs it marks FAILED: a dead marker left then names
    no RUNNING run of this host (its process ended its runs, or died before
    starting one), and would otherwise make every later read reconcile.
    """
    now = time.time()
    removed = []
    for path in Backlog(directory).dead_markers():
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat(follow_symlinks=False).st_mtime >= grace:
                path.unlink()
                removed.append(path)
    return removed
