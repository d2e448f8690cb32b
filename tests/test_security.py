"""Trust boundaries (issue 12, docs/security.md): each test replays one attack.

The attacker is whoever else can write what zentrack reads: a teammate with
write access to a shared PostgreSQL/MySQL store, anyone who can write the
project's ``.zentrack`` folder (journals, cached outputs, configs), the author
of a config file, another local user reading ``ps`` and ``/proc``, and a disk
that fills up.  Every test performs the attack through real files, real MLMD
rows, real subprocesses and the public API or CLI, then asserts the safe
outcome.  The holes are numbered as in the issue.

The on-disk names used here are part of zentrack's documented layout (store
``S`` keeps ``S.journal/``, ``S.lock`` and ``artifacts/`` beside it; MLMD
names in docs/mlmd.md).  The few private modules reached into are imported by
:func:`private`, so their paths live in one place.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import inspect
import json
import linecache
import logging
import mmap
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

import zentrack as zt
from tests.cache_steps import UNPICKLED, Point, Trap, make_point, prep
from tests.conftest import ROOT, SUBPROCESS_TIMEOUT
from tests.pipelines_for_tests import training
from tests.servers import (
    PASSWORD,
    USER,
    Server,
    postgres_sql,
)
from tests.small_disks import fill_disk, small_tmpfs
from tests.steps_for_tests import train
from zentrack.exceptions import ParameterTypeError, StoreError, ZentrackError

#: The private modules these tests reach into, by role (they move in the restructure).
PRIVATE = {"journal": ("zentrack._record.journal",)}


def private(role: str) -> ModuleType:
    """Import the private module playing ``role``: the first of its paths in this checkout.

    Looked up as files beside the imported ``zentrack`` package, since an editable
    install elsewhere can answer for a submodule this checkout does not have.
    """
    package = Path(zt.__file__).parent
    for name in PRIVATE[role]:
        relative = Path(*name.split(".")[1:])
        if (package / relative).with_suffix(".py").is_file():
            return importlib.import_module(name)
    raise ModuleNotFoundError(f"none of {PRIVATE[role]} is in {package}")


# -- shared helpers ------------------------------------------------------------------------


def journal_dir(store: Path) -> Path:
    """The journal folder beside SQLite store ``store`` (documented layout)."""
    return store.with_name(store.name + ".journal")


def cli(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> Any:
    """Run the ``zentrack`` command as its console script does: no folder put on sys.path.

    ``python -P`` keeps Python from putting ``cwd`` first on ``sys.path`` (as the
    installed ``zentrack`` script does not), so what the CLI itself does with the
    current folder is what is tested.  This repository is on ``PYTHONPATH``.
    """
    full = {**os.environ, "GLOG_minloglevel": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    full.pop("ZENTRACK_STORE", None)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full.get("PYTHONPATH")) if p)
    return subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            "import sys; from zentrack.cli import main; sys.exit(main())",
            *map(str, args),
        ],
        cwd=cwd,
        env={**full, **(env or {})},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def open_plain_rw(store: Path) -> Any:
    """Open a SQLite store read-write with plain ``ml_metadata``: a teammate's own tool."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(store)
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE
    return metadata_store.MetadataStore(config)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evil_module(folder: Path, name: str) -> Path:
    """Write module ``name`` into ``folder``: importing it creates ``<folder>/<name>.imported``."""
    marker = folder / f"{name}.imported"
    (folder / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef step(): pass\ndef pipeline(): pass\n"
    )
    return marker


def zentrack_messages(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.name == "zentrack"]


# == 1. A run record deletes files ==========================================================


def plant_running_run(store: Path, alive: str) -> str:
    """Record a finished run, then rewrite its MLMD row as a teammate could: RUNNING, ``alive``.

    Returns the run id.  Only the documented run context layout is used
    (``zentrack.PipelineRun``, properties ``zentrack.state`` and ``zentrack.record``).
    """
    run = training()
    zt.flush()
    mlmd = open_plain_rw(store)
    (context,) = [c for c in mlmd.get_contexts_by_type("zentrack.PipelineRun") if c.name == run.id]
    props = context.custom_properties
    record = json.loads(props["zentrack.record"].string_value)
    record.update(st="RUNNING", host=os.uname().nodename, pid=999_999, alive=alive)
    props["zentrack.state"].string_value = "RUNNING"
    props["zentrack.record"].string_value = json.dumps(record, separators=(",", ":"))
    mlmd.put_contexts([context])
    return run.id


def alive_names(tmp_path: Path, store: Path) -> dict[str, tuple[str, Path]]:
    """``case -> (the 'alive' value planted, the file it points at)``."""
    victim = tmp_path / "victim.txt"
    return {
        "absolute": (str(victim), victim),
        "escaping": (os.path.relpath(victim, journal_dir(store)), victim),
        "the store itself": ("../" + store.name, store),
    }


