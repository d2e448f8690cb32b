"""Server stores over TLS: PostgreSQL through zentrack's relay, MySQL through MLMD's client.

MLMD's bundled libpq cannot encrypt, so for PostgreSQL a relay child
process carries the TLS (``zentrack/_store/pg_tls*.py``).  The servers here
take logins over TLS only (PostgreSQL ``hostssl``, MariaDB
``require_secure_transport``), so every connection that works proves it was
encrypted.  The issue's own cases (require / verify-ca / verify-full
connect, a plain server and a wrong authority are refused) are in
tests/test_security.py; these cover child processes, the certificate checks,
client certificates, the URL options, the relay's own safety, and what
MLMD's MySQL client does with the ``ssl_*`` options.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import zentrack as zt
from tests.conftest import ROOT, SUBPROCESS_TIMEOUT
from tests.server_workers import tick
from tests.servers import CERT_USER, PASSWORD, USER, Server
from zentrack._record import tracker as _tracker
from zentrack._store import pg_tls
from zentrack._store.pg_tls_relay import AuthenticationFilter
from zentrack.exceptions import StoreError


def tls_url(server: Server, database: str, *, host: str = "", user: str = USER,
            **options: str | Path) -> str:
    """The store URL of ``database`` on ``server`` with TLS ``options`` (values encoded)."""
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in options.items())
    where = f"{host or server.host}:{server.port}"
    return f"postgresql://{user}:{quote(PASSWORD, safe='')}@{where}/{database}?{query}"


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A Python subprocess at the repository root, with a timeout."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT,
        env={**os.environ, "GLOG_minloglevel": "2", **(env or {})},
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )


def failure(url: str) -> str:
    """The StoreError message of reading the store at ``url`` ('' if it works)."""
    zt.init(url)
    try:
        zt.find(step="tick")
    except StoreError as exc:
        return str(exc)
    return ""


class TestThroughChildProcesses:
    def test_zentrack_flush_writes_records_over_tls(self, tls_postgres_server, server_home):
        """Records a killed process left are written by `zentrack flush` in another process,
        which reads the store from $ZENTRACK_STORE and the password from its own variable."""
        url = tls_url(tls_postgres_server, tls_postgres_server.new_database(), sslmode="require")
        writer = run(["-m", "tests.server_workers", "killed_writer", url, "25"])
        public = url.replace(f":{quote(PASSWORD, safe='')}@", "@")
        flushed = run(["-m", "zentrack", "flush"],
                      env={"ZENTRACK_STORE": public, "ZENTRACK_STORE_PASSWORD": PASSWORD})
        zt.init(url)
        expected = (0, "flushed 25 records", list(range(25)))
        actual = (
            writer.returncode,
            flushed.stdout.strip().splitlines()[-1] if flushed.stdout.strip() else flushed.stderr,
            sorted(r.params["i"] for r in zt.find(step="tick")),
        )
        assert expected == actual, flushed.stderr

    def test_background_drainer_writes_over_tls(self, tls_postgres_server, server_home):
        """The background drainer process (it gets the URL through a pipe) starts a relay
        of its own and empties the journal into the TLS-only server."""
        zt.init(tls_url(tls_postgres_server, tls_postgres_server.new_database(),
                        sslmode="require"))
        tracker = _tracker.active()
        tracker.batch_size = 5
        for i in range(12):
            tick(i=i)
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while tracker.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        expected = (0, list(range(12)))
        actual = (tracker.pending(), sorted(r.params["i"] for r in zt.find(step="tick")))
        assert expected == actual

    def test_a_killed_relay_is_replaced(self, tls_postgres_server, server_home):
        """The relay killed between two flushes: the next flush reconnects through a new one."""
        url = tls_url(tls_postgres_server, tls_postgres_server.new_database(), sslmode="require")
        zt.init(url)
        tick(i=1)
        zt.flush()
        relay = pg_tls.relay_for(_tracker.active().location)
        assert relay is not None
        relay.process.kill()
        relay.process.wait()
        tick(i=2)
        expected = (1, [1, 2], True)
        actual = (
            zt.flush(),
            sorted(r.params["i"] for r in zt.find(step="tick")),
            pg_tls.relay_for(_tracker.active().location) is not relay,
        )
        assert expected == actual


class TestCertificateChecks:
    def test_verify_full_checks_the_host_name(self, tls_postgres_server, certificates,
                                              server_home):
        """Reached as 127.0.0.2 (the certificate names 127.0.0.1): verify-full refuses,
        naming the host; verify-ca, which checks the chain only, connects."""
        server = tls_postgres_server
        root = certificates.server_cert
        full = failure(tls_url(server, server.new_database(), host="127.0.0.2",
                               sslmode="verify-full", sslrootcert=root))
        chain = failure(tls_url(server, server.new_database(), host="127.0.0.2",
                                sslmode="verify-ca", sslrootcert=root))
        expected = (True, "")
        assert expected == ("is not made out to '127.0.0.2'" in full, chain), full

    def test_a_root_certificate_in_home_makes_require_check_the_chain(
        self, tls_postgres_server, certificates, server_home
    ):
        """As in libpq, ~/.postgresql/root.crt turns sslmode=require into verify-ca: with
        another authority's certificate there, the server is not trusted."""
        (server_home / ".postgresql").mkdir()
        (server_home / ".postgresql" / "root.crt").write_bytes(certificates.other.read_bytes())
        url = tls_url(tls_postgres_server, tls_postgres_server.new_database(), sslmode="require")
        assert "not signed by an authority zentrack trusts" in failure(url)

    def test_a_client_certificate_is_shown_when_given(
        self, tls_postgres_server, certificates, server_home
    ):
        """A role the server asks a client certificate of (clientcert=verify-full) logs in
        with sslcert and sslkey, and is refused without them, with the server's reason."""
        server = tls_postgres_server
        with_cert = failure(tls_url(server, server.new_database(), user=CERT_USER,
                                    sslmode="require", sslcert=certificates.client_cert,
                                    sslkey=certificates.client_key))
        without = failure(tls_url(server, server.new_database(), user=CERT_USER,
                                  sslmode="require"))
        expected = ("", True)
        assert expected == (with_cert, "certificate" in without), without

    def test_an_encrypted_client_key_is_refused_not_prompted_for(
        self, certificates, server_home, tmp_path
    ):
        """A key with a passphrase: a clear error (OpenSSL would ask on the terminal)."""
        key = tmp_path / "encrypted.key"
        subprocess.run(
            ["openssl", "pkey", "-in", str(certificates.client_key), "-out", str(key),
             "-aes256", "-passout", "pass:secret"],
            check=True, capture_output=True, timeout=60,
        )
        key.chmod(0o600)
        url = (f"postgresql://{USER}:pw@127.0.0.1:1/db?sslmode=require"
               f"&sslcert={quote(str(certificates.client_cert), safe='')}"
               f"&sslkey={quote(str(key), safe='')}")
        assert "the client key is encrypted with a passphrase" in failure(url)


