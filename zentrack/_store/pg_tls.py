"""TLS for PostgreSQL stores: the relay process MLMD connects through.

ml-metadata 1.17.1's bundled libpq is built without SSL (measured: given
``sslmode=require`` it logs ``sslmode value "require" invalid when SSL
support is not compiled in``), so zentrack carries TLS itself: a relay
child process (:mod:`.pg_tls_relay`) listens on a Unix socket in a fresh
folder only the user can enter (0700), MLMD's libpq connects there in
plaintext (a host starting with ``/`` is a socket folder to libpq), and the
relay speaks TLS to the server.  One relay per process and server serves
every store object and reconnection; it exits when this process does (its
stdin, a pipe from here, ends).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Final

import attrs

from zentrack._store import pg_options
from zentrack._store.location import ENV_PASSWORD, ENV_PASSWORD_FILE, ENV_STORE, Location
from zentrack.exceptions import StoreError

#: Seconds to wait for the relay to listen.
START_TIMEOUT: Final = 30.0
#: Unix socket paths are capped at 108 bytes; beyond this, use /tmp.
_MAX_SOCKET_DIR: Final = 80
_PACKAGE_PARENT: Final = str(Path(__file__).resolve().parents[2])
#: Left out of the relay's environment: it needs no store password.
_SECRET_ENV: Final = frozenset({ENV_STORE, ENV_PASSWORD, ENV_PASSWORD_FILE})


@attrs.frozen
class TLSSettings:
    """How to reach the server and check it (no secret: the relay never sees the password)."""

    host: str
    port: int
    mode: str
    rootcert: str
    cert: str
    key: str


@attrs.frozen(eq=False)
class Relay:
    """A running relay: MLMD connects to ``directory`` (as host) and ``port``."""

    process: subprocess.Popen[bytes]
    directory: Path
    port: int

    def alive(self) -> bool:
        """Tell whether the relay still runs (one killed is replaced on the next connect)."""
        return self.process.poll() is None


def tls_settings(location: Location) -> TLSSettings | None:
    """The TLS a PostgreSQL location asks for, or None (no ``sslmode`` that encrypts)."""
    options = dict(location.options)
    mode = options.get("sslmode", "")
    if location.kind != "postgresql" or mode not in pg_options.TLS_SSLMODES:
        return None
    rootcert, cert, key = pg_options.tls_files(options)
    return TLSSettings(location.host, location.port or 5432, mode, rootcert, cert, key)


_relays: dict[tuple[int, TLSSettings], Relay] = {}
_lock = threading.Lock()


def relay_for(location: Location) -> Relay | None:
    """The relay MLMD must connect through to reach ``location``, started on first use.

    None when the location asks for no encryption.  Keyed by process id as
    well: a forked child starts its own rather than share its parent's.
    """
    settings = tls_settings(location)
    if settings is None:
        return None
    key = (os.getpid(), settings)
    with _lock:
        relay = _relays.get(key)
        if relay is None or not relay.alive():
            if relay is not None:
                shutil.rmtree(relay.directory, ignore_errors=True)
            relay = _start(settings, location.display)
            _relays[key] = relay
    return relay


def _socket_dir() -> Path:
    """A fresh folder only the user can enter (``mkdtemp`` makes it 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="zentrack-pg-"))
    if len(os.fsencode(directory)) > _MAX_SOCKET_DIR:  # a long $TMPDIR
        directory.rmdir()
        directory = Path(tempfile.mkdtemp(prefix="zentrack-pg-", dir="/tmp"))
    return directory


def _start(settings: TLSSettings, display: str) -> Relay:
    directory = _socket_dir()
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "zentrack._store.pg_tls_relay"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=directory,  # the first entry of its sys.path: nothing there to import
        start_new_session=True,  # a Ctrl-C in the terminal leaves it to this process
    )
    assert process.stdin is not None and process.stdout is not None
    config = {"directory": str(directory), "socket_port": settings.port, **attrs.asdict(settings)}
    answer = ""
    try:
        process.stdin.write(json.dumps(config).encode() + b"\n")
        process.stdin.flush()
        answer = _read_line(process.stdout.fileno(), START_TIMEOUT)
    except OSError:
        pass
    finally:
        process.stdout.close()
    if answer == "ready":
        return Relay(process, directory, settings.port)
    process.kill()
    process.wait()
    shutil.rmtree(directory, ignore_errors=True)
    why = answer.removeprefix("error: ") if answer else (
        f"the TLS relay process (python -m zentrack._store.pg_tls_relay) did not answer "
        f"within {START_TIMEOUT:.0f} s (exit code {process.returncode}); its error, if any, "
        "is on stderr above"
    )
    raise StoreError(f"Store {display!r} cannot be opened over TLS: {why}.")


def _read_line(fd: int, timeout: float) -> str:
    """One line from ``fd``, or what came before the timeout or the end."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        chunk = os.read(fd, 4096) if ready else b""
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()
