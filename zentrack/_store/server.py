"""The MLMD store on PostgreSQL or MySQL: connecting, and every call through the server form.

:class:`ServerStore` wraps MLMD's store object and rewrites every node, type,
event and name on the way in and out with :class:`~.server_values.Codec`
(what the server form is, and why, is in :mod:`.server_values`).  It also
reconnects once after a failed call (a restarted PostgreSQL server, a MySQL
connection stuck after an error), and turns connection failures into a
:class:`StoreError` with the reason MLMD only logs to stderr.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from zentrack._store.location import Location, check_location
from zentrack._store.open_errors import explain_connect_error, explain_open_error
from zentrack._store.pg_tls import Relay, relay_for
from zentrack._store.pg_tls_relay import MARKER, receive_exactly
from zentrack._store.server_values import BACKENDS, Codec
from zentrack.exceptions import StoreError

log = logging.getLogger("zentrack")


#: Arguments that are names, by method: (position, keyword, "name" | "names" | "text").
_NAME_ARGS: Final[dict[str, tuple[tuple[int, str, str], ...]]] = {
    **{
        f"get_{kind}_type": ((0, "type_name", "name"),)
        for kind in ("execution", "artifact", "context")
    },
    **{
        f"get_{kind}s_by_type": ((0, "type_name", "name"),)
        for kind in ("execution", "artifact", "context")
    },
    **{
        f"get_{kind}_by_type_and_name": ((0, "type_name", "name"), (1, f"{kind}_name", "name"))
        for kind in ("execution", "artifact", "context")
    },
    **{
        f"get_{kind}_by_external_ids": ((0, "external_ids", "names"),)
        for kind in ("executions", "artifacts", "contexts", "execution_types",
                     "artifact_types", "context_types")
    },
    "get_artifacts_by_uri": ((0, "uri", "text"),),
}

#: Failures after which MLMD's connection may be dead: reconnect and call once more.
_RECONNECT: Final = (
    "InternalError",
    "FailedPreconditionError",
    "UnavailableError",
    "AbortedError",
    "DeadlineExceededError",
    "UnknownError",
)


class ServerStore:
    """An MLMD ``MetadataStore`` on PostgreSQL or MySQL that stores every value exactly.

    Behaves like the ``ml_metadata`` store it wraps (same methods, same
    results); see the module docstring for what it changes on the way.
    """

    def __init__(self, location: Location, *, upgrade: bool = False) -> None:
        self.location = location
        self.codec = Codec(BACKENDS[location.kind])
        self._upgrade = upgrade
        self._store: Any = connect(location, upgrade=upgrade)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name.startswith(("get_", "put_")):
            return functools.partial(self._call, name)
        return getattr(self._connected(), name)

    def put_parent_contexts(self, parent_contexts: Any, *args: Any, **kwargs: Any) -> None:
        """Like MLMD's, except that links already stored are skipped, not refused.

        On the SQL servers MLMD logs an ERROR line to stderr for every link
        that exists (a duplicate key), which zentrack re-asserts when a run
        written by a background drainer ends.
        """
        wanted = []
        parents: dict[int, set[int]] = {}
        for link in parent_contexts:
            if link.child_id not in parents:
                found = self._call("get_parent_contexts_by_context", link.child_id)
                parents[link.child_id] = {context.id for context in found}
            if link.parent_id not in parents[link.child_id]:
                wanted.append(link)
                parents[link.child_id].add(link.parent_id)
        if wanted:
            self._call("put_parent_contexts", wanted, *args, **kwargs)

    def _connected(self) -> Any:
        if self._store is None:
            self._store = connect(self.location, upgrade=self._upgrade)
        return self._store

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = self._encode_call(method, args, kwargs)
        try:
            result = getattr(self._connected(), method)(*args, **kwargs)
        except Exception as exc:
            if type(exc).__name__ not in _RECONNECT:
                raise
            log.info("zentrack: %s failed on %s (%s); reconnecting once.", method,
                     self.location.display, exc)
            self._store = None
            result = getattr(self._connected(), method)(*args, **kwargs)
        return self.codec.decode(result)

    def _encode_call(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        codec = self.codec
        args = codec.encode_args(args)
        kwargs = {k: codec.encode_args(v) for k, v in kwargs.items()}
        spec = _NAME_ARGS.get(method)
        if spec:
            positional = list(args)
            for index, keyword, kind in spec:
                convert: Callable[[Any], Any] = {
                    "name": codec.name,
                    "text": codec.text,
                    "names": lambda ids: [codec.name(i) for i in ids],
                }[kind]
                if index < len(positional):
                    positional[index] = convert(positional[index])
                elif keyword in kwargs:
                    kwargs[keyword] = convert(kwargs[keyword])
            args = tuple(positional)
        return args, kwargs


def connection_config(
    location: Location, *, create_database: bool = False, relay: Relay | None = None
) -> Any:
    """The MLMD ``ConnectionConfig`` of a server location (checked first).

    With a ``relay`` (a PostgreSQL URL asking for TLS), libpq is pointed at
    the relay's Unix socket folder instead of the server: the relay carries
    the TLS that MLMD's libpq cannot (:mod:`.pg_tls`).
    """
    check_location(location)
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    if location.kind == "postgresql":
        pg = config.postgresql
        pg.host = str(relay.directory) if relay else location.host
        pg.port = str(relay.port if relay else location.port)
        pg.user = _conninfo(location.user)
        pg.password = _conninfo(location.password)
        pg.dbname = _conninfo(location.database)
        # Connecting to the database itself needs no access to the `postgres`
        # database; MLMD only goes there to create a missing one.
        pg.skip_db_creation = not create_database
    else:
        my = config.mysql
        my.host = location.host
        my.port = location.port or 3306
        my.user = location.user
        my.password = location.password
        my.database = location.database
        for name, value in location.options:  # checked by parse: ssl_* only
            field = name.removeprefix("ssl_")
            if field == "verify_server_cert":
                my.ssl_options.verify_server_cert = value.lower() in ("true", "1")
            else:
                setattr(my.ssl_options, field, value)
    return config


def _conninfo(value: str) -> str:
    """Quote a libpq connection-string value: MLMD pastes them in as they are.

    Unquoted, a password with a space, a quote or a backslash breaks the
    connection string (``missing "=" after ...``).
    """
    if value and re.search(r"[\s'\\]", value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return value


#: CLIENT_SSL in a MySQL server's capability flags: it can switch to TLS.
_CLIENT_SSL: Final = 0x0800


def require_tls(location: Location, timeout: float = 10.0) -> None:
    """Refuse a MySQL server whose greeting does not offer TLS, before MLMD connects.

    MLMD's MySQL client given ``ssl_*`` options against a server without TLS
    connects in plaintext; the server's first packet (handshake v10) says
    whether it can switch to TLS (capability CLIENT_SSL), so zentrack reads
    it first.  This sees the server, not MLMD's own connection (see
    docs/security.md on verifying the certificate).
    """
    where = f"{location.host}:{location.port}"
    try:
        with socket.create_connection((location.host, location.port or 3306), timeout) as sock:
            header = receive_exactly(sock, 4)
            payload = receive_exactly(sock, int.from_bytes(header[:3], "little"))
    except OSError as exc:
        raise StoreError(
            f"Store {location.display!r}: cannot read the server's greeting on {where} to check "
            f"that it offers TLS ({exc.strerror or exc}); check that the server runs and that "
            "the URL is right."
        ) from None
    if payload[:1] == b"\xff":
        reason = (payload[9:] if payload[3:4] == b"#" else payload[3:]).decode(errors="replace")
        raise StoreError(
            f"Store {location.display!r}: the server on {where} refused the connection "
            f"({reason.strip()}); TLS could not be checked."
        )
    end = payload.find(b"\0", 1)
    flags = payload[end + 14 : end + 16] if payload[:1] == b"\x0a" and end > 0 else b""
    if len(flags) != 2:
        raise StoreError(
            f"Store {location.display!r}: the server on {where} did not greet like MySQL or "
            "MariaDB; check the URL's host and port."
        )
    if not int.from_bytes(flags, "little") & _CLIENT_SSL:
        raise StoreError(
            f"Store {location.display!r}: the URL asks for TLS (ssl_* options), but the server "
            f"on {where} offers no TLS (SSL is not configured there), and MLMD's client would "
            "connect in plaintext; zentrack refuses. Configure TLS on the server (ssl_cert and "
            "ssl_key in its configuration), or remove the ssl_* options to connect unencrypted."
        )


_stderr_lock = threading.Lock()
_GLOG_LINE: Final = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [^\]]+\] ?")


@contextlib.contextmanager
def _glog_errors() -> Iterator[list[str]]:
    """Collect what MLMD's C++ core logs to stderr (glog) while the block runs.

    Connection failures are only explained there (``could not connect``,
    ``password authentication failed``); the Python exception says
    ``connection pointer is NULL``.  Other output is passed on to stderr.
    """
    errors: list[str] = []
    with _stderr_lock, tempfile.TemporaryFile() as capture:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield errors
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            other, current = [], None
            for line in text.splitlines():
                if line.startswith("WARNING: Logging before InitGoogleLogging()"):
                    continue
                match = _GLOG_LINE.match(line)
                if match:
                    current = line[0] in "EF"
                    if current:
                        errors.append(line[match.end() :].strip())
                elif current and errors:
                    errors[-1] += " " + line.strip()
                elif current is None:
                    other.append(line)
            if other:
                os.write(2, ("\n".join(other) + "\n").encode())


def _open(
    location: Location, *, upgrade: bool, create_database: bool, relay: Relay | None
) -> tuple[Any, str]:
    """Open MLMD's store; return it (or None) and the logged reason of a failure."""
    from ml_metadata.metadata_store import metadata_store

    config = connection_config(location, create_database=create_database, relay=relay)
    with _glog_errors() as errors:
        try:
            return metadata_store.MetadataStore(config, enable_upgrade_migration=upgrade), ""
        except RuntimeError as exc:
            failure = str(exc).strip()
    # The TLS relay's own reason is whole on its line; MLMD's lines after it add nothing.
    reason = next((e for e in errors if MARKER in e), "") or " ".join(e for e in errors if e)
    if "library version" in failure:
        raise explain_open_error(location, failure)
    return None, re.sub(r"\s+", " ", reason or failure).strip()


def connect(location: Location, *, upgrade: bool = False) -> Any:
    """Open the plain MLMD store of a server location, or raise a StoreError that says why."""
    if location.kind == "mysql" and location.options:
        require_tls(location)
    relay = relay_for(location)  # a PostgreSQL URL asking for TLS: MLMD goes through it
    store, reason = _open(location, upgrade=upgrade, create_database=False, relay=relay)
    if store is None and 'database "' in reason and "does not exist" in reason:
        store, created = _open(location, upgrade=upgrade, create_database=True, relay=relay)
        reason = created or reason
    if store is not None:
        return store
    explanation = explain_connect_error(location, reason)
    end = "" if explanation.endswith("?") else "."
    raise StoreError(f"Store {location.display!r} cannot be opened: {explanation}{end}")
