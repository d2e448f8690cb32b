"""Throwaway PostgreSQL and MariaDB servers on loopback, for the server-backend tests.

Each server is started once per test session, in a fresh data folder under
the system temp dir, on a free port, and removed at the end; every test then
gets a database of its own (MLMD creates it on first use).  Tests skip only
when the server programs are not installed (CI installs them: ``.ci/run``).

Both run as root-capable setups: ``initdb`` refuses to run as root, so it
and the server run as the ``postgres`` user (or ``nobody``) through
``runuser``; ``mariadbd`` takes ``--user=root``.  Durability is switched off
(``fsync=off``, ``innodb_flush_log_at_trx_commit=0``): these servers hold
nothing worth keeping, and start in about a second each.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import attrs
import pytest

#: The login every test uses; the password has characters a URL must escape.
USER: Final = "zentrack"
PASSWORD: Final = "p@ss:w/rd %1"
START_TIMEOUT: Final = 60.0
_databases = itertools.count()


@attrs.frozen
class Server:
    """A running server and what a test needs to reach it."""

    kind: str  # "postgresql" or "mysql"
    host: str
    port: int
    root: Path  # data folder, sockets and logs
    pid: int
    started_in: float  # seconds from nothing to accepting logins

    def url(self, database: str, *, password: str = PASSWORD) -> str:
        """The zentrack store URL of ``database`` on this server."""
        return f"{self.kind}://{USER}:{quote(password, safe='')}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A database name no other test has used (MLMD creates it on first use)."""
        return f"zt_{os.getpid()}_{next(_databases)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def _wait_for_port(port: int, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not _accepts(port):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}): {_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not listen on {port} in time: {_tail(log)}")
        time.sleep(0.05)


def _tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-2000:]
    return "(no log)"


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """The folder of ``initdb``/``pg_ctl`` (newest Debian version first), or None."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for path in candidates:
        if (Path(path) / "initdb").is_file() and (Path(path) / "pg_ctl").is_file():
            return Path(path)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _unprivileged() -> tuple[list[str], str | None]:
    """The command prefix that drops root (initdb refuses root), and that user's name."""
    if os.geteuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], name
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def start_postgres(bindir: Path, *, tls: Certificates | None = None) -> Server:
    """initdb a new cluster and start it on a free loopback port.

    With ``tls``, the server has ``ssl=on`` with the self-signed server
    certificate, listens on 127.0.0.1 and 127.0.0.2, and its pg_hba.conf
    takes TCP logins over TLS only (``hostssl``): a plaintext login is
    refused by the server itself.  :data:`CERT_USER` must also show a client
    certificate signed by the client authority (``clientcert=verify-full``).
    """
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="zentrack-pg-"))
    prefix, user = _unprivileged()
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    if tls is not None:
        for source, name in ((tls.server_cert, "server.crt"), (tls.server_key, "server.key"),
                             (tls.client_ca, "client-ca.crt")):
            shutil.copy(source, root / name)
            (root / name).chmod(0o600)
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in root.iterdir():
            os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, log = root / "data", root / "server.log"
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={password_file}",
         "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync", "--no-instructions"],
        check=True, capture_output=True, timeout=START_TIMEOUT,
    )
    port = _free_port()
    listen = "127.0.0.1,127.0.0.2" if tls is not None else "127.0.0.1"
    options = f"-c listen_addresses={listen} -p {port} -k {root} -c fsync=off"
    options += " -c synchronous_commit=off -c full_page_writes=off"
    if tls is not None:
        (data / "pg_hba.conf").write_text(
            "local all all scram-sha-256\n"
            f"hostssl all {CERT_USER} 127.0.0.0/8 scram-sha-256 clientcert=verify-full\n"
            "hostssl all all 127.0.0.0/8 scram-sha-256\n"
        )
        options += (f" -c ssl=on -c ssl_cert_file={root}/server.crt"
                    f" -c ssl_key_file={root}/server.key -c ssl_ca_file={root}/client-ca.crt")
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
         "-t", str(int(START_TIMEOUT)), "-o", options, "start"],
        check=True, capture_output=True, timeout=START_TIMEOUT + 10,
    )
    _wait_for_port(port, None, log)
    pid = int((data / "postmaster.pid").read_text().split()[0])
    server = Server("postgresql", "127.0.0.1", port, root, pid, time.monotonic() - began)
    if tls is not None:
        escaped = PASSWORD.replace("'", "''")
        postgres_sql(server, f"CREATE ROLE {CERT_USER} LOGIN CREATEDB PASSWORD '{escaped}'")
    return server