class TestOptions:
    @pytest.mark.parametrize(
        ("query", "said"),
        [
            ("sslmode=require&sslrootcert=/nonexistent/root.crt", "does not exist"),
            ("sslmode=verify-ca", "names no sslrootcert"),
            ("sslmode=require&sslrootcert=system", "use sslmode=verify-full"),
            ("sslrootcert=CERT", "does not ask for one; add sslmode=verify-full"),
            ("sslmode=prefer&sslcert=CERT", "does not ask for one"),
            ("sslmode=require&sslkey=KEY", "names no certificate; add sslcert"),
            ("sslmode=required", "is not a libpq sslmode"),
        ],
    )
    def test_a_certificate_option_that_cannot_work_is_refused_at_init(
        self, certificates, server_home, query, said
    ):
        """Each mistake is a StoreError at init, naming what to fix (never a plaintext login)."""
        query = query.replace("CERT", str(certificates.client_cert)).replace(
            "KEY", str(certificates.client_key))
        with pytest.raises(StoreError, match=said):
            zt.init(f"postgresql://{USER}:pw@127.0.0.1:5432/db?{query}")

    def test_a_client_key_others_can_read_is_refused(self, certificates, server_home, tmp_path):
        """As libpq does: a private key with group or other access is refused, with the fix."""
        key = tmp_path / "client.key"
        key.write_bytes(certificates.client_key.read_bytes())
        key.chmod(0o644)
        url = (f"postgresql://{USER}:pw@127.0.0.1:5432/db?sslmode=require"
               f"&sslcert={quote(str(certificates.client_cert), safe='')}"
               f"&sslkey={quote(str(key), safe='')}")
        with pytest.raises(StoreError, match=r"can be read by others.*chmod 600"):
            zt.init(url)

    def test_relative_certificate_paths_are_kept_absolute(self, certificates, server_home,
                                                         monkeypatch):
        """A relative sslrootcert names the same file for a child started elsewhere."""
        monkeypatch.chdir(certificates.server_cert.parent)
        tracker = zt.init(f"postgresql://{USER}:pw@127.0.0.1:5432/db?sslmode=verify-ca"
                          f"&sslrootcert={certificates.server_cert.name}")
        options = dict(tracker.location.options)
        assert options["sslrootcert"] == str(certificates.server_cert)


