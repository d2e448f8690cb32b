"""Creating zentrack's own files: never through a symbolic link, never over another file.

Whoever can write the ``.zentrack`` folder can plant a symbolic link where
zentrack is about to write (a predictable temp name, the lock file, a
marker), to make it write, truncate or create a file elsewhere with the
user's rights.  Every file zentrack creates in its folders is therefore
opened here, with ``O_NOFOLLOW`` (a link is refused, not followed) and,
where the name is new, ``O_EXCL`` with a random part (nothing already there
is reused).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

#: Mode of the files zentrack creates (before the umask).
FILE_MODE: Final = 0o600


def is_link_error(exc: OSError) -> bool:
    """Tell whether ``exc`` is ``O_NOFOLLOW`` refusing a symbolic link."""
    return exc.errno == errno.ELOOP


def open_own(path: Path | str, flags: int, *, exclusive: bool = False) -> int:
    """Open (creating if missing) a file of zentrack's folder; a symbolic link is refused.

    Raises:
        OSError: ``ELOOP`` when ``path`` is a symbolic link (see
            :func:`is_link_error`), ``EEXIST`` with ``exclusive`` when it exists.
    """
    flags |= os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else 0)
    return os.open(path, flags, FILE_MODE)


def temp_name(target: Path) -> Path:
    """A fresh, unpredictable temp name beside ``target`` (never an existing file)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")


def replace_file(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically, through a new temp file that is no link."""
    tmp = temp_name(target)
    fd = open_own(tmp, os.O_WRONLY, exclusive=True)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, target)  # replaces a link planted at target, never writes through it
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_own(path: Path, limit: int = 1 << 20) -> bytes:
    """Read a small file of zentrack's folder without following a link to it.

    Raises:
        OSError: ``ELOOP`` for a symbolic link; ``FileNotFoundError``.
        ValueError: not a regular file (a FIFO would block), or over ``limit``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{str(path)!r} is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"{str(path)!r} is larger than {limit} bytes")
        chunks = []
        while chunk := os.read(fd, limit + 1):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
