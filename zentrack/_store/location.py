"""Where a store lives, and the files zentrack keeps beside it.

Parsing the ``store`` argument of :func:`zentrack.init` needs no MLMD, so
this module is imported eagerly; the MLMD connection is built later, by
:mod:`zentrack._store.mlmd`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Final
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import attrs

from zentrack._files import PRIVATE_FILE, make_dirs, replace_file
from zentrack._store import pg_options
from zentrack._store.discovery import discover
from zentrack.exceptions import StoreError

ENV_STORE: Final = "ZENTRACK_STORE"
#: The store password, for a server URL written without one.
ENV_PASSWORD: Final = "ZENTRACK_STORE_PASSWORD"
#: A file holding the store password (mode 0600), for a URL without one.
ENV_PASSWORD_FILE: Final = "ZENTRACK_STORE_PASSWORD_FILE"
MEMORY: Final = ":memory:"


@attrs.frozen(repr=False)
class Location:
    """A parsed store address.

    Attributes:
        kind: ``"sqlite"``, ``"memory"``, ``"postgresql"`` or ``"mysql"``.
        path: the SQLite file (absolute), for ``"sqlite"``.
        host, port, user, password, database: the server URL's parts.
        options: the server URL's query options, checked (see :data:`OPTIONS`).
        password_from: where the password came from: ``"url"``, ``"env"``
            (``$ZENTRACK_STORE_PASSWORD``), ``"file"``
            (``$ZENTRACK_STORE_PASSWORD_FILE``) or ``""`` (none).

    ``repr()`` and ``str()`` never show the password.
    """

    kind: str
    path: Path | None = None
    host: str = ""
    port: int | None = None
    user: str = ""
    password: str = attrs.field(default="", repr=False)
    database: str = ""
    options: tuple[tuple[str, str], ...] = ()
    password_from: str = ""

    def __repr__(self) -> str:
        return f"Location(kind={self.kind!r}, store={self.display!r})"

    def __str__(self) -> str:
        return self.display

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
        """A string that :func:`parse` turns back into this location, password included.

        A secret: never put it in argv, the environment or a message (the
        background drainer gets it through a pipe); :meth:`public_spec` is
        the same without the password.
        """
        return self._url(with_password=True)

    def public_spec(self) -> str:
        """:meth:`spec` without the password: safe for the environment of child processes."""
        return self._url(with_password=False)

    def _url(self, *, with_password: bool) -> str:
        if self.kind == "sqlite":
            return f"sqlite://{self.path}"  # the path is absolute: three slashes
        if self.kind == "memory":
            return MEMORY
        secret = f":{quote(self.password, safe='')}" if with_password and self.password else ""
        user = quote(self.user, safe="")
        query = f"?{urlencode(self.options)}" if self.options else ""
        return f"{self.kind}://{user}{secret}@{self.host}:{self.port}/{self.database}{query}"


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
    scheme_text = text.split("://", 1)[0]
    scheme = scheme_text.split("+")[0].lower()
    if scheme == "sqlite":
        parts = urlsplit(text)
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
        return _parse_server("postgresql" if scheme.startswith("postgres") else "mysql", text)
    raise StoreError(
        f"Store {redact(text)!r}: unknown scheme {scheme_text!r}; use a file path, "
        "sqlite:///abs/path.db, :memory:, postgresql://user:pw@host:port/db or "
        "mysql://user:pw@host:port/db."
    )


def _split_userinfo(text: str) -> tuple[str, str | None, str]:
    """``(user, password or None, the rest)`` of ``scheme://user:password@rest``.

    The user information ends at the *last* ``@``: a password may hold ``@``,
    ``#``, ``/`` and ``?`` unencoded (``urlsplit`` would cut it at ``#``,
    ``/`` or ``?`` and show the rest as host and path).
    """
    rest = text.split("://", 1)[1]
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return "", None, rest
    user, colon, password = userinfo.partition(":")
    return unquote(user), (unquote(password) if colon else None), hostpart


def _parse_server(kind: str, text: str) -> Location:
    user, password, hostpart = _split_userinfo(text)
    parts = urlsplit("//" + hostpart)
    database = unquote(parts.path.lstrip("/"))
    shown = redact(text)
    if not parts.hostname or not database:
        raise StoreError(
            f"Store {shown!r}: a server URL needs a host and a database, "
            f"like {kind}://user:password@host:port/dbname."
        )
    try:
        port = parts.port
    except ValueError:
        raise StoreError(f"Store {shown!r}: the port is not a number.") from None
    if parts.fragment:
        raise StoreError(
            f"Store {shown!r}: a server URL has no '#' part; percent-encode a '#' in the "
            "database name or an option as %23."
        )
    password_from = "url" if password is not None else ""
    if password is None:
        password, password_from = _password_from_environment(shown)
    location = Location(
        kind=kind,
        host=parts.hostname,
        port=port or (5432 if kind == "postgresql" else 3306),
        user=user,
        password=password,
        database=database,
        options=_options(kind, parts.query, shown),
        password_from=password_from,
    )
    check_location(location)  # MLMD aborts the process on a missing field
    return location


#: The URL options zentrack understands, by backend.  PostgreSQL's TLS options
#: are checked by :mod:`.pg_options` and carried by zentrack's relay (:mod:`.pg_tls`).
OPTIONS: Final = {
    "postgresql": pg_options.NAMES,
    "mysql": (
        "ssl_ca",
        "ssl_capath",
        "ssl_cert",
        "ssl_key",
        "ssl_cipher",
        "ssl_verify_server_cert",
    ),
}


def _options(kind: str, query: str, shown: str) -> tuple[tuple[str, str], ...]:
    """The URL's options, each understood, or a StoreError naming the one that is not.

    An option zentrack ignored would silently weaken the connection (a
    misspelt ``sslmode`` connecting in plaintext), so none is ignored.
    """
    if not query:
        return ()
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise StoreError(
            f"Store {shown!r}: the options after '?' must be name=value pairs joined by '&'; "
            "percent-encode '&', '=' and '#' inside a value."
        ) from None
    known = OPTIONS[kind]
    names = [name for name, _ in pairs]
    for name, value in pairs:
        if name not in known:
            raise StoreError(
                f"Store {shown!r}: zentrack does not understand the option {name!r}, and refuses "
                f"it rather than ignore it; {kind} URLs take {', '.join(known)}."
            )
        if names.count(name) > 1:
            raise StoreError(f"Store {shown!r}: the option {name!r} is given twice; give it once.")
        if not value:
            raise StoreError(f"Store {shown!r}: the option {name!r} has no value; give one.")
        if name == "ssl_verify_server_cert" and value.lower() not in ("true", "false", "1", "0"):
            raise StoreError(
                f"Store {shown!r}: ssl_verify_server_cert={value!r} must be true or false."
            )
    if kind == "postgresql":
        pairs = pg_options.check_options(pairs, shown)
    return tuple(pairs)


def _password_from_environment(shown: str) -> tuple[str, str]:
    """The password of a URL without one: ``$ZENTRACK_STORE_PASSWORD``, else the file
    ``$ZENTRACK_STORE_PASSWORD_FILE`` names (only its owner may read it, as ssh
    requires of a key), else none."""
    secret = os.environ.get(ENV_PASSWORD)
    if secret:
        return secret, "env"
    name = os.environ.get(ENV_PASSWORD_FILE)
    if not name:
        return "", ""
    try:
        fd = os.open(name, os.O_RDONLY)
        try:
            info = os.fstat(fd)
            data = os.read(fd, 64 * 1024)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(
            f"Store {shown!r}: the password file {name!r} named by ${ENV_PASSWORD_FILE} cannot "
            f"be read ({exc.strerror or exc}); fix the path or its permissions."
        ) from None
    if info.st_mode & 0o077:
        raise StoreError(
            f"Store {shown!r}: the password file {name!r} named by ${ENV_PASSWORD_FILE} can be "
            f"read by others (mode {oct(info.st_mode & 0o777)}); run `chmod 600 {name}`."
        )
    return data.decode().rstrip("\r\n"), "file"


def export_store(location: Location) -> Path | None:
    """Name the store to child processes: ``$ZENTRACK_STORE`` without the password.

    Every process of the user (and root) can read a process's environment,
    and children pass it on, so the password is never put there.  A password
    given in the URL is written to a file only the user can read, in the
    store's private state folder, and ``$ZENTRACK_STORE_PASSWORD_FILE``
    names it (a path is no secret).  A password taken from the environment
    or a file is already where children find it.

    Returns:
        The password file written (the caller removes it when done), or None
        (also when it cannot be written: a warning says what to do).
    """
    os.environ[ENV_STORE] = location.public_spec()
    if location.password_from != "url" or not location.password:
        return None
    assert location.state_dir is not None
    path = location.state_dir / f"password-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        make_dirs(location.state_dir)
        replace_file(path, location.password.encode(), mode=PRIVATE_FILE)  # never group-shared
    except OSError as exc:
        logging.getLogger("zentrack").warning(
            "zentrack: cannot write the store password for child processes (%s); set $%s "
            "in their environment for them to reach the store.",
            exc,
            ENV_PASSWORD,
        )
        return None
    os.environ[ENV_PASSWORD_FILE] = str(path)
    return path


def redact(text: str) -> str:
    """``text`` (a store URL) with its password replaced by ``***``, whatever it holds."""
    if "://" not in text:
        return text
    scheme, rest = text.split("://", 1)
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{hostpart}"


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
