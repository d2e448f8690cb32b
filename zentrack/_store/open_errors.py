"""Why a store cannot be opened, in words that say what to do.

MLMD reports a bad store as a bare ``RuntimeError`` (SQLite) or only in its
C++ log (servers); an SQLite file MLMD would choke or hang on is refused
before MLMD sees it.  Kept out of the adapter so that the server connection
code can explain its failures without importing the adapter.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from zentrack._files import open_own
from zentrack._store.location import Location
from zentrack.exceptions import StoreError


def check_sqlite_file(path: Path) -> None:
    """Fail fast, with a clear message, on files MLMD would choke or hang on."""
    import sqlite3
    if not path.parent.is_dir():
        raise StoreError(
            f"Store {str(path)!r}: the directory {str(path.parent)!r} does not exist; "
            "create it or pass another path to zentrack.init(store=...)."
        )
    if not path.exists() or path.stat().st_size == 0:
        if not os.access(path.parent, os.W_OK):
            raise StoreError(
                f"Store {str(path)!r}: cannot create the store, the directory is not "
                "writable; fix its permissions or pass another path."
            )
        if not path.exists():  # SQLite gives its -wal and -shm files the store's mode
            with contextlib.suppress(FileExistsError):
                os.close(open_own(path, os.O_WRONLY, exclusive=True))
        connection = sqlite3.connect(path)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()
        return
    try:
        connection = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, timeout=30)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        if "unable to open" in str(exc):  # WAL needs -shm/-wal files beside the store
            raise StoreError(
                f"Store {str(path)!r} cannot be opened ({exc}): make the file and its folder "
                f"{str(path.parent)!r} writable (SQLite keeps -wal and -shm files beside it)."
            ) from None
        raise StoreError(
            f"Store {str(path)!r} is not an MLMD database ({exc}); it is corrupt or another "
            "kind of file: move it aside, or restore it from a backup."
        ) from None
    if tables and "MLMDEnv" not in tables:
        raise StoreError(
            f"Store {str(path)!r} is an SQLite database of another application (no MLMD "
            "tables); pass the path of an MLMD store or of a new file."
        )


def explain_open_error(location: Location, message: str) -> StoreError:
    """Turn MLMD's RuntimeError text into an error that says what to do."""
    where = location.display
    if "older than library version" in message:
        return StoreError(
            f"Store {where!r} was written by an older MLMD schema ({message.split(';')[0]}); "
            f"run `zentrack store migrate {where}` (it backs the file up first)."
        )
    if "greater than library version" in message:
        return StoreError(
            f"Store {where!r} was written by a newer MLMD schema; upgrade ml-metadata "
            "(pip install -U zentrack ml-metadata) to read it."
        )
    if "not a database" in message or "malformed" in message:
        return StoreError(
            f"Store {where!r} is not a readable MLMD database ({message.strip()[:120]}); "
            "move it aside or restore it from a backup."
        )
    if "unable to open" in message:
        return StoreError(
            f"Store {where!r} cannot be opened (missing or unwritable directory): make "
            "sure the folder exists and is writable (SQLite keeps -wal and -shm files there)."
        )
    return StoreError(f"Store {where!r} cannot be opened: {message.strip()[:300]}")


def explain_connect_error(location: Location, reason: str) -> str:
    """The reason a connection failed and what to do, from MLMD's log or a probe of the port."""
    where = f"{location.host}:{location.port}"
    if location.kind == "mysql":
        # MLMD's MySQL client reports no reason at all ("errno: , error: "):
        # look at the port ourselves.
        try:
            with socket.create_connection((location.host, location.port or 3306), timeout=3):
                pass
        except socket.gaierror:
            return f"the host name {location.host!r} does not resolve; check the URL"
        except OSError as exc:
            return (
                f"nothing accepts connections on {where} ({exc.strerror or exc}); "
                "is the server running?"
            )
        if dict(location.options).get("ssl_verify_server_cert", "").lower() in ("true", "1"):
            return (
                f"MLMD's MySQL client did not complete the login on {where} with "
                "ssl_verify_server_cert=true; the client in ml-metadata 1.17.1 fails that check "
                "for every certificate tried, valid ones included (docs/security.md), so "
                "zentrack cannot have a MySQL server's certificate verified: remove "
                "ssl_verify_server_cert for an encrypted connection whose certificate is not "
                "checked, or reach the server through an SSH tunnel"
            )
        return (
            f"the server on {where} refused the login; check the user, the password and "
            f"the user's privileges on {location.database!r}. MLMD logs in with "
            "mysql_native_password (on MySQL 8: ALTER USER ... IDENTIFIED WITH "
            "mysql_native_password BY '...')"
        )
    from zentrack._store.pg_tls_relay import MARKER

    if MARKER in reason:  # zentrack's TLS relay refused, and said why and what to do
        return reason.split(MARKER, 1)[1].strip()
    text = reason.lower()
    if "could not translate host name" in text:
        fix = f"the host name {location.host!r} does not resolve; check the URL"
    elif "could not connect" in text or "econnrefused" in text or "connection refused" in text:
        fix = f"nothing accepts connections on {where}; is the server running?"
    elif "password" in text or "role" in text or "authentication" in text:
        fix = "check the user name and the password in the URL"
    elif "permission denied" in text or "privilege" in text or "does not exist" in text:
        fix = (
            f"create the database first (CREATE DATABASE {location.database} OWNER "
            f"{location.user}), or let the user create databases (ALTER ROLE {location.user} "
            "CREATEDB)"
        )
    else:
        fix = "check that the server runs and that the URL is right"
    return f"{reason[:500].rstrip('. ')}; {fix}"
