"""The TLS relay of a PostgreSQL store: a child process that encrypts what MLMD sends in clear.

ml-metadata's bundled libpq is built without SSL, so it cannot encrypt.
MLMD connects instead to this relay's Unix socket, in a folder only the
user can enter (:mod:`.pg_tls` makes it); for each connection the relay
opens TCP to the real server, asks it for TLS the way libpq does (the
SSLRequest packet), checks its certificate as ``sslmode`` says and then
passes the bytes both ways.  A server that offers no TLS, or whose
certificate fails the check, gets nothing: not even the user's name.  The
reason goes back to MLMD as a PostgreSQL error (``FATAL``), so it reaches
the user through the message that explains every failed connection.

It runs as a separate process, not a thread: MLMD holds the GIL while it
waits on its socket, so a relay thread in the same process never runs
(measured: the first connection hangs forever).

Talking to the parent: stdin carries one JSON line of settings (no secret:
host, port, sslmode and certificate paths), then stays open; its end means
the parent is gone, and the relay removes its socket and folder and exits.
stdout carries one line back: ``ready``, or ``error: <why>``.

Run as ``python -m zentrack._store.pg_tls_relay``; it imports nothing else of zentrack.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import struct
import sys
import threading
from typing import Any, Final, NamedTuple

#: Starts every message the relay sends MLMD, so the parent recognises its own reasons.
MARKER: Final = "[zentrack TLS] "
#: The first packet of a TLS connection: length 8, code 80877103 (PostgreSQL protocol).
SSL_REQUEST: Final = struct.pack("!ii", 8, 80877103)
#: Request codes libpq may send first instead of a startup packet.
_SSL_CODE: Final = 80877103
_GSS_CODE: Final = 80877104
#: PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH).
_MAX_STARTUP: Final = 10000
_TIMEOUT: Final = 30.0
_BUFFER: Final = 65536


class Settings(NamedTuple):
    """What the parent sends: where to listen, the server, and how to check it."""

    directory: str  # the private folder of the socket
    socket_port: int  # the socket is DIRECTORY/.s.PGSQL.SOCKET_PORT (libpq's name)
    host: str
    port: int
    mode: str  # require, verify-ca or verify-full
    rootcert: str  # a PEM file, "system", or "" (require: no check)
    cert: str
    key: str


class RelayError(Exception):
    """Why a connection cannot be relayed, in words for the user."""


def make_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of ``sslmode`` as libpq means it.

    ``require`` encrypts without checking the certificate, unless a root
    certificate is given, and then checks the chain like ``verify-ca``;
    ``verify-ca`` checks the chain; ``verify-full`` also checks that the
    certificate names the host (its subject name only when no alternative
    name is given, as libpq does).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # libpq's ssl_min_protocol_version
    if settings.mode == "require" and not settings.rootcert:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = settings.mode == "verify-full"
        context.hostname_checks_common_name = True
        if settings.rootcert == "system":
            context.load_default_certs()
        else:
            try:
                context.load_verify_locations(cafile=settings.rootcert)
            except (OSError, ValueError) as exc:
                raise RelayError(
                    f"sslrootcert={settings.rootcert!r} holds no certificate that can be read "
                    f"({_reason(exc)}); give a PEM file with the certificate of the authority "
                    "that signed the server's certificate"
                ) from None
    if settings.cert:
        try:
            context.load_cert_chain(settings.cert, settings.key or None, password=_no_passphrase)
        except RelayError:
            raise
        except (OSError, ValueError) as exc:
            raise RelayError(
                f"the client certificate {settings.cert!r} and its key "
                f"{settings.key or settings.cert!r} cannot be used ({_reason(exc)}); give a PEM "
                "certificate as sslcert and its unencrypted private key as sslkey"
            ) from None
    return context


def _no_passphrase() -> bytes:
    """Refuse an encrypted key rather than let OpenSSL ask for its passphrase on a terminal."""
    raise RelayError(
        "the client key is encrypted with a passphrase, which zentrack does not take; "
        "decrypt it (openssl pkey -in client.key -out client-plain.key, then chmod 600) "
        "and name that file as sslkey"
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def open_tls(settings: Settings, context: ssl.SSLContext) -> ssl.SSLSocket:
    """Connect to the server and switch to TLS, or raise RelayError saying why not."""
    where = f"{settings.host}:{settings.port}"
    try:
        raw = socket.create_connection((settings.host, settings.port), timeout=_TIMEOUT)
    except socket.gaierror:
        raise RelayError(
            f"the host name {settings.host!r} does not resolve; check the URL"
        ) from None
    except OSError as exc:
        raise RelayError(
            f"nothing accepts connections on {where} ({_reason(exc)}); is the server running?"
        ) from None
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as libpq: no Nagle delay
    try:
        raw.sendall(SSL_REQUEST)
        answer = raw.recv(1)  # exactly one byte: nothing sent in clear after it is read
        if answer == b"N":
            raise RelayError(
                f"the server on {where} does not offer TLS (its ssl setting is off), so "
                f"sslmode={settings.mode} cannot be honoured and zentrack refuses to connect in "
                "plaintext; turn TLS on in the server (ssl = on, with ssl_cert_file and "
                "ssl_key_file, in postgresql.conf), or remove sslmode from the URL to connect "
                "unencrypted"
            )
        if answer != b"S":
            raise RelayError(
                f"the server on {where} answered the TLS request with {answer!r}, not as "
                "PostgreSQL does; check the host and port in the URL"
            )
        tls = context.wrap_socket(raw, server_hostname=settings.host)
    except RelayError:
        raw.close()
        raise
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise RelayError(_untrusted(settings, exc)) from None
    except (OSError, ValueError) as exc:
        raw.close()
        raise RelayError(
            f"the TLS handshake with the server on {where} failed ({_reason(exc)}); check "
            "the server's TLS settings and the URL's certificate options"
        ) from None
    tls.settimeout(None)
    return tls


def _untrusted(settings: Settings, exc: ssl.SSLCertVerificationError) -> str:
    where = f"{settings.host}:{settings.port}"
    found = exc.verify_message or _reason(exc)
    if "mismatch" in found.lower():
        return (
            f"the certificate of the server on {where} is not made out to {settings.host!r} "
            f"({found}), and sslmode=verify-full checks that it is; use the host name the "
            "certificate names in the URL, or sslmode=verify-ca to check the chain only"
        )
    trusted = "the system's authorities" if settings.rootcert == "system" else (
        f"sslrootcert={settings.rootcert!r}"
    )
    return (
        f"the certificate of the server on {where} is not signed by an authority zentrack "
        f"trusts ({found}; checked against {trusted}); name the certificate of the authority "
        "that signed the server's certificate as sslrootcert"
    )


def error_response(message: str) -> bytes:
    """A PostgreSQL ErrorResponse: libpq reports it as ``FATAL:  <message>``."""
    fields = b"".join(
        code + text.encode() + b"\0"
        for code, text in (
            (b"S", "FATAL"),
            (b"V", "FATAL"),
            (b"C", "08001"),  # sqlclient_unable_to_establish_sqlconnection
            (b"M", MARKER + message),
        )
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``sock``; ``ConnectionError`` if the peer closes first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        data += chunk
    return data


def _first_packet(client: socket.socket) -> bytes:
    """The client's startup (or cancel) packet; a TLS or GSS request is answered 'N'."""
    while True:
        header = receive_exactly(client, 4)
        (length,) = struct.unpack("!i", header)
        if not 8 <= length <= _MAX_STARTUP:
            raise ConnectionError("not a startup packet")
        packet = header + receive_exactly(client, length - 4)
        if struct.unpack("!i", packet[4:8])[0] not in (_SSL_CODE, _GSS_CODE):
            return packet
        client.sendall(b"N")  # MLMD's libpq speaks plaintext to the relay