def postgres_sql(server: Server, statement: str) -> str:
    """Run one SQL statement as the superuser over the server's Unix socket; its output."""
    bindir = postgres_bindir()
    assert bindir is not None
    done = subprocess.run(
        [str(bindir / "psql"), "-h", str(server.root), "-p", str(server.port), "-U", USER,
         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
        env={**os.environ, "PGPASSWORD": PASSWORD},
        check=True, capture_output=True, text=True, timeout=START_TIMEOUT,
    )
    return done.stdout.strip()


def restart_postgres(server: Server) -> None:
    """Restart the server (``pg_ctl restart``): every open connection dies."""
    bindir = postgres_bindir()
    assert bindir is not None
    prefix, _ = _unprivileged()
    options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {server.root} -c fsync=off"
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(server.root / "data"), "-l",
         str(server.root / "server.log"), "-w", "-m", "fast", "-o", options, "restart"],
        check=True, capture_output=True, timeout=START_TIMEOUT + 10,
    )
    _wait_for_port(server.port, None, server.root / "server.log")


def stop_postgres(server: Server) -> None:
    bindir = postgres_bindir()
    prefix, _ = _unprivileged()
    if bindir is not None:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(server.root / "data"), "-m", "immediate",
             "stop"],
            capture_output=True, timeout=START_TIMEOUT,
        )
    shutil.rmtree(server.root, ignore_errors=True)


# -- TLS material ----------------------------------------------------------------------------

#: The PostgreSQL role that must also log in with a client certificate (its CN).
CERT_USER: Final = "zt_certuser"


@attrs.frozen
class Certificates:
    """Throwaway PEM files made with ``openssl``; keys unencrypted and 0600."""

    server_cert: Path  # self-signed, CN and subjectAltName 127.0.0.1 (and DNS localhost)
    server_key: Path
    other: Path  # an unrelated self-signed certificate (a wrong sslrootcert)
    client_ca: Path  # the authority the server trusts for client certificates
    client_cert: Path  # CN=CERT_USER, signed by client_ca
    client_key: Path


