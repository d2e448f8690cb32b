"""Per-process append-only journals: the durable side of the record buffer.

Every tracked call copies its JSON line into a shared memory map of this
process's journal file before the call returns.  Bytes stored in a
``MAP_SHARED`` file mapping are in the kernel's page cache at once, exactly
like an ``os.write``'s: they survive a kill of the process (not a power cut
without ``fsync``, as before) and other processes' reads see them at once,
for a fraction of a system call's cost.  The file is ``posix_fallocate``'d
to its capacity when opened, so a copy can never meet a full disk (which
would be ``SIGBUS`` on a mapping); a file system that cannot map or
allocate gets the former ``O_APPEND`` ``os.write`` per line instead.

Unwritten capacity reads as zeros and a JSON line never holds a NUL byte,
so a journal's data ends at its first NUL (a cleanly closed journal is cut
back to its data).  The writing process holds an exclusive ``flock`` on its
journal for as long as it may still append; a drainer that can take the
lock knows the writer is gone (exited, killed or rotated away) and may
delete the file once every line of it is in the store.  How far a journal
has been drained is kept in a ``.offset`` file beside it, replaced atomically.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
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
#: The capacity of one journal file (a larger line gets a file of its own): past
#: it, appends go to a new file, so drained files can be deleted.
ROTATE_BYTES: Final = 1 << 20
#: New journal files tried before giving up (each one locked or deleted by another at once).
_OPEN_TRIES: Final = 100
#: What ``posix_fallocate`` fails with when the disk (or a quota, or a file size
#: limit) has no room: the line is not journaled, as a failed write's would not be.
_NO_ROOM: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_READ_WRITE: Final = mmap.PROT_READ | mmap.PROT_WRITE
#: Bytes a reader takes at a time while looking for the end of a journal's data.
_READ_BLOCK: Final = 1 << 16


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
    """The current process's journal file, opened and mapped on first append.

    A line goes into the mapping with one ``mmap.write``: its place is
    reserved and its bytes copied in one step no other thread or signal
    handler can split.  Rotating to a new file (and the ``os.write`` path)
    holds a lock, re-entrant for a tracked call made by a signal handler
    that interrupted an append on the same thread.  A mapping is closed
    when its file is released, so a thread still holding it cannot write
    into a file cut back to its data.
    """

    def __init__(self, directory: Path, *, create_parents: bool = True) -> None:
        self.directory = directory
        #: False beside an SQLite store: a missing store folder is not created
        #: behind the user's back.
        self.create_parents = create_parents
        self._fd: int | None = None
        #: The current file's mapping (None: not mapped yet, or not mapping at all).
        self._mm: mmap.mmap | None = None
        #: Bytes of lines in the current file, when written with ``os.write``
        #: (a mapping keeps its own position).
        self._pos = 0
        #: False once this file system could not allocate or map a journal:
        #: every line is then appended with ``os.write`` (see :meth:`_write`).
        self._mapped = hasattr(os, "posix_fallocate")  # not on macOS
        self._lock = threading.RLock()
        #: Appends in progress on this thread (``os.write`` path): a nested one never rotates.
        self._depth = 0
        #: An ``os.write`` was cut short (a full disk): its partial line is cut
        #: off before the next one, never glued to it.
        self._torn = False

    def append(self, data: bytes) -> None:
        """Append whole lines to the journal: they survive a kill once this returns.

        ``mmap.write`` reserves the line's place and copies it in one C call
        made under the GIL, so no other thread, and no signal handler, can
        come between the two: the common case needs no lock (it was a third
        of the journal's cost per call).  A mapping without room, or one
        another thread has just released, raises ``ValueError`` and leaves
        nothing behind; the locked path then makes room.

        Raises:
            OSError: the lines are not in the journal (a full disk, a folder
                made read-only); nothing of them is left in it either.
        """
        mm = self._mm
        if mm is not None:
            try:
                mm.write(data)  # durable: in the page cache, as a write's bytes are
                return
            except ValueError:  # full, or closed by a rotation: take the lock
                pass
        with self._lock:
            while True:
                mm = self._mm
                if mm is not None:
                    try:
                        mm.write(data)
                        return
                    except ValueError:
                        pass
                if not self._make_room(len(data)):
                    self._write(data)
                    return

    def _make_room(self, size: int) -> bool:
        """Take one step towards a mapping with room for ``size`` bytes.

        Returns:
            False if this writer appends with ``os.write`` instead.

        Raises:
            OSError: the journal file cannot be created or its blocks reserved.
        """
        if not self._mapped:
            return False
        if self._mm is not None:  # full: the next line starts a new file
            self._release()
        elif self._fd is None:
            self._open_new()
        else:
            self._map(max(ROTATE_BYTES, size))
        return self._mapped

    def _open_new(self) -> int:
        """Create and lock a new journal file.

        Until it is locked, a drainer may take the empty file for a dead
        writer's and delete it (under the file's lock, see :func:`retire`):
        appends would then go to a file no one reads.  So a file found locked,
        or no longer under its name once locked, is left for another one.
        """
        make_dirs(self.directory, parents=self.create_parents)
        flags = os.O_RDWR if self._mapped else os.O_WRONLY | os.O_APPEND
        for _ in range(_OPEN_TRIES):
            path = self.directory / (writer_tag() + SUFFIX)
            fd = open_own(path, flags, exclusive=True)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                    break
            except (FileNotFoundError, BlockingIOError):
                pass  # being deleted, or deleted, as a dead writer's: make another
            except OSError:
                os.close(fd)
                raise
            os.close(fd)
        else:  # every new file was taken at once: something keeps locking or deleting them
            raise OSError(
                errno.EAGAIN,
                f"no new journal file in {str(self.directory)!r} stayed ours for long enough to "
                f"lock ({_OPEN_TRIES} tries); another process keeps locking or deleting them",
            )
        self._fd = fd
        self._pos = 0
        self._torn = False
        return fd

    def _map(self, capacity: int) -> None:
        """Reserve the new file's blocks and map them; fall back if this file system cannot.

        Raises:
            OSError: no room for the blocks (``ENOSPC``, ``EDQUOT``, ``EFBIG``):
                the file stays open, empty and unmapped, and the next append
                tries again.
        """
        fd = self._fd
        assert fd is not None
        try:
            os.posix_fallocate(fd, 0, capacity)
            mm = mmap.mmap(fd, capacity, flags=mmap.MAP_SHARED, prot=_READ_WRITE)
        except OSError as exc:
            if exc.errno in _NO_ROOM:
                with contextlib.suppress(OSError):  # blocks a partial allocation took
                    os.ftruncate(fd, 0)
                raise
            self._release()  # cut back to empty, and closed: its zeros end any data
            self._mapped = False  # EOPNOTSUPP, ENODEV, EINVAL...: write from now on
            return
        self._mm = mm

    def _release(self) -> None:
        """Close the current file, cut back to its data: drainers may delete it once drained.

        Another thread may have read ``self._mm`` just before it is dropped
        here and write into it still: closing the mapping makes that write
        fail over to the next file, and one that got in before the close
        went after every other line (``mmap.write`` appends at the mapping's
        position), so the data still ends at its first NUL, looked up only
        once no write can come.
        """
        fd, mm, self._fd, self._mm = self._fd, self._mm, None, None  # no call: one step
        self._pos = 0
        if fd is None:
            return
        try:
            if self._mapped:  # zeros past the data: no size for a closed journal
                end = 0  # not mapped yet (or no more): nothing was written
                if mm is not None:
                    end = mm.tell()
                    mm.close()
                with contextlib.suppress(OSError):  # zeros are read as the end anyway
                    os.ftruncate(fd, _data_end(fd, end))
        finally:
            os.close(fd)

    def _write(self, data: bytes) -> None:
        """Append ``data`` with ``os.write`` (a file system that cannot map a journal)."""
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
        self._pos += written
        if self._pos >= ROTATE_BYTES and self._depth == 0:
            # Full: the next append starts a new file.  Closing releases the
            # flock, so drainers may delete this one once it is drained.
            self._release()

    def _cut_torn_tail(self, fd: int) -> None:
        """Cut the file back to its last whole line (this process wrote all of it)."""
        os.ftruncate(fd, self._pos)
        self._torn = False

    def close(self) -> None:
        """Release the journal: drainers may now delete it once drained."""
        with self._lock:
            self._release()

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's mapping and descriptor, keep its file and lock.

        The parent goes on appending to that file, so the child neither
        truncates it nor copies into it: its first append opens its own.
        """
        self._lock = threading.RLock()  # another thread may have held it at the fork
        self._depth = 0
        self._torn = False
        mm, fd = self._mm, self._fd
        self._mm = self._fd = None
        self._pos = 0
        if mm is not None:
            mm.close()  # this process's view only; the parent's file is untouched
        if fd is not None:
            os.close(fd)  # the parent's open file keeps its flock alive


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


