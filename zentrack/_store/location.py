"""Where a store lives, and the files zentrack keeps beside it.

Parsing the ``store`` argument of :func:`zentrack.init` needs no MLMD, so
this module is imported eagerly; the MLMD connection is built later, by
:mod:`zentrack._store.mlmd`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

import attrs

from zentrack._store.discovery import discover
from zentrack.exceptions import StoreError

ENV_STORE: Final = "ZENTRACK_STORE"
MEMORY: Final = ":memory:"


@attrs.frozen
class Location:
    """A parsed store address.

    Attributes:
        kind: ``"sqlite"``, ``"memory"``, ``"postgresql"`` or ``"mysql"``.
        path: the SQLite file (absolute), for ``"sqlite"``.
        url: the server URL (password included), for server backends.
        host, port, user, password, database: the server URL's parts.
    """

    kind: str
    path: Path | None = None
    url: str | None = None
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = attrs.field(default="", repr=False)
    database: str = ""

    @property
    def display(self) -> str:
        """The address without its password, for messages."""
        if self.kind == "sqlite":
            return str(self.path)
        if self.kind == "memory":
            return MEMORY
        return f"{self.kind}://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def state_dir(self) -> Path | None:
        """The folder of zentrack's own files for this store (None in memory)."""
        if self.kind == "memory":
            return None
        if self.path is not None:
            return self.path.parent
        digest = hashlib.sha256(self.display.encode()).hexdigest()[:16]
        return Path.home() / ".cache" / "zentrack" / f"{self.kind}-{digest}"

    @property
    def journal_dir(self) -> Path | None:
        """Where the journals of calls not yet in the store are kept."""
        base = self.state_dir
        if base is None:
            return None
        stem = self.path.name if self.path is not None else "store"
        return base / f"{stem}.journal"

    @property
    def lock_path(self) -> Path | None:
        """The advisory lock that serialises writers of this store."""
        base = self.state_dir
        if base is None:
            return None
        stem = self.path.name if self.path is not None else "store"
        return base / f"{stem}.lock"

    def spec(self) -> str:
        """A string that :func:`parse` turns back into this location."""
        if self.kind == "sqlite":
            return f"sqlite://{self.path}"  # the path is absolute: three slashes
        if self.kind == "memory":
            return MEMORY
        assert self.url is not None
        return self.url


def parse(store: str | os.PathLike[str] | None) -> Location:
    """Turn the ``store`` argument of :func:`zentrack.init` into a location.

    ``None`` means ``$ZENTRACK_STORE``, else ``metadata.sqlite`` in the
    project's ``.zentrack/`` folder, found upward like git finds a repository
    (:mod:`zentrack._store.discovery`).
    """
    if store is None:
        store = os.environ.get(ENV_STORE) or discover().store
    text = os.fspath(store)
    if text == MEMORY:
        return Location(kind="memory")
    if "://" not in text:
        return Location(kind="sqlite", path=Path(text).expanduser().absolute())
    parts = urlsplit(text)
    scheme = parts.scheme.split("+")[0]
    if scheme == "sqlite":
        path = "/" + unquote(parts.path).lstrip("/") if parts.path else ""
        if parts.netloc:
            raise StoreError(
                f"Store {text!r}: a sqlite URL has three slashes before an absolute path "
                "(sqlite:///abs/path.db) or four for a relative one is not supported; "
                "pass a plain path for a relative file."
            )
        if path in ("", "/"):
            raise StoreError(f"Store {text!r}: the sqlite URL names no file; use sqlite:///abs/path.db.")
        return Location(kind="sqlite", path=Path(path).expanduser().absolute())
    if scheme in ("postgresql", "postgres", "mysql", "mariadb"):
        kind = "postgresql" if scheme.startswith("postgres") else "mysql"
        database = parts.path.lstrip("/")
        if not parts.hostname or not database:
            raise StoreError(
                f"Store {_redact(text)!r}: a server URL needs a host and a database, "
                f"like {kind}://user:password@host:port/dbname."
            )
        try:
            port = parts.port
        except ValueError:
            raise StoreError(f"Store {_redact(text)!r}: the port is not a number.") from None
        location = Location(
            kind=kind,
            url=text,
            host=parts.hostname,
            port=port or (5432 if kind == "postgresql" else 3306),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=database,
        )
        check_location(location)  # MLMD aborts the process on a missing field
        return location
    raise StoreError(
        f"Store {_redact(text)!r}: unknown scheme {parts.scheme!r}; use a file path, "
        "sqlite:///abs/path.db, :memory:, postgresql://user:pw@host:port/db or "
        "mysql://user:pw@host:port/db."
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def check_location(location: Location) -> None:
    """Refuse server addresses MLMD would abort the process on (it checks them with CHECK)."""
    missing = [
        what
        for what, value in (
            ("host", location.host),
            ("port", location.port),
            ("database", location.database),
            ("user", location.user or location.kind == "mysql"),  # MySQL allows anonymous
        )
        if not value
    ]
    if missing:
        name = "PostgreSQL" if location.kind == "postgresql" else "MySQL"
        raise StoreError(
            f"Store {location.display!r}: the URL names no {' and no '.join(missing)}, which "
            f"{name} needs; use {location.kind}://user:password@host:port/dbname."
        )