# -- the relay itself ----------------------------------------------------------------------


class TestRelay:
    def test_mlmd_takes_a_host_starting_with_a_slash_for_a_socket_folder(self, postgres_server):
        """What the relay relies on: MLMD passes host=/folder to libpq, which then connects
        to /folder/.s.PGSQL.PORT (the test server's socket), not to a host by that name."""
        from tests.servers import plain_store

        store = plain_store(postgres_server, "postgres", host=str(postgres_server.root))
        assert store.get_context_types() == []

    def test_the_socket_is_in_a_folder_only_the_user_can_enter(self, tls_postgres_server,
                                                                server_home):
        """Other local users cannot reach the relay: its folder is 0700 and the user's."""
        zt.init(tls_url(tls_postgres_server, tls_postgres_server.new_database(),
                        sslmode="require"))
        zt.find(step="tick")
        relay = pg_tls.relay_for(_tracker.active().location)
        assert relay is not None
        info = relay.directory.stat()
        expected = (0o700, os.getuid(), [f".s.PGSQL.{relay.port}"])
        actual = (info.st_mode & 0o777, info.st_uid, os.listdir(relay.directory))
        assert expected == actual

    def test_the_relay_holds_no_secret_and_leaves_with_its_parent(self, tls_postgres_server,
                                                                   server_home):
        """The relay's command line and environment hold no password; when its parent is
        killed (SIGKILL: no cleanup runs there), it exits and removes its folder."""
        parent = subprocess.Popen(
            [sys.executable, "-c", _PARENT],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "GLOG_minloglevel": "2", "ZENTRACK_STORE_PASSWORD": PASSWORD},
        )
        try:
            url = tls_url(tls_postgres_server, tls_postgres_server.new_database(),
                          sslmode="require").replace(f":{quote(PASSWORD, safe='')}@", "@")
            assert parent.stdin is not None and parent.stdout is not None
            parent.stdin.write(url + "\n")
            parent.stdin.flush()
            relay: dict[str, Any] = json.loads(parent.stdout.readline())
            seen = b"".join(Path(f"/proc/{relay['pid']}/{part}").read_bytes()
                            for part in ("cmdline", "environ"))
        finally:
            parent.kill()
            parent.wait()
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while _running(relay["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        expected = (False, False, False)
        actual = (PASSWORD.encode() in seen, _running(relay["pid"]),
                  Path(relay["directory"]).exists())
        assert expected == actual


#: A process that opens a TLS store, reports its relay, then waits to be killed.
_PARENT = """
import json, sys, time
import zentrack as zt
from zentrack._store import pg_tls
tracker = zt.init(sys.stdin.readline().strip())
zt.find(step="tick")
relay = pg_tls.relay_for(tracker.location)
print(json.dumps({"pid": relay.process.pid, "directory": str(relay.directory)}), flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Tell whether ``pid`` runs (a zombie, dead but not yet reaped by init, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class TestAuthenticationFilter:
    @staticmethod
    def message(kind: bytes, body: bytes) -> bytes:
        return kind + struct.pack("!i", len(body) + 4) + body

    def test_the_channel_bound_mechanism_is_taken_off_the_offer(self):
        """The server's SASL offer, cut into 3-byte pieces and after another message
        (NegotiateProtocolVersion), reaches MLMD without SCRAM-SHA-256-PLUS; after
        AuthenticationOk every byte passes unchanged."""
        negotiate = self.message(b"v", struct.pack("!ii", 0, 0))
        offer = self.message(b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")
        ok = self.message(b"R", struct.pack("!i", 0))
        later = self.message(b"S", b"server_version\x0015.5\0") + b"Zpartial"
        stream = negotiate + offer + ok + later
        login = AuthenticationFilter()
        passed = b"".join(login.feed(stream[i : i + 3]) for i in range(0, len(stream), 3))
        plain = self.message(b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256\0\0")
        expected = negotiate + plain + ok + later
        assert expected == passed

    def test_an_error_ends_the_login_phase(self):
        """A server error during the login passes whole, and so does what follows."""
        error = self.message(b"E", b"SFATAL\0Mno\0\0")
        login = AuthenticationFilter()
        expected = (error + b"xyz", True)
        assert expected == (login.feed(error + b"xyz"), login.done)



# -- MySQL: MLMD's own client --------------------------------------------------------------


def mysql_url(server: Server, **options: str | Path) -> str:
    """A new database's URL on ``server`` with ``options`` (values encoded), if any."""
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in options.items())
    url = server.url(server.new_database())
    return f"{url}?{query}" if query else url


class TestMySQL:
    def test_ssl_ca_connects_to_a_server_that_takes_tls_only(self, tls_mariadb_server,
                                                             certificates, server_home):
        """With ssl_ca, MLMD's MySQL client logs in over TLS and tracks; without an ssl_*
        option the same server refuses it (require_secure_transport): the login was TLS."""
        zt.init(mysql_url(tls_mariadb_server, ssl_ca=certificates.server_cert))
        tick(i=3)
        tracked = (zt.flush(), [r.params["i"] for r in zt.find(step="tick")])
        plaintext = failure(mysql_url(tls_mariadb_server))
        expected = ((1, [3]), True)
        assert expected == (tracked, "refused the login" in plaintext), plaintext

    def test_ssl_ca_alone_does_not_check_the_certificate(self, tls_mariadb_server,
                                                        certificates, server_home):
        """A limit of ml-metadata 1.17.1's MySQL client, pinned so that a fix shows: ssl_ca
        naming another authority still connects (the chain is not checked), as
        docs/security.md says."""
        expected = ""
        assert expected == failure(mysql_url(tls_mariadb_server, ssl_ca=certificates.other))

    def test_ssl_verify_server_cert_fails_and_says_why(self, tls_mariadb_server, certificates,
                                                      server_home):
        """ssl_verify_server_cert=true with the right authority: MLMD's client still fails
        (it fails every certificate tried); the error says so instead of blaming the login."""
        message = failure(mysql_url(tls_mariadb_server, ssl_ca=certificates.server_cert,
                                    ssl_verify_server_cert="true"))
        expected = (True, False)
        actual = ("fails that check for every certificate tried" in message,
                  "check the user, the password" in message)
        assert expected == actual, message