def open_journal(path: Path | str) -> int:
    """A read-only descriptor of journal ``path``; never through a link, never a FIFO.

    Raises:
        OSError: it is gone, or a symbolic link (``ELOOP``).
        ValueError: it is no regular file (not a journal zentrack made).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{str(path)!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def holds_data(fd: int, offset: int) -> bool:
    """Tell whether the journal open as ``fd`` has data at ``offset``.

    Its data ends at the end of the file or at its first NUL byte (unwritten
    capacity of a mapped journal), whichever comes first.
    """
    return os.pread(fd, 1, offset) not in (b"", b"\0")


def pending_chunks(directory: Path) -> Iterator[Chunk]:
    """Yield the not yet drained lines of every journal in ``directory``.

    Liveness is checked before reading.  A live writer's data is taken up to
    its last newline (the line after it is being copied).  A dead writer's
    file is read to the end of its data, and a trailing partial line (a copy
    cut short by the kill, of a call that never returned) is skipped; a kill
    mid-copy may leave zeros inside that line (memory is not stored in
    order), and the data ends at the first of them.
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


def _data_blocks(fd: int, offset: int) -> Iterator[bytes]:
    """The data of the journal open as ``fd`` from ``offset`` on, block by block.

    It ends at the end of the file or at the first NUL (see :func:`holds_data`).
    """
    while block := os.pread(fd, _READ_BLOCK, offset):
        nul = block.find(b"\0")
        if nul >= 0:
            yield block[:nul]
            return
        yield block
        offset += len(block)


def _data_end(fd: int, offset: int) -> int:
    """Where the data of the journal open as ``fd`` ends, from ``offset`` inside it on."""
    return offset + sum(len(block) for block in _data_blocks(fd, offset))


def _read_from(path: Path, start: int) -> bytes:
    """The data of journal ``path`` from ``start`` to its end (see :func:`holds_data`)."""
    fd = open_journal(path)
    try:
        return b"".join(_data_blocks(fd, start))
    finally:
        os.close(fd)


def retire(chunk: Chunk) -> None:
    """Delete a fully drained journal whose writer is gone.

    Its lock is held from the check to the deletion: a writer that has just
    created the file and not locked it yet then finds it locked, and makes
    another (see :meth:`JournalWriter._open_new`).
    """
    if chunk.writer_alive:
        return
    try:
        fd = open_journal(chunk.path)
    except (OSError, ValueError):
        return  # gone already, or replaced by something that is no journal: not ours to delete
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a writer holds it
        if holds_data(fd, chunk.end):  # written after it was read: drained next time
            return
        chunk.path.unlink(missing_ok=True)
        _offset_path(chunk.path).unlink(missing_ok=True)
    finally:
        os.close(fd)
