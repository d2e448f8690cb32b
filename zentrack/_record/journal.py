"""Per-process append-only journals: the durable side of the record buffer.

Every tracked call appends one JSON line with a single ``os.write`` before
the call returns, so the bytes are in the kernel even if the process is
killed right after.  The writing process holds an exclusive ``flock`` on its
journal for as long as it may still append; a drainer that can take the lock
knows the writer is gone (exited, killed or rotated away) and may delete the
file once every line of it is in the store.  How far a journal has been
drained is kept in a ``.offset`` file beside it, replaced atomically.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import attrs

from zentrack._files import make_dirs, open_own, read_own, replace_file

SUFFIX: Final = ".jsonl"
#: The name of a running pipeline's ``.alive`` file (see :func:`alive_path`).
ALIVE_SUFFIX: Final = ".alive"
#: ``<host>-<pid>-<8 hex>``: what :func:`writer_tag` makes, and all a name read back may be.
_TAG: Final = r"[A-Za-z0-9._-]{1,200}-[0-9]{1,10}-[0-9a-f]{8}"
_ALIVE_NAME: Final = re.compile(_TAG + re.escape(ALIVE_SUFFIX))
_NOT_HOST: Final = re.compile(r"[^A-Za-z0-9._-]")
#: Rotate to a new journal file past this size so drained files can be deleted.
ROTATE_BYTES: Final = 16 * 1024 * 1024


def writer_tag() -> str:
    """``<host>-<pid>-<random hex>``: the start of the files one process makes here.

    The host name is cut to the characters a file name can always hold, so
    every name zentrack makes matches the pattern names read back are held to.
    """
    host = _NOT_HOST.sub("_", os.uname().nodename)[:200] or "host"
    return f"{host}-{os.getpid()}-{os.urandom(4).hex()}"


def is_alive_name(name: object) -> bool:
    """Tell whether ``name`` is an ``.alive`` file name :func:`writer_tag` could make."""
    return isinstance(name, str) and _ALIVE_NAME.fullmatch(name) is not None


def alive_path(directory: Path, name: object) -> Path | None:
    """The ``.alive`` file ``name`` (read from a run record) inside ``directory``.

    A run record is written by whoever can write the store or the journal
    folder, so its ``alive`` value names a file zentrack may lock and delete
    only if it is a name :func:`writer_tag` could have made: one plain file
    name in this folder.  Anything else (absolute, ``..``, another suffix)
    gives ``None``.
    """
    return directory / name if isinstance(name, str) and is_alive_name(name) else None


class JournalWriter:
    """The current process's journal file, opened on first append.

    One lock is held from reading the descriptor to the end of the write, the
    size update and the rotation: a thread can never write to a descriptor
    another thread has closed (EBADF) or, once the number is reused, into
    some other file.  The kernel serialises ``O_APPEND`` writes to one file
    anyway, so the lock costs the threads no parallelism.
    """

    def __init__(self, directory: Path, *, create_parents: bool = True) -> None:
        self.directory = directory
        #: False beside an SQLite store: a missing store folder is not created
        #: behind the user's back.
        self.create_parents = create_parents
        self._fd: int | None = None
        self._size = 0
        #: Re-entrant: a tracked call made by a signal handler that interrupted
        #: an append on the same thread appends too (it never rotates, see append).
        self._lock = threading.RLock()
        self._depth = 0
        #: An append was cut short (a full disk): its partial line is cut off
        #: before the next one, never glued to it.
        self._torn = False

    def _open_new(self) -> int:
        make_dirs(self.directory, parents=self.create_parents)
        name = writer_tag() + SUFFIX
        fd = open_own(self.directory / name, os.O_WRONLY | os.O_APPEND, exclusive=True)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd = fd
        self._size = 0
        self._torn = False
        return fd

    def append(self, data: bytes) -> None:
        """Append whole lines with one ``write``: the record survives a kill.

        Raises:
            OSError: the lines are not in the journal (a full disk, a folder
                made read-only); nothing of them is left in it either.
        """
        with self._lock:
            fd = self._fd
            if fd is None:
                fd = self._open_new()
            if self._torn:
                self._cut_torn_tail(fd)
            self._depth += 1
            written = 0
            try:
                written = os.write(fd, data)
                while written < len(data):  # only on a full disk or a signal mid-write
                    written += os.write(fd, data[written:])
            except OSError:
                if written:
                    self._torn = True
                    with contextlib.suppress(OSError):  # freeing space works on a full disk
                        self._cut_torn_tail(fd)
                raise
            finally:
                self._depth -= 1
            self._size += written
            if self._size >= ROTATE_BYTES and self._depth == 0:
                # Full: the next append starts a new file.  Closing releases the
                # flock, so drainers may delete this one once it is drained.
                os.close(fd)
                self._fd = None
                self._size = 0

    def _cut_torn_tail(self, fd: int) -> None:
        """Cut the file back to its last whole line (this process wrote all of it)."""
        os.ftruncate(fd, self._size)
        self._torn = False

    def close(self) -> None:
        """Release the journal: drainers may now delete it once drained."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's descriptor, keep its lock."""
        self._lock = threading.RLock()  # another thread may have held it at the fork
        self._depth = 0
        self._torn = False
        if self._fd is not None:
            os.close(self._fd)  # the parent's open file keeps its flock alive
            self._fd = None