class TestHole1RunRecordsChooseNoPath:
    @pytest.mark.parametrize("case", ["absolute", "escaping", "the store itself"])
    def test_a_store_row_cannot_make_a_read_command_delete_a_file(self, store_path, tmp_path, case):
        """A teammate's RUNNING row naming any path as 'alive': `zentrack runs` deletes nothing."""
        alive, victim = alive_names(tmp_path, store_path)[case]
        (tmp_path / "victim.txt").write_text("precious")
        plant_running_run(store_path, alive)
        done = cli("--store", store_path, "runs")
        expected = (0, True)
        assert expected == (done.returncode, victim.exists()), done.stderr

    @pytest.mark.parametrize("case", ["absolute", "escaping", "the store itself"])
    def test_a_line_dropped_into_the_journal_folder_cannot_delete_a_file(
        self, store_path, tmp_path, case
    ):
        """A run line planted in the journal folder: `zentrack runs` deletes nothing."""
        alive, victim = alive_names(tmp_path, store_path)[case]
        (tmp_path / "victim.txt").write_text("precious")
        train(b"data")  # the store and its journal folder exist
        zt.flush()
        line = {
            "v": 1,
            "kind": "run",
            "id": "20260101-000000-planted",
            "pipeline": "training",
            "src": "tests.pipelines_for_tests.training",
            "st": "RUNNING",
            "pid": 999_999,
            "host": os.uname().nodename,
            "alive": alive,
        }
        planted = journal_dir(store_path) / "attacker-1-deadbeef.jsonl"
        planted.write_text(json.dumps(line, separators=(",", ":")) + "\n")
        done = cli("--store", store_path, "runs")
        expected = (0, True)
        assert expected == (done.returncode, victim.exists()), done.stderr


# == 2. The pickle cache trusts its own folder ==============================================


def output_folder(step: Any, **kwargs: Any) -> Path:
    """Where the cached output of ``step(**kwargs)`` lives, from its MLMD record."""
    records = zt.lookup(zt.fingerprint(step, **kwargs))
    return Path(next(r.output_uri for r in records if r.output_uri))


def rewrite_meta(folder: Path, **changes: Any) -> None:
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(changes)
    meta_path.write_text(json.dumps(meta))


def trap_file(path: Path) -> dict[str, Any]:
    """Write a pickle that calls ``mark_unpickled`` when loaded; return meta for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Trap()))
    return {"sha256": sha256_of(path), "size": path.stat().st_size}


def swap_pickle_and_digest(folder: Path, tmp_path: Path) -> None:
    """Replace the pickle and write its sha256 into meta.json (the digest beside the data)."""
    rewrite_meta(folder, **trap_file(folder / "output.pkl"))


def absolute_file(folder: Path, tmp_path: Path) -> None:
    """meta.json names a pickle anywhere on disk by absolute path."""
    evil = tmp_path / "elsewhere" / "evil.pkl"
    rewrite_meta(folder, file=str(evil), **trap_file(evil))


def escaping_file(folder: Path, tmp_path: Path) -> None:
    """meta.json names a pickle outside the entry with '..'."""
    evil = tmp_path / "elsewhere" / "evil.pkl"
    rewrite_meta(folder, file=os.path.relpath(evil, folder), **trap_file(evil))


def symlinked_shard(folder: Path, tmp_path: Path) -> None:
    """The shard folder ``artifacts/<fp[:2]>`` becomes a symlink to an attacker's copy."""
    fake_shard = tmp_path / "attacker" / folder.parent.name
    fake = fake_shard / folder.name
    shutil.copytree(folder, fake)
    rewrite_meta(fake, **trap_file(fake / "output.pkl"))
    shutil.rmtree(folder.parent)
    folder.parent.symlink_to(fake_shard, target_is_directory=True)


TAMPERINGS = {
    "pickle and digest swapped": swap_pickle_and_digest,
    "absolute file name": absolute_file,
    "escaping file name": escaping_file,
    "symlinked shard folder": symlinked_shard,
}


class TestHole2CachedOutputsAreCheckedAgainstMLMD:
    @pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
    def test_a_folder_writer_cannot_make_the_next_cache_hit_run_code(
        self, store_path, tmp_path, tampering
    ):
        """Whatever a writer of artifacts/ plants, the next user's hit never loads it."""
        make_point(x=1.0, y=2.0)
        zt.flush()
        TAMPERINGS[tampering](output_folder(make_point, x=1.0, y=2.0), tmp_path)
        zt.init(store_path)  # the next user: a fresh tracker, nothing verified in memory
        result = make_point(x=1.0, y=2.0)
        expected = (Point(1.0, 2.0), [])
        assert expected == (result, UNPICKLED)

    def test_meta_json_cannot_switch_a_json_output_to_pickle(self, store_path):
        """A JSON output's meta.json rewritten to name a pickle: the pickle is never loaded."""
        prep(n=2)
        zt.flush()
        folder = output_folder(prep, n=2)
        rewrite_meta(
            folder, materializer="pickle", file="output.pkl", **trap_file(folder / "output.pkl")
        )
        zt.init(store_path)
        expected = ([0.0, 1.0], [])
        assert expected == (prep(n=2), UNPICKLED)


# == 3. Symlinks are followed ===============================================================