class AuthenticationFilter:
    """The server's messages until the login ends, with channel binding taken off the offer.

    Over TLS the server offers SCRAM-SHA-256-PLUS (SCRAM bound to the TLS
    channel) besides SCRAM-SHA-256.  MLMD's libpq, which sees no TLS, takes
    that offer for a downgrade attack and gives up; it could not bind to the
    relay's channel anyway.  So the offer it sees lists SCRAM-SHA-256 only,
    and it logs in with that (what the server then expects, since the
    client says it does not bind: gs2 flag ``n``).  After the login every
    byte passes unchanged.
    """

    _PLUS: Final = b"SCRAM-SHA-256-PLUS"

    def __init__(self) -> None:
        self.done = False
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        """The bytes to pass on for ``data`` from the server (complete messages only)."""
        if self.done:
            return data
        self._pending += data
        out = []
        while len(self._pending) >= 5 and not self.done:
            (length,) = struct.unpack("!i", self._pending[1:5])
            if not 4 <= length <= _BUFFER:  # not a login message: pass on as it is
                self.done = True
                break
            if len(self._pending) < 1 + length:
                break
            message = self._pending[: 1 + length]
            self._pending = self._pending[1 + length :]
            code = struct.unpack("!i", message[5:9])[0] if len(message) >= 9 else -1
            if message[:1] == b"R" and code == 10:  # AuthenticationSASL: the mechanisms
                names = [n for n in message[9:].split(b"\0") if n and n != self._PLUS]
                body = struct.pack("!i", 10) + b"".join(n + b"\0" for n in names) + b"\0"
                message = b"R" + struct.pack("!i", len(body) + 4) + body
            elif (message[:1] == b"R" and code == 0) or message[:1] == b"E":
                self.done = True  # AuthenticationOk, or an error: the login is over
            out.append(message)
        if self.done:
            out.append(self._pending)
            self._pending = b""
        return b"".join(out)