@attrs.frozen
class Chunk:
    """New complete lines of one journal, from ``start`` to ``end`` bytes."""

    path: Path
    start: int
    end: int
    lines: list[bytes]
    writer_alive: bool


def _offset_path(path: Path) -> Path:
    return path.with_name(path.name + ".offset")


def read_offset(path: Path) -> int:
    """Return how many bytes of ``path`` are already in the store.

    A missing, unreadable or linked offset file reads as 0: the journal is
    then replayed from its start, which the store recognises by record id.
    """
    try:
        return max(0, int(read_own(_offset_path(path), limit=64) or 0))
    except (OSError, ValueError):
        return 0


def write_offset(path: Path, offset: int) -> None:
    """Record atomically that ``path`` is in the store up to ``offset``."""
    replace_file(_offset_path(path), str(offset).encode())


def writer_alive(path: Path) -> bool:
    """Tell whether some process still holds ``path`` open for appending.

    A symbolic link is never opened (``O_NOFOLLOW``): it is not a file
    zentrack made, and counts as no live writer.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, OSError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def pending_chunks(directory: Path) -> Iterator[Chunk]:
    """Yield the not yet drained lines of every journal in ``directory``.

    Liveness is checked before reading, so a dead writer's file is read to
    its end and a trailing partial line (a write cut short by the kill, of a
    call that never returned) is skipped.
    """
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*" + SUFFIX)):
        alive = writer_alive(path)
        start = read_offset(path)
        try:
            data = _read_from(path, start)
        except (OSError, ValueError):  # gone, or a link or FIFO: no journal zentrack made
            continue
        cut = data.rfind(b"\n") + 1
        end = start + (cut if alive else len(data))
        lines = data[:cut].split(b"\n")[:-1]
        yield Chunk(path=path, start=start, end=end, lines=lines, writer_alive=alive)


def _read_from(path: Path, start: int) -> bytes:
    """The bytes of journal ``path`` from ``start``; never through a link, never a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{str(path)!r} is not a regular file")
        os.lseek(fd, start, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def retire(chunk: Chunk) -> None:
    """Delete a fully drained journal whose writer is gone."""
    if chunk.writer_alive or writer_alive(chunk.path):
        return
    if os.lstat(chunk.path).st_size > chunk.end:
        return
    chunk.path.unlink(missing_ok=True)
    _offset_path(chunk.path).unlink(missing_ok=True)