class TestHole3SymlinksAreNotFollowed:
    def test_cache_clear_does_not_delete_through_a_symlinked_shard(self, store_path, tmp_path):
        """`ln -s ~/thesis artifacts/zz`, then `zentrack cache clear`: the thesis survives."""
        thesis = tmp_path / "home" / "thesis"
        (thesis / "draft").mkdir(parents=True)
        (thesis / "draft" / "meta.json").write_text("{}")
        (thesis / "draft" / "chapter1.tex").write_text("precious")
        prep(n=2)
        zt.flush()
        ours = output_folder(prep, n=2)
        (store_path.parent / "artifacts" / "zz").symlink_to(thesis, target_is_directory=True)
        done = cli("--store", store_path, "cache", "clear")
        expected = (0, True, False)
        actual = (done.returncode, (thesis / "draft" / "chapter1.tex").exists(), ours.exists())
        assert expected == actual, done.stderr

    def test_cache_clear_removes_only_entries_it_recognises(self, store_path):
        """A folder of the user's own that holds a meta.json is not a cache entry."""
        prep(n=2)
        zt.flush()
        mine = store_path.parent / "artifacts" / "my" / "notes"
        mine.mkdir(parents=True)
        (mine / "meta.json").write_text('{"step": "prep"}')
        (mine / "notes.txt").write_text("precious")
        done = cli("--store", store_path, "cache", "clear")
        expected = (0, True)
        assert expected == (done.returncode, (mine / "notes.txt").exists()), done.stderr

    def test_the_writer_lock_is_not_opened_through_a_symlink(self, store_path, tmp_path):
        """`S.lock` made a symlink to a file: a flush neither truncates nor writes it."""
        victim = tmp_path / "victim.txt"
        victim.write_text("precious")
        lock = store_path.with_name(store_path.name + ".lock")
        lock.unlink(missing_ok=True)
        lock.symlink_to(victim)
        train(b"data")
        with contextlib.suppress(StoreError):  # refusing the link is fine; following it is not
            zt.flush()
        expected = "precious"
        assert expected == victim.read_text()

    def test_an_offset_temp_file_is_not_written_through_a_symlink(self, store_path, tmp_path):
        """A symlink planted at the predictable offset temp name: the flush writes past it."""
        victim = tmp_path / "victim.txt"
        victim.write_text("precious")
        train(b"data")
        (journal,) = journal_dir(store_path).glob("*.jsonl")
        planted = journal.with_name(f"{journal.name}.offset.{os.getpid()}.tmp")
        planted.symlink_to(victim)
        written = zt.flush()
        expected = ("precious", 1)
        assert expected == (victim.read_text(), written)

    def test_the_inflight_marker_is_not_created_through_a_symlink(self, store_path, tmp_path):
        """`.inflight` made a dangling symlink: the flush creates no file where it points."""
        target = tmp_path / "planted" / "created-by-zentrack"
        target.parent.mkdir()
        train(b"data")
        (journal_dir(store_path) / ".inflight").symlink_to(target)
        written = zt.flush()
        expected = (False, 1)
        assert expected == (target.exists(), written)


# == 4. The store password is visible to every local user ===================================


def secrets_of(password: str) -> tuple[str, ...]:
    """The password as it may appear: raw and URL-quoted."""
    return (password, quote(password, safe=""))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def visible_to_local_users(pid: int) -> str:
    """What ``ps -eo args`` and a same-user ``/proc/PID/environ`` reader see of ``pid``."""
    with contextlib.suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        environ = Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n")
        return (cmdline + b"\n" + environ).decode(errors="replace")
    return ""


class TestHole4SecretsStayOutOfArgvEnvAndReprs:
    def test_repr_of_the_tracker_and_its_location_hides_the_password(self, server, server_home):
        """repr()/str() of what zt.init returns never shows the password."""
        tracker = zt.init(server.url(server.new_database()))
        shown = " ".join([repr(tracker), repr(tracker.location), str(tracker.location)])
        expected: list[str] = []
        assert expected == [s for s in secrets_of(PASSWORD) if s in shown]

    def test_children_of_the_users_code_do_not_inherit_the_password(self, server, server_home):
        """After init, a child process's environment holds no password, yet finds the store."""
        zt.init(server.url(server.new_database()))
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import os, sys, zentrack as zt\n"
                "from tests.steps_for_tests import train\n"
                "print(repr(dict(os.environ)))\n"
                "train(b'data', lr=0.5)\n"
                "print('flushed', zt.flush())\n",
            ],
            cwd=ROOT,
            env={**os.environ, "GLOG_minloglevel": "2"},
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        leaked = [s for s in secrets_of(PASSWORD) if s in child.stdout]
        stored = [r.params["lr"] for r in zt.find(step="train")]
        expected = ([], 0, [0.5])
        assert expected == (leaked, child.returncode, stored), child.stderr

    def test_the_background_drainer_gets_no_password_in_argv_or_environment(
        self, server, server_home
    ):
        """1000 calls start a drainer child: neither `ps` nor its environ shows the password."""
        zt.init(server.url(server.new_database()))
        for i in range(1000):  # the batch size: a background drainer starts
            train(b"data", lr=i / 1000)
        seen = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "zentrack" not in seen:
            seen = "\n".join(visible_to_local_users(pid) for pid in children_of(os.getpid()))
        leaked = [s for s in secrets_of(PASSWORD) if s in seen]
        zt.flush()
        expected = (True, [], 1000)
        assert expected == ("zentrack" in seen, leaked, len(zt.find(step="train")))

    @pytest.mark.parametrize("how", ["environment variable", "password file"])
    def test_the_password_can_come_from_outside_the_url(
        self, server, server_home, tmp_path, monkeypatch, how
    ):
        """A URL without a password, the password in $ZENTRACK_STORE_PASSWORD or a 0600 file."""
        if how == "environment variable":
            monkeypatch.setenv("ZENTRACK_STORE_PASSWORD", PASSWORD)
        else:
            secret = tmp_path / "store-password"
            secret.write_text(PASSWORD + "\n")
            secret.chmod(0o600)
            monkeypatch.setenv("ZENTRACK_STORE_PASSWORD_FILE", str(secret))
        database = server.new_database()
        zt.init(f"{server.kind}://{USER}@{server.host}:{server.port}/{database}")
        train(b"data", lr=0.25)
        expected = (1, [0.25])
        assert expected == (zt.flush(), [r.params["lr"] for r in zt.find(step="train")])