def make_certificates(folder: Path) -> Certificates:
    """Make the certificates of :class:`Certificates` in ``folder`` with ``openssl``."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    def self_signed(name: str, subject: str, *extra: str) -> None:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
                str(folder / f"{name}.key"), "-out", str(folder / f"{name}.crt"), "-subj",
                subject, *extra)

    self_signed("server", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    self_signed("other", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    self_signed("client-ca", "/CN=zentrack test client authority")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout",
            str(folder / "client.key"), "-out", str(folder / "client.csr"), "-subj",
            f"/CN={CERT_USER}")
    openssl("x509", "-req", "-in", str(folder / "client.csr"), "-CA",
            str(folder / "client-ca.crt"), "-CAkey", str(folder / "client-ca.key"),
            "-CAcreateserial", "-days", "2", "-out", str(folder / "client.crt"))
    for key in folder.glob("*.key"):
        key.chmod(0o600)
    return Certificates(
        folder / "server.crt", folder / "server.key", folder / "other.crt",
        folder / "client-ca.crt", folder / "client.crt", folder / "client.key",
    )


# -- MariaDB -------------------------------------------------------------------------------


def mariadb_programs() -> tuple[Path, Path] | None:
    """``(mariadbd, mariadb-install-db)``, or None when MariaDB is not installed."""
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/libexec")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if server and install:
        return Path(server), Path(install)
    return None


def _mariadb_start(
    server_bin: Path, root: Path, port: int, tls: Certificates | None = None
) -> subprocess.Popen[bytes]:
    user = ["--user=root"] if os.geteuid() == 0 else []
    log = root / "server.log"
    secure = [] if tls is None else [
        f"--ssl-cert={tls.server_cert}", f"--ssl-key={tls.server_key}",
        f"--ssl-ca={tls.server_cert}", "--require-secure-transport=ON",
    ]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [str(server_bin), "--no-defaults", *user, f"--datadir={root / 'data'}",
             "--bind-address=127.0.0.1", f"--port={port}", f"--socket={root / 'mysql.sock'}",
             f"--pid-file={root / 'mariadb.pid'}", f"--init-file={root / 'init.sql'}",
             "--skip-name-resolve", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
             "--innodb-buffer-pool-size=32M", f"--log-error={log}", *secure],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_mariadb(
    programs: tuple[Path, Path], *, tls: Certificates | None = None
) -> tuple[Server, subprocess.Popen[bytes]]:
    """mariadb-install-db a new data folder and start mariadbd on a free loopback port.

    With ``tls``, the server has the self-signed server certificate and
    ``require_secure_transport=ON``: it refuses a login that is not over TLS.
    """
    began = time.monotonic()
    server_bin, install = programs
    root = Path(tempfile.mkdtemp(prefix="zentrack-mariadb-"))
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [str(install), "--no-defaults", *user, f"--datadir={root / 'data'}",
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        check=True, capture_output=True, timeout=START_TIMEOUT,
    )
    # MLMD logs in with mysql_native_password, MariaDB's default for IDENTIFIED BY.
    escaped = PASSWORD.replace("\\", "\\\\").replace("'", "\\'")
    (root / "init.sql").write_text(
        f"CREATE USER IF NOT EXISTS '{USER}'@'127.0.0.1' IDENTIFIED BY '{escaped}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';\n"
    )
    port = _free_port()
    process = _mariadb_start(server_bin, root, port, tls)
    _wait_for_port(port, process, root / "server.log")
    log = root / "server.log"
    deadline = time.monotonic() + START_TIMEOUT
    while "ready for connections" not in _tail(log):  # the init file has run
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"MariaDB did not get ready: {_tail(log)}")
        time.sleep(0.05)
    server = Server("mysql", "127.0.0.1", port, root, process.pid, time.monotonic() - began)
    return server, process


def stop_mariadb(server: Server, process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    shutil.rmtree(server.root, ignore_errors=True)


# -- session-wide servers ------------------------------------------------------------------


@contextlib.contextmanager
def postgres() -> Iterator[Server | str]:
    """A PostgreSQL server for the session, or the reason there is none (not installed)."""
    bindir = postgres_bindir()
    if bindir is None:
        yield ("PostgreSQL server programs (initdb, pg_ctl) are not installed; "
               "apt-get install postgresql")
        return
    server = start_postgres(bindir)
    try:
        yield server
    finally:
        stop_postgres(server)


@contextlib.contextmanager
def mariadb() -> Iterator[Server | str]:
    """A MariaDB server for the session, or the reason there is none (not installed)."""
    programs = mariadb_programs()
    if programs is None:
        yield ("MariaDB server programs (mariadbd, mariadb-install-db) are not installed; "
               "apt-get install mariadb-server")
        return
    server, process = start_mariadb(programs)
    try:
        yield server
    finally:
        stop_mariadb(server, process)


# -- fixtures (imported by tests/conftest.py) ----------------------------------------------

#: Backend -> the session fixture of its server.
SERVER_FIXTURES: Final = {"postgresql": "postgres_server", "mysql": "mariadb_server"}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A PostgreSQL 15 server for the whole session (skips only if not installed)."""
    with postgres() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[Server]:
    """A MariaDB server for the whole session (skips only if not installed)."""
    with mariadb() as server:
        if isinstance(server, str):
            pytest.skip(server)
        yield server


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Self-signed server and client certificates for the session (skips without openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="session")
def tls_postgres_server(certificates: Certificates) -> Iterator[Server]:
    """A PostgreSQL server with ``ssl=on`` that takes TCP logins over TLS only (``hostssl``)."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server programs (initdb, pg_ctl) are not installed")
    server = start_postgres(bindir, tls=certificates)
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture(scope="session")
def tls_mariadb_server(certificates: Certificates) -> Iterator[Server]:
    """A MariaDB server with a certificate that refuses logins not over TLS."""
    programs = mariadb_programs()
    if programs is None:
        pytest.skip("MariaDB server programs (mariadbd, mariadb-install-db) are not installed")
    server, process = start_mariadb(programs, tls=certificates)
    try:
        yield server
    finally:
        stop_mariadb(server, process)


@pytest.fixture(params=sorted(SERVER_FIXTURES))
def server(request: pytest.FixtureRequest) -> Server:
    """Each server backend in turn."""
    found: Server = request.getfixturevalue(SERVER_FIXTURES[request.param])
    return found


@pytest.fixture
def server_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of the test's own: server stores keep their journals in ~/.cache/zentrack."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def server_url(server: Server, store_path: Path, server_home: Path) -> str:
    """A new, empty database on each server backend, made the active zentrack store."""
    import zentrack as zt

    url = server.url(server.new_database())
    zt.init(url)
    return url


# -- plain MLMD, no zentrack -----------------------------------------------------------------


def plain_store(server: Server, database: str, *, host: str = "") -> Any:
    """Open ``database`` with plain ``ml_metadata``, as docs/mlmd.md shows (no zentrack code).

    ``host`` replaces the server's address (a folder: its Unix socket, for PostgreSQL).
    """
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    if server.kind == "postgresql":
        config.postgresql.host = host or server.host
        config.postgresql.port = str(server.port)
        config.postgresql.user = USER
        # MLMD pastes the password into a libpq connection string: quote it.
        config.postgresql.password = "'" + PASSWORD.replace("\\", "\\\\").replace("'", "\\'") + "'"
        config.postgresql.dbname = database
        config.postgresql.skip_db_creation = True
    else:
        config.mysql.host = host or server.host
        config.mysql.port = server.port
        config.mysql.user = USER
        config.mysql.password = PASSWORD
        config.mysql.database = database
    return metadata_store.MetadataStore(config)


def plain_value(props: Any, key: str) -> Any:
    """A custom property's value as zentrack wrote it, read the way docs/mlmd.md shows."""
    from google.protobuf import wrappers_pb2

    def one(value: Any) -> Any:
        kind = value.WhichOneof("value")
        if kind == "proto_value":
            for wrapper in (
                wrappers_pb2.StringValue, wrappers_pb2.Int64Value, wrappers_pb2.DoubleValue
            ):
                if value.proto_value.Is(wrapper.DESCRIPTOR):
                    unpacked = wrapper()
                    value.proto_value.Unpack(unpacked)
                    return unpacked.value
        return getattr(value, kind)

    if f"{key}#parts" in props:
        count = props[f"{key}#parts"].int_value
        keys = [key] + [f"{key}#{i}" for i in range(2, count + 1)]
        return "".join(one(props[k]) for k in keys)
    return one(props[key])
