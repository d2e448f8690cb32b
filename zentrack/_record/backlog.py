"""Whether a read must flush first, told without a lock and without writing a file.

Every read sees every call that returned before it, in any process: such a
call's line is in its journal (copied into the page cache before the call
returns), and a journal's ``.offset`` file advances only after MLMD has
committed the lines before it.  So the store already holds every returned
call exactly when no journal has data past its recorded offset: this module
keeps one read-only descriptor per journal and reads one byte at that offset
(a journal's data ends at its end or at its first NUL, see
:func:`~zentrack._record.journal.holds_data`), and reads an ``.offset`` file
only for a journal that has data past the offset last read from it.  A dead
writer's journal has data past its offset until drained, so it is always seen.

Runs of processes that died mid-run are marked FAILED by the reconciler,
which reads the store's run contexts.  It only has work when a dead
process's ``.alive`` marker (see :mod:`zentrack._runs.pipeline`) lies in
the folder, which one lock probe per marker of this host tells.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
import weakref
from pathlib import Path
from typing import Final

from zentrack._record.journal import SUFFIX, holds_data, open_journal, read_offset, writer_alive

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

    Holds a read-only descriptor of each journal it has seen: :meth:`close`
    them when done (they are also closed when the object is collected).  A
    lock serialises scans, so that threads reading at once never close a
    descriptor another one is reading through.

    Args:
        directory: the store's journal folder.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        #: journal name -> the offset last read from its ``.offset`` file (0: none read).
        self._committed: dict[str, int] = {}
        #: journal name -> (read-only descriptor, its inode number).
        self._fds: dict[str, tuple[int, int]] = {}
        self._finalizer = weakref.finalize(self, _close_all, self._fds)
        # Not at exit: finalizers run before the tracker's exit flush, which scans.
        self._finalizer.atexit = False
        self._lock = threading.Lock()
        self._hosts = _host_prefixes()
        #: The folder's mtime at the last full scan, if it had not changed for
        #: :data:`SETTLED` seconds then (else None), and what that scan found.
        self._settled_mtime: int | None = None
        self._journals: list[str] = []
        self._markers: list[str] = []

    def scan(self) -> tuple[bool, list[Path]]:
        """(unwritten journal lines?, dead markers of this host), from one byte per journal.

        A file created or deleted changes the folder's mtime; appends do not.
        While the folder is unchanged since a full scan, its journals and
        markers are known: one ``pread`` per journal (and a probe per marker)
        replaces the listing.  Only a folder unchanged for a second before
        that scan counts, since file systems keep mtimes at a coarse clock.
        """
        with self._lock:
            try:
                mtime = os.stat(self.directory).st_mtime_ns
            except (FileNotFoundError, NotADirectoryError):
                return False, []
            if mtime == self._settled_mtime:
                known = self._known()
                if known is not None:
                    return known
            return self._full_scan(mtime)

    def _waits(self, name: str, fd: int) -> bool:
        """Tell whether journal ``name`` has data past its committed offset.

        Its remembered offset is reread only if there is data past it: an
        offset only grows, so no data there means none past the current one.
        """
        committed = self._committed
        offset = committed.get(name, 0)
        if not holds_data(fd, offset):
            return False
        offset = committed[name] = read_offset(Path(self.directory, name))
        return holds_data(fd, offset)

    def _known(self) -> tuple[bool, list[Path]] | None:
        """What the journals known since the last full scan hold (None: list the folder)."""
        pending = False
        for name in self._journals:
            held = self._fds.get(name)
            if held is None:  # closed since the scan
                return None
            pending = self._waits(name, held[0]) or pending
        dead = [
            Path(self.directory, name)
            for name in self._markers
            if not writer_alive(Path(self.directory, name))
        ]
        return pending, dead

    def _full_scan(self, mtime: int) -> tuple[bool, list[Path]]:
        scanned = time.time_ns()
        journals: list[str] = []
        markers: list[str] = []
        pending = False
        dead: list[Path] = []
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(self.directory):
                name = entry.name
                if name.endswith(SUFFIX):
                    fd = self._descriptor(entry)
                    if fd is not None:
                        journals.append(name)
                        pending = self._waits(name, fd) or pending
                elif (
                    name.endswith(_MARKER)
                    and name.startswith(self._hosts)
                    and not entry.is_symlink()
                ):
                    markers.append(name)
                    if not writer_alive(Path(entry.path)):
                        dead.append(Path(entry.path))
        for name in set(self._fds).difference(journals):  # retired since: forgotten
            os.close(self._fds.pop(name)[0])
            self._committed.pop(name, None)
        self._journals, self._markers = journals, markers
        self._settled_mtime = mtime if scanned - mtime >= SETTLED * 1e9 else None
        return pending, dead

    def _descriptor(self, entry: os.DirEntry[str]) -> int | None:
        """The descriptor of journal ``entry``: the one held if it is still that file.

        A symbolic link, a FIFO or anything else but a regular file is no
        journal zentrack made (None), nor is a file gone since it was listed.
        """
        try:
            if entry.is_symlink():
                return None
            inode = entry.stat(follow_symlinks=False).st_ino  # not d_ino: overlayfs differs
        except FileNotFoundError:
            return None  # retired just now: drained
        held = self._fds.get(entry.name)
        if held is not None:
            if held[1] == inode:
                return held[0]
            del self._fds[entry.name]  # replaced under the same name: read anew
            self._committed.pop(entry.name, None)
            os.close(held[0])
        try:
            fd = open_journal(entry.path)
        except (OSError, ValueError):  # gone, or a link or FIFO planted since it was listed
            return None
        self._fds[entry.name] = (fd, os.fstat(fd).st_ino)
        return fd

    def pending(self) -> bool:
        """Tell whether some journal holds bytes that are not in the store yet."""
        return self.scan()[0]

    def dead_markers(self) -> list[Path]:
        """This host's ``.alive`` markers whose process is gone (its lock can be taken)."""
        return self.scan()[1]

    def forget(self) -> None:
        """Drop what was remembered and close the inherited descriptors (after a fork)."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        self.close()

    def close(self) -> None:
        """Close the journals' descriptors (a later scan opens them again)."""
        with self._lock:
            _close_all(self._fds)
            self._committed.clear()
            self._journals = []
            self._settled_mtime = None


def _close_all(fds: dict[str, tuple[int, int]]) -> None:
    """Close and forget every descriptor of ``fds`` (also :class:`Backlog`'s finalizer)."""
    while fds:
        _, (fd, _) = fds.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)


def retire_dead_markers(directory: Path, grace: float = MARKER_GRACE) -> list[Path]:
    """Delete dead markers older than ``grace`` seconds; return them.

    Called under the writer lock right after the reconciler, which deletes
    the markers of the runs it marks FAILED: a dead marker left then names
    no RUNNING run of this host (its process ended its runs, or died before
    starting one), and would otherwise make every later read reconcile.
    """
    now = time.time()
    removed = []
    backlog = Backlog(directory)
    try:
        dead = backlog.dead_markers()
    finally:
        backlog.close()
    for path in dead:
        with contextlib.suppress(FileNotFoundError):
            if now - path.stat(follow_symlinks=False).st_mtime >= grace:
                path.unlink()
                removed.append(path)
    return removed