# == 5. TLS options are dropped ================================================================


def tls_url(server: Server, database: str, **options: str | Path) -> str:
    """``server``'s URL of ``database`` with the given options (paths percent-encoded)."""
    query = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in options.items())
    return f"{server.url(database)}?{query}"


def database_exists(server: Server, database: str) -> bool:
    """Ask the server itself (psql over its Unix socket) whether ``database`` exists."""
    found = postgres_sql(server, f"SELECT count(*) FROM pg_database WHERE datname = '{database}'")
    return found == "1"


class TestHole5TLSOptionsAreHonoured:
    @pytest.mark.parametrize(
        "url",
        [
            "postgresql://u:pw@127.0.0.1:5432/db?sslmod=require",
            "postgresql://u:pw@127.0.0.1:5432/db?application_name=x",
            "mysql://u:pw@127.0.0.1:3306/db?ssl_mode_typo=REQUIRED",
        ],
        ids=["misspelt sslmode", "unsupported option", "unknown mysql option"],
    )
    def test_an_option_zentrack_does_not_understand_is_refused(self, url):
        """A query option that would be silently ignored is an error naming it."""
        option = url.rpartition("?")[2].partition("=")[0]
        with pytest.raises(StoreError, match=re.escape(option)):
            zt.init(url)

    def test_sslmode_require_refuses_a_server_without_tls(self, postgres_server, server_home):
        """`?sslmode=require` against a server without SSL: a clear error, and nothing reaches
        the server (MLMD would have created the database on its first connection)."""
        database = postgres_server.new_database()
        zt.init(tls_url(postgres_server, database, sslmode="require"))
        with pytest.raises(StoreError) as raised:
            train(b"data")
            zt.flush()
        message = str(raised.value)
        expected = (True, True, False, [])
        actual = (
            "does not offer TLS" in message,
            "refuses to connect in plaintext" in message,
            database_exists(postgres_server, database),
            [s for s in secrets_of(PASSWORD) if s in message],
        )
        assert expected == actual, message

    def test_a_mysql_ca_refuses_a_server_without_tls(
        self, mariadb_server, server_home, certificates
    ):
        """`?ssl_ca=...` against MariaDB without SSL: no plaintext connection."""
        url = (
            mariadb_server.url(mariadb_server.new_database())
            + f"?ssl_ca={quote(str(certificates.server_cert), safe='')}"
        )
        with pytest.raises(StoreError, match=r"(?i)ssl|tls"):
            zt.init(url)
            train(b"data")
            zt.flush()

    @pytest.mark.parametrize("offers_tls", [True, False])
    def test_the_mysql_greeting_check_reads_the_tls_capability(self, offers_tls):
        """A server greeting (handshake v10) with or without CLIENT_SSL: accepted or refused."""
        import socket

        from zentrack._store.location import parse
        from zentrack._store.server import require_tls

        flags = 0xFFFF if offers_tls else 0xFFFF & ~0x0800  # CLIENT_SSL is 0x0800
        payload = (
            b"\x0a" + b"10.11.6-MariaDB\0" + (7).to_bytes(4, "little") + b"abcdefgh" + b"\0"
            + flags.to_bytes(2, "little") + b"\x21\x02\x00" + b"\0" * 13
        )
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]

        def greet() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(len(payload).to_bytes(3, "little") + b"\0" + payload)

        thread = threading.Thread(target=greet, daemon=True)
        thread.start()
        location = parse(f"mysql://u:pw@127.0.0.1:{port}/db?ssl_ca=%2Ftmp%2Fca.pem")
        try:
            require_tls(location)
            outcome = "accepted"
        except StoreError as exc:
            outcome = "refused" if "offers no TLS" in str(exc) else str(exc)
        finally:
            thread.join(10)
            listener.close()
        assert ("accepted" if offers_tls else "refused") == outcome

    @pytest.mark.parametrize(
        "options",
        [
            {"sslmode": "require"},
            {"sslmode": "verify-ca", "sslrootcert": "server"},
            {"sslmode": "verify-full", "sslrootcert": "server"},
        ],
        ids=["require", "verify-ca", "verify-full"],
    )
    def test_tls_connects_and_tracks(self, tls_postgres_server, certificates, server_home, options):
        """Against a server started with ssl=on that takes logins over TLS only: a tracked
        call is written and found, and the server lists zentrack's connection as encrypted."""
        server = tls_postgres_server
        database = server.new_database()
        given = {k: certificates.server_cert if v == "server" else v for k, v in options.items()}
        zt.init(tls_url(server, database, **given))
        train(b"data", lr=0.25)
        written = zt.flush()
        found = [r.params["lr"] for r in zt.find(step="train")]
        encrypted = postgres_sql(
            server,
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
            f"WHERE datname = '{database}' AND ssl",
        )
        expected = (1, [0.25], True)
        assert expected == (written, found, int(encrypted) >= 1)

    def test_verify_full_refuses_a_certificate_of_another_authority(
        self, tls_postgres_server, certificates, server_home
    ):
        """`sslrootcert` naming another authority: refused before logging in, saying why."""
        database = tls_postgres_server.new_database()
        zt.init(tls_url(tls_postgres_server, database, sslmode="verify-full",
                        sslrootcert=certificates.other))
        with pytest.raises(StoreError) as raised:
            zt.find(step="train")
        message = str(raised.value)
        expected = (True, True, False)
        actual = (
            "is not signed by an authority zentrack trusts" in message,
            str(certificates.other) in message,
            database_exists(tls_postgres_server, database),
        )
        assert expected == actual, message


