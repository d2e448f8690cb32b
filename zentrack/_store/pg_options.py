"""The TLS options of a ``postgresql://`` URL, checked the way libpq checks them.

ml-metadata's bundled libpq has no SSL, so zentrack carries the TLS itself
(:mod:`.pg_tls`); these options are its input.  They are checked when the
URL is parsed, so that a misspelt mode or a missing certificate is an error
at :func:`zentrack.init`, not a plaintext connection or a failure at the
first flush.  Nothing here imports :mod:`ssl`: ``import zentrack`` stays light.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from zentrack.exceptions import StoreError

#: The URL options of a PostgreSQL store.
NAMES: Final = ("sslmode", "sslrootcert", "sslcert", "sslkey")
#: ``sslmode`` values that do not ask for encryption (libpq's meaning); the
#: connection stays unencrypted, as MLMD's libpq makes it.
PLAINTEXT_SSLMODES: Final = ("disable", "allow", "prefer")
#: ``sslmode`` values that ask for encryption: zentrack's TLS relay carries them.
TLS_SSLMODES: Final = ("require", "verify-ca", "verify-full")
#: ``sslrootcert=system``: the system's certificate authorities (libpq 16's spelling).
SYSTEM_ROOTS: Final = "system"


def check_options(pairs: list[tuple[str, str]], shown: str) -> list[tuple[str, str]]:
    """The PostgreSQL options of a URL, checked, with their file names made absolute.

    Args:
        pairs: the URL's ``name=value`` options, each name in :data:`NAMES`,
            given once and with a value (checked by the caller).
        shown: the URL without its password, for messages.

    Certificate files are named as given, made absolute so that a child
    process (the background drainer) started elsewhere finds the same file.
    """
    given = dict(pairs)
    mode = given.get("sslmode", "")
    if mode and mode not in PLAINTEXT_SSLMODES + TLS_SSLMODES:
        raise StoreError(
            f"Store {shown!r}: sslmode={mode!r} is not a libpq sslmode; use one of "
            f"{', '.join(PLAINTEXT_SSLMODES + TLS_SSLMODES)}."
        )
    files = [name for name in ("sslrootcert", "sslcert", "sslkey") if name in given]
    if files and mode not in TLS_SSLMODES:
        raise StoreError(
            f"Store {shown!r}: {files[0]}={given[files[0]]!r} only matters on an encrypted "
            f"connection, and sslmode={mode or 'prefer'} does not ask for one; add "
            "sslmode=verify-full (or require, or verify-ca) to the URL."
        )
    if given.get("sslrootcert") == SYSTEM_ROOTS and mode != "verify-full":
        raise StoreError(
            f"Store {shown!r}: sslrootcert=system trusts every authority of the system, which "
            f"only protects the connection when the host name is checked too, and "
            f"sslmode={mode} does not check it; use sslmode=verify-full."
        )
    if "sslkey" in given and "sslcert" not in given:
        raise StoreError(
            f"Store {shown!r}: sslkey={given['sslkey']!r} is the key of a client certificate, "
            "but the URL names no certificate; add sslcert=/path/to/client.crt."
        )
    checked = []
    for name, value in pairs:
        if name in files and value != SYSTEM_ROOTS:
            value = str(_existing_file(name, value, shown))
        checked.append((name, value))
    if mode in TLS_SSLMODES:
        rootcert, _, key = tls_files(dict(checked))
        if not rootcert and mode != "require":
            raise StoreError(
                f"Store {shown!r}: sslmode={mode} checks the server's certificate, but the URL "
                f"names no sslrootcert and {str(_default('root.crt'))!r} does not exist; add "
                "sslrootcert=/path/to/root.crt (the authority that signed the server's "
                "certificate), or sslrootcert=system with sslmode=verify-full to trust the "
                "system's authorities."
            )
        if key:
            check_key_file(Path(key), f"Store {shown!r}: the client key {key!r}")
    return checked


def tls_files(options: dict[str, str]) -> tuple[str, str, str]:
    """``(sslrootcert, sslcert, sslkey)`` of a TLS connection, ``""`` for none.

    The URL's, else libpq's defaults when those files exist:
    ``~/.postgresql/root.crt`` (so ``sslmode=require`` then checks the
    certificate chain, as libpq does), ``postgresql.crt`` and
    ``postgresql.key``.  A client key defaults only with a certificate; a
    certificate without a key file may hold its key itself.
    """
    rootcert = options.get("sslrootcert", "")
    cert = options.get("sslcert", "")
    key = options.get("sslkey", "")
    if not rootcert and _default("root.crt").is_file():
        rootcert = str(_default("root.crt"))
    if not cert and _default("postgresql.crt").is_file():
        cert = str(_default("postgresql.crt"))
    if cert and not key and _default("postgresql.key").is_file():
        key = str(_default("postgresql.key"))
    return rootcert, cert, key


def _default(name: str) -> Path:
    """libpq's default place of a certificate file: ``~/.postgresql/NAME``."""
    return Path.home() / ".postgresql" / name


#: What each certificate option names, for messages.
_FILES: Final = {
    "sslrootcert": "the certificate of the authority that signed the server's certificate",
    "sslcert": "the client certificate",
    "sslkey": "the client certificate's private key",
}


def _existing_file(name: str, value: str, shown: str) -> Path:
    path = Path(value).absolute()
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a file"
        raise StoreError(
            f"Store {shown!r}: {name}={value!r} {what}; give the path of a PEM file holding "
            f"{_FILES[name]}."
        )
    return path


def check_key_file(path: Path, what: str) -> None:
    """Refuse a private key others may read, as libpq does (it must be 0600 or stricter).

    A key the group can read is no longer the user's alone; libpq refuses
    it rather than authenticate with a key that may have leaked.
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise StoreError(f"{what} cannot be read ({exc.strerror or exc}).") from None
    mode = stat.S_IMODE(info.st_mode)
    root_owned = info.st_uid == 0 and os.geteuid() != 0  # libpq allows 0640 owned by root
    if mode & (0o037 if root_owned else 0o077):
        raise StoreError(
            f"{what} can be read by others (mode {oct(mode)}); run `chmod 600 {path}`."
        )
