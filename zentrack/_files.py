"""Creating zentrack's own files and folders: private, and never through a symbolic link.

Whoever can write the ``.zentrack`` folder can plant a symbolic link where
zentrack is about to write (a predictable temp name, the lock file, a
marker), to make it write, truncate or create a file elsewhere with the
user's rights.  Every file zentrack creates in its folders is therefore
opened here, with ``O_NOFOLLOW`` (a link is refused, not followed) and,
where the name is new, ``O_EXCL`` with a random part (nothing already there
is reused).

Records, configs and cached outputs are the user's data: zentrack creates
its folders 0700 and its files 0600, whatever the umask.  A team sharing one
folder sets ``ZENTRACK_SHARE=group`` (folders 2770, files 0660), and then
trusts the group as writers of that folder (docs/security.md).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Final

#: Set to ``group`` to share zentrack's folders and files with the group.
ENV_SHARE: Final = "ZENTRACK_SHARE"
#: Modes of what zentrack creates, private and shared with the group.
PRIVATE_FILE: Final = 0o600
PRIVATE_DIR: Final = 0o700
_GROUP_FILE: Final = 0o660
_GROUP_DIR: Final = 0o2770


def shared_with_group() -> bool:
    """Tell whether ``$ZENTRACK_SHARE`` is ``group``."""
    return os.environ.get(ENV_SHARE, "").strip().lower() == "group"


def file_mode() -> int:
    """The mode of a file zentrack creates: 0600, or 0660 with ``ZENTRACK_SHARE=group``."""
    return _GROUP_FILE if shared_with_group() else PRIVATE_FILE


def make_dirs(path: Path, *, parents: bool = True) -> None:
    """Create ``path`` (and, with ``parents``, its missing parents) as zentrack's folders.

    Each folder created gets mode 0700 (2770 with ``ZENTRACK_SHARE=group``),
    whatever the umask; folders that exist are left as they are.

    Raises:
        OSError: a folder cannot be created (``FileNotFoundError`` for a
            missing parent without ``parents``).
    """
    group = shared_with_group()
    mode = _GROUP_DIR if group else PRIVATE_DIR
    missing = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        if not parents or current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise
            continue
        if group:  # the umask may have taken the group bits, and mkdir ignores setgid
            os.chmod(folder, mode)


def make_private(path: Path | str) -> None:
    """Give a file some library created (with the umask's mode) zentrack's file mode."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)


def is_link_error(exc: OSError) -> bool:
    """Tell whether ``exc`` is ``O_NOFOLLOW`` refusing a symbolic link."""
    return exc.errno == errno.ELOOP


def open_own(
    path: Path | str, flags: int, *, exclusive: bool = False, mode: int | None = None
) -> int:
    """Open (creating if missing) a file of zentrack's folder; a symbolic link is refused.

    A file created gets :func:`file_mode` (or ``mode``), whatever the umask.

    Raises:
        OSError: ``ELOOP`` when ``path`` is a symbolic link (see
            :func:`is_link_error`), ``EEXIST`` with ``exclusive`` when it exists.
    """
    mode = file_mode() if mode is None else mode
    flags |= os.O_CREAT | os.O_NOFOLLOW | (os.O_EXCL if exclusive else 0)
    fd = os.open(path, flags, mode)
    if mode & 0o077:  # a group mode the umask may have cut (a teammate's file: left as is)
        with contextlib.suppress(OSError):
            os.fchmod(fd, mode)
    return fd


def temp_name(target: Path) -> Path:
    """A fresh, unpredictable temp name beside ``target`` (never an existing file)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")


def replace_file(target: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``target`` atomically, through a new temp file that is no link.

    The file gets :func:`file_mode` (or ``mode``: 0600 for a secret).
    """
    tmp = temp_name(target)
    fd = open_own(tmp, os.O_WRONLY, exclusive=True, mode=mode)
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