# == 6. Untrusted configs import code before validating it ==================================


ZEN = "Beautiful is better than ugly"


def write_config(path: Path, pipeline_source: str, steps: str = "steps: {}\n") -> Path:
    path.write_text(f"pipeline:\n  source: {pipeline_source}\n  args: {{}}\n{steps}")
    return path


class TestHole6ConfigsImportOnlyThePipelinesOwnCode:
    @pytest.mark.parametrize("action", ["plan", "run"])
    def test_a_standard_library_module_named_by_a_config_is_never_imported(
        self, store_path, tmp_path, action
    ):
        """`source: this.x`: `config plan` (nothing runs) and `config run` print no Zen."""
        config = write_config(tmp_path / "zen.yaml", "this.x")
        done = cli("--store", store_path, "config", action, config, cwd=tmp_path)
        expected = (1, False, True)
        actual = (done.returncode, ZEN in done.stdout + done.stderr, "this.x" in done.stderr)
        assert expected == actual, done.stdout + done.stderr

    @pytest.mark.parametrize("action", ["plan", "run"])
    def test_a_main_module_named_by_a_config_is_never_run(self, store_path, tmp_path, action):
        """`source: unittest.__main__.x` does not start unittest's command line."""
        config = write_config(tmp_path / "ut.yaml", "unittest.__main__.x")
        done = cli("--store", store_path, "config", action, config, cwd=tmp_path)
        output = done.stdout + done.stderr
        expected = (1, False)
        actual = (done.returncode, "usage:" in output or "Ran 0 tests" in output)
        assert expected == actual, output

    def test_a_step_source_outside_the_pipelines_package_is_never_imported(
        self, store_path, tmp_path, monkeypatch
    ):
        """Config.plan() of a stranger's config naming a module beside it: not imported."""
        monkeypatch.syspath_prepend(str(tmp_path))  # the config's folder is importable
        marker = evil_module(tmp_path, "zt_planted_steps")
        run = training()
        config = zt.load_config(run.config_path)
        text = Path(run.config_path).read_text()
        assert text.count("source: tests.pipelines_for_tests.load_data") == 1
        stranger = tmp_path / "stranger.yaml"
        stranger.write_text(
            text.replace(
                "source: tests.pipelines_for_tests.load_data", "source: zt_planted_steps.step"
            )
        )
        with pytest.raises(ZentrackError):
            zt.load_config(stranger).plan()
        expected = (False, False)
        actual = (marker.exists(), "zt_planted_steps" in sys.modules)
        assert expected == actual, config

    def test_a_module_in_the_current_folder_does_not_shadow_one_zentrack_imports(
        self, store_path, tmp_path
    ):
        """`zentrack runs` in a stranger's folder holding `sqlite3.py`: that file never runs."""
        train(b"data")
        zt.flush()
        marker = evil_module(tmp_path, "sqlite3")
        done = cli("--store", store_path, "runs", cwd=tmp_path)
        expected = (0, False)
        assert expected == (done.returncode, marker.exists()), done.stderr

    def test_rerun_refuses_a_recorded_config_that_was_changed(self, store_path, tmp_path):
        """A folder writer edits a run's config to name their module: `rerun` imports nothing."""
        marker = evil_module(tmp_path, "zt_planted_pipeline")
        run = training()
        zt.flush()
        path = Path(run.config_path)
        text = path.read_text()
        path.write_text(
            text.replace(
                "source: tests.pipelines_for_tests.training",
                "source: zt_planted_pipeline.pipeline",
                1,
            )
        )
        done = cli("--store", store_path, "rerun", run.id, cwd=tmp_path)
        expected = (1, False)
        assert expected == (done.returncode, marker.exists()), done.stdout + done.stderr

    def test_rerun_refuses_a_config_path_the_store_points_elsewhere(self, store_path, tmp_path):
        """A teammate's row points a run's config at their own file: `rerun` imports nothing."""
        marker = evil_module(tmp_path, "zt_planted_pipeline")
        run = training()
        zt.flush()
        planted = tmp_path / "planted.yaml"
        planted.write_text(
            Path(run.config_path)
            .read_text()
            .replace(
                "source: tests.pipelines_for_tests.training",
                "source: zt_planted_pipeline.pipeline",
                1,
            )
        )
        mlmd = open_plain_rw(store_path)
        (context,) = [
            c for c in mlmd.get_contexts_by_type("zentrack.PipelineRun") if c.name == run.id
        ]
        context.custom_properties["zentrack.config"].string_value = str(planted)
        record = json.loads(context.custom_properties["zentrack.record"].string_value)
        record["config"] = str(planted)
        context.custom_properties["zentrack.record"].string_value = json.dumps(record)
        mlmd.put_contexts([context])
        done = cli("--store", store_path, "rerun", run.id, cwd=tmp_path)
        expected = (1, False)
        assert expected == (done.returncode, marker.exists()), done.stdout + done.stderr