def _send_all(tls: ssl.SSLSocket, data: bytes) -> None:
    """Write all of ``data`` to the non-blocking TLS socket."""
    view = memoryview(data)
    while view:
        try:
            view = view[tls.send(view) :]
        except ssl.SSLWantReadError:
            select.select([tls], [], [])
        except (ssl.SSLWantWriteError, BlockingIOError):
            select.select([], [tls], [])


def pump(client: socket.socket, tls: ssl.SSLSocket) -> None:
    """Pass bytes both ways until either side closes.

    One thread per connection, the TLS socket non-blocking: a blocking read
    could wait inside a TLS record that carries no data (a session ticket)
    while MLMD waits to send.  A TLS failure before the server has said
    anything (a refused client certificate) goes back to MLMD as an error.
    """
    tls.setblocking(False)
    answered = False
    login = AuthenticationFilter()
    while True:
        ready = [tls] if tls.pending() else select.select([client, tls], [], [])[0]
        if tls in ready:
            try:
                data = tls.recv(_BUFFER)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                data = None
            except OSError as exc:
                if not answered:
                    client.sendall(error_response(
                        f"the server ended the TLS connection ({_reason(exc)}); if it asks for "
                        "a client certificate, give sslcert and sslkey in the URL"
                    ))
                return
            if data == b"":
                return
            if data:
                answered = True
                client.sendall(login.feed(data))
        if client in ready:
            data = client.recv(_BUFFER)
            if not data:
                return
            _send_all(tls, data)


def handle(client: socket.socket, settings: Settings, context: ssl.SSLContext) -> None:
    """Relay one connection of MLMD's to the server, over TLS."""
    with contextlib.ExitStack() as closing:
        closing.enter_context(client)
        try:
            first = _first_packet(client)
        except OSError:
            return
        try:
            tls = open_tls(settings, context)
        except RelayError as exc:
            with contextlib.suppress(OSError):
                client.sendall(error_response(str(exc)))
            return
        closing.enter_context(tls)
        with contextlib.suppress(OSError):
            tls.sendall(first)
            pump(client, tls)


def _remove(path: str, directory: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(directory)


def _exit_when_parent_leaves(path: str, directory: str) -> None:
    """Wait for the end of stdin (the parent closed it or died), then clean up and exit."""
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    _remove(path, directory)
    os._exit(0)


def _tell_parent(line: str) -> None:
    os.write(1, line.encode() + b"\n")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing else goes to the parent's pipe
    os.close(devnull)


def main() -> int:
    """Read the settings, listen, tell the parent, relay until the parent leaves."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C: it may still flush
    raw: Any = json.loads(sys.stdin.buffer.readline() or b"null")
    if not isinstance(raw, dict):
        return 2
    settings = Settings(**raw)
    path = os.path.join(settings.directory, f".s.PGSQL.{settings.socket_port}")

    def leave(*_: object) -> None:
        _remove(path, settings.directory)
        os._exit(0)

    signal.signal(signal.SIGTERM, leave)
    try:
        context = make_context(settings)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(16)
    except (RelayError, OSError) as exc:
        _tell_parent(f"error: {exc}")
        _remove(path, settings.directory)
        return 1
    _tell_parent("ready")
    threading.Thread(
        target=_exit_when_parent_leaves, args=(path, settings.directory), daemon=True
    ).start()
    while True:
        client, _ = listener.accept()
        threading.Thread(target=handle, args=(client, settings, context), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