# == 7. A full disk loses a record that returned ============================================


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs that can really fill up (skips where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    with small_tmpfs(mount):
        yield mount


#: How the journal appends in TestHole7: into its mapping, whose reserved room is
#: made small so that the loop outgrows it (a new file's blocks cannot be reserved
#: on the full disk), or with ``os.write`` (a file system that cannot map).
JOURNAL_MODES = ["mapped", "write"]
SMALL_CAPACITY = 1 << 12


def set_journal_mode(mode: str, setattr: Callable[[Any, str, Any], None]) -> None:
    """Make the journal writer append as ``mode`` says (see :data:`JOURNAL_MODES`)."""
    import errno
    import os

    import zentrack._record.journal as journal

    def cannot_allocate(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    if mode == "write":
        setattr(os, "posix_fallocate", cannot_allocate)
    else:
        setattr(journal, "ROTATE_BYTES", SMALL_CAPACITY)


FULL_DISK_SCRIPT = (
    "from __future__ import annotations\n"
    + "from typing import Any, Callable\n"
    + inspect.getsource(fill_disk)
    + inspect.getsource(set_journal_mode)
    + f"SMALL_CAPACITY = {SMALL_CAPACITY}\n"
    + """
import json, sys
import zentrack as zt
from tests.steps_for_tests import train

store, filler = sys.argv[1], sys.argv[2]
set_journal_mode(sys.argv[3], setattr)
zt.init(store)
train(b"data", lr=-1.0)
zt.flush()
fill_disk(filler)
returned, message = [-1.0], None
for i in range(2100):
    try:
        train(b"data", lr=float(i))
    except Exception:
        continue
    returned.append(float(i))
try:
    zt.flush()
except Exception as exc:
    message = str(exc)
print(json.dumps({"returned": returned, "message": message}), flush=True)
"""
)


class TestHole7AFullDiskLosesNothingThatReturned:
    @pytest.mark.parametrize("mode", JOURNAL_MODES)
    def test_a_torn_journal_tail_does_not_swallow_the_next_record(
        self, store_path, small_disk, monkeypatch, mode
    ):
        """The disk fills mid-line (or mid-journal), then frees: each returned call stored once."""
        set_journal_mode(mode, monkeypatch.setattr)
        store = small_disk / "metadata.sqlite"
        zt.init(store)
        returned = [-1.0]
        train(b"data", lr=-1.0)
        zt.flush()
        fill_disk(small_disk / "filler")
        for i in range(60):  # far more than the free tail of the journal's last page
            try:
                train(b"data", lr=float(i))
            except Exception:
                continue
            returned.append(float(i))
        (small_disk / "filler").unlink()
        with contextlib.suppress(StoreError):
            zt.flush()
        for i in range(60, 100):
            train(b"data", lr=float(i))
            returned.append(float(i))
        zt.flush()
        stored = sorted(r.params["lr"] for r in zt.find(step="train"))
        zt.init(store_path)  # leave the small disk before it is unmounted
        refused = 101 - len(returned)  # else the full disk was never met: nothing tested
        expected = (True, sorted(returned))
        assert expected == (refused > 0, stored)

    @pytest.mark.parametrize("mode", JOURNAL_MODES)
    def test_records_of_a_process_that_exits_on_a_full_disk_are_not_lost(
        self, run_python, store_path, small_disk, mode
    ):
        """2,100 calls on a full disk, then exit: each call that returned is stored later."""
        store = small_disk / "metadata.sqlite"
        done = run_python(FULL_DISK_SCRIPT, str(store), str(small_disk / "filler"), mode)
        report = json.loads(done.stdout.splitlines()[-1])
        (small_disk / "filler").unlink()
        zt.init(store)
        zt.flush()
        stored = {r.params["lr"] for r in zt.find(step="train")}
        zt.init(store_path)
        missing = sorted(set(report["returned"]) - stored)
        refused = 2101 - len(report["returned"])  # else the full disk was never met
        expected = (0, True, 0, [])
        actual = (done.returncode, refused > 0, len(missing), missing[:5])
        assert expected == actual, (report["message"], done.stderr[-2000:])


# == 8. One malformed journal line blocks everything ========================================

KILLED_SCRIPT = """
import os, signal, sys
import zentrack as zt
from tests.steps_for_tests import train

zt.init(sys.argv[1])
for i in range(int(sys.argv[2])):
    train(b"data", lr=i / 10)
os.kill(os.getpid(), signal.SIGKILL)
"""
CALLS = 6


def poison_from(good: dict[str, Any], case: str) -> bytes:
    """The malformed-but-JSON line of ``case``, derived from a real step line."""
    if case == "no fields":
        return b'{"v":1,"id":"poison"}'
    if case == "run line without fields":
        return b'{"v":1,"kind":"run","id":"r"}'
    bad = dict(good, id="poison-" + good["id"])
    if case == "bogus state":
        bad["st"] = "BOGUS"
    else:
        bad["t0"] = "abc"
    return json.dumps(bad, separators=(",", ":")).encode()


class TestHole8APoisonLineIsQuarantined:
    @pytest.mark.parametrize(
        "case", ["no fields", "run line without fields", "bogus state", "text time"]
    )
    def test_good_records_around_a_poison_line_are_written(
        self, run_python, store_path, caplog, case
    ):
        """A dead writer's journal with one bad line: the rest is stored, the line set aside."""
        done = run_python(KILLED_SCRIPT, str(store_path), str(CALLS))
        assert done.returncode == -signal.SIGKILL, done.stderr
        (journal,) = journal_dir(store_path).glob("*.jsonl")
        lines = journal.read_bytes().splitlines()
        poison = poison_from(json.loads(lines[0]), case)
        journal.write_bytes(b"\n".join([*lines[:3], poison, *lines[3:]]) + b"\n")
        with caplog.at_level(logging.WARNING, logger="zentrack"):
            written = zt.flush()
            again = zt.flush()
        warnings = zentrack_messages(caplog.records)
        named = {Path(p.rstrip(".,;:)")) for w in warnings for p in re.findall(r"/[^\s'\"]+", w)}
        quarantined = [p for p in named if p.is_file() and poison in p.read_bytes()]
        lrs = sorted(r.params["lr"] for r in zt.find(step="train"))
        expected = (CALLS, 0, [i / 10 for i in range(CALLS)], 1)
        assert expected == (written, again, lrs, len(quarantined)), warnings

    def test_a_stored_record_with_a_bad_field_does_not_break_find(self, store_path):
        """A row whose record JSON has ``"t0": "abc"``: `find` still returns the others."""
        for lr in (0.1, 0.2, 0.3):
            train(b"data", lr=lr)
        zt.flush()
        mlmd = open_plain_rw(store_path)
        execution = mlmd.get_executions_by_type("zentrack.step.train")[0]
        record = json.loads(execution.custom_properties["zentrack.record"].string_value)
        record["t0"] = "abc"
        execution.custom_properties["zentrack.record"].string_value = json.dumps(record)
        mlmd.put_executions([execution])
        found = sorted(r.params["lr"] for r in zt.find(step="train"))
        assert {0.1, 0.2, 0.3} - {record["p"]["lr"]} <= set(found)


# == 9. A thread race in journal rotation ===================================================


def descriptor_closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def target_closed(target: Any) -> bool:
    """Whether the mapping (or descriptor) a paused append copies into was closed."""
    return bool(target.closed) if isinstance(target, mmap.mmap) else descriptor_closed(target)


#: The journal writer's durable step: the copy of a line into the mapped journal.
DURABLE_COPY = "mm.write(data)  # durable"


class TestHole9JournalRotationRace:
    def test_a_write_stalled_across_two_rotations_still_lands_in_the_journal(
        self, tmp_path, monkeypatch
    ):
        """One thread is held right before its durable copy while others rotate twice.

        The held thread has already taken the journal's mapping; the rotations
        release that mapping under it.  Were the file cut back to its data
        with the mapping still open, the held copy would land past the end
        (a ``SIGBUS``) or be cut away.  The mapping is closed on release, so
        the copy fails and the line goes to the current file, exactly once.
        A tracer pauses the thread at the copy line (no timing involved).
        """
        journal = private("journal")
        monkeypatch.setattr(journal, "ROTATE_BYTES", 1024)
        writer = journal.JournalWriter(tmp_path / "journal")
        writer.append(b'{"first":0}\n')
        source = journal.__file__
        paused, resume = threading.Event(), threading.Event()
        held: list[int] = []
        errors: list[str] = []

        def local(frame: Any, event: str, arg: Any) -> Any:
            line = linecache.getline(source, frame.f_lineno)
            if event == "line" and not paused.is_set() and DURABLE_COPY in line:
                held.append(frame.f_locals["mm"])
                paused.set()
                resume.wait(60)
            return local

        def tracer(frame: Any, event: str, arg: Any) -> Any:
            return local if frame.f_code.co_filename == source else None

        def victim() -> None:
            sys.settrace(tracer)
            try:
                writer.append(b'{"victim":1}\n')
            except Exception as exc:
                errors.append(repr(exc))
            finally:
                sys.settrace(None)

        appended: list[int] = []

        def others() -> None:
            more = 200  # lines after the held mapping's release: another rotation or two
            for i in range(5000):
                writer.append(b'{"other":%d}\n' % i)
                appended.append(i)
                more -= target_closed(held[0])
                if not more:
                    break

        stalled = threading.Thread(target=victim)
        stalled.start()
        assert paused.wait(60), f"the journal writer no longer copies with {DURABLE_COPY!r}"
        rotating = threading.Thread(target=others, daemon=True)
        rotating.start()
        rotating.join(60)
        closed_under_it = target_closed(held[0])
        resume.set()
        stalled.join(60)
        rotating.join(60)
        writer.close()
        lines = [ln for c in journal.pending_chunks(tmp_path / "journal") for ln in c.lines]
        expected = (True, [], 1, 1 + len(appended) + 1)
        actual = (closed_under_it, errors, lines.count(b'{"victim":1}'), len(lines))
        assert expected == actual

    def test_threads_appending_across_many_rotations_never_lose_a_line(self, tmp_path, monkeypatch):
        """8 threads, a rotation every 2 kB, preemption forced often: no EBADF, no line lost."""
        journal = private("journal")
        monkeypatch.setattr(journal, "ROTATE_BYTES", 2048)
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        errors: list[str] = []
        lost: list[int] = []
        try:
            for round_ in range(20):
                folder = tmp_path / f"journal-{round_}"
                writer = journal.JournalWriter(folder)

                def work(w: int, writer: Any = writer) -> None:
                    try:
                        for i in range(1000):
                            writer.append(b'{"w":%d,"i":%d}\n' % (w, i))
                    except Exception as exc:  # EBADF: a descriptor closed under this thread
                        errors.append(repr(exc))

                threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                writer.close()
                count = sum(len(c.lines) for c in journal.pending_chunks(folder))
                lost.append(8000 - count)
        finally:
            sys.setswitchinterval(interval)
        expected = ([], [0] * 20)
        assert expected == (errors[:3], lost)


# == 10. Smaller holes ==========================================================================


@zt.step
class Layered:
    """A class step whose one parameter may be nested arbitrarily deep."""

    def __init__(self, layers: Any = None) -> None:
        self.layers = layers

    def run(self, data: Any) -> int:
        return 1


@zt.step
def count_to(n: int = 0) -> int:
    """A function step with one int parameter."""
    return 1


@zt.step
def use_table(table: Any = None) -> int:
    """A function step whose parameter is a (possibly huge) mapping."""
    return len(table or {})


#: Keys of the mapping :func:`with_table` passes: its YAML is about 100 kB.
TABLE_KEYS = 5000


@zt.pipeline
def with_table() -> int:
    """A pipeline whose step gets a mapping too large to inline in a config."""
    return use_table(table={f"k{i:07d}": i for i in range(TABLE_KEYS)})


class TestHole10SmallerHoles:
    @pytest.mark.parametrize("special", ["#", "/", "?", "#/?"])
    @pytest.mark.parametrize("kind", ["postgresql", "mysql"])
    def test_a_password_with_url_delimiters_is_redacted_from_messages(self, caplog, kind, special):
        """A password spelt raw with '#', '/' or '?': no message shows any part of it."""
        password = f"s3{special}cr3t-tail"
        url = f"{kind}://zentrack:{password}@127.0.0.1:1/db"
        messages = []
        with caplog.at_level(logging.DEBUG, logger="zentrack"):
            try:
                tracker = zt.init(url)
                messages.append(repr(tracker.location))
                zt.flush()
            except Exception as exc:
                messages.append(str(exc))
        shown = "\n".join(messages + zentrack_messages(caplog.records))
        expected: list[str] = []
        assert expected == [part for part in ("cr3t", "tail") if part in shown], shown

    def test_zentrack_folders_and_files_are_private_by_default(self, tmp_path):
        """Under umask 022, everything zentrack creates in .zentrack is 0700/0600."""
        project = tmp_path / "project"
        project.mkdir()
        previous = os.umask(0o022)
        try:
            zt.init(project / ".zentrack" / "metadata.sqlite")
            training()
            make_point(x=3.0, y=4.0)
            train(b"data")
            zt.flush()
        finally:
            os.umask(previous)
        loose = sorted(
            f"{path.relative_to(project)} {oct(path.stat().st_mode & 0o777)}"
            for path in [project / ".zentrack", *(project / ".zentrack").rglob("*")]
            if path.stat().st_mode & 0o077
        )
        expected: list[str] = []
        assert expected == loose

    def test_a_huge_parameter_is_not_inlined_in_the_run_config(self, caplog):
        """A ~100 kB mapping param: a warning, a small config that loads and reruns exactly."""
        with caplog.at_level(logging.WARNING, logger="zentrack"):
            run = with_table()
        size = Path(run.config_path).stat().st_size
        warned = any("table" in m for m in zentrack_messages(caplog.records))
        again = zt.load_config(run.config_path).run()
        table = {f"k{i:07d}": i for i in range(TABLE_KEYS)}
        expected = (True, True, table)
        actual = (size < 64 * 1024, warned, again.steps[0].params["table"])
        assert expected == actual

    def test_a_10000_deep_list_is_a_clear_error(self):
        """A class-step param nested 10,000 deep: a ZentrackError naming it, no RecursionError."""
        deep: list[Any] = []
        for _ in range(10_000):
            deep = [deep]
        with pytest.raises(ZentrackError, match="layers"):
            Layered(layers=deep)

    def test_an_int_beyond_the_str_conversion_limit_is_a_clear_error(self):
        """`count_to(10**5000)`: a ParameterTypeError naming 'n', not a raw ValueError."""
        with pytest.raises(ParameterTypeError, match="'n'"):
            count_to(10**5000)
