"""Broken stores: tracking never breaks user code, records wait, nothing is lost.

For each way a store can be broken (corrupt, truncated, another application's
database, read-only file or folder, missing folder, locked by another process,
older or newer MLMD schema): tracked calls in a real subprocess still run and
return; flushes and reads raise :class:`zentrack.exceptions.StoreError` naming
the store and the fix; the records wait in the journal; and once the store is
fixed (file moved aside, permissions restored, lock released, schema migrated)
one flush writes every one of them.

The tests run as root, for whom ``chmod`` does not prevent writes, so the
read-only cases use ``chattr +i`` and are skipped where it is unavailable.
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zentrack as zt
from tests.reliability_workers import (
    ROOT,
    child_env,
    note,
    output,
    start_worker,
    tick,
    wait_for,
    worker,
)
from zentrack._record import tracker as _tracker
from zentrack.exceptions import StoreError

#: Tracked calls made against each broken store.
CALLS = 50
OK = "StoreError naming the store and the fix"


# -- making and fixing broken stores ---------------------------------------------------------


def chattr(flag: str, path: Path) -> None:
    """Set or clear the immutable attribute (root ignores chmod, not this)."""
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def immutable_supported(tmp_path_factory) -> bool:
    """Whether ``chattr +i`` works on the test file system."""
    probe = tmp_path_factory.mktemp("chattr") / "probe"
    probe.write_text("x")
    if shutil.which("chattr") is None:
        return False
    try:
        chattr("+i", probe)
    except (subprocess.CalledProcessError, OSError):
        return False
    try:
        probe.write_text("y")
    except PermissionError:
        return True
    finally:
        chattr("-i", probe)
    return False


def garbage(path: Path) -> None:
    path.write_bytes(b"this is not an sqlite database\n" * 200)


def truncated(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def other_application(path: Path) -> None:
    path.unlink()
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    connection.commit()
    connection.close()


def read_only_file(path: Path) -> None:
    chattr("+i", path)


def read_only_directory(path: Path) -> None:
    chattr("+i", path.parent)


def older_schema(path: Path) -> None:
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    metadata_store.downgrade_schema(config, downgrade_to_schema_version=7)


def schema_version(path: Path, version: int | None = None) -> int:
    """Read (or set) the MLMDEnv schema version with plain sqlite3."""
    connection = sqlite3.connect(path)
    try:
        if version is not None:
            connection.execute("UPDATE MLMDEnv SET schema_version = ?", (version,))
            connection.commit()
        return int(connection.execute("SELECT schema_version FROM MLMDEnv").fetchone()[0])
    finally:
        connection.close()


def newer_schema(path: Path) -> None:
    schema_version(path, 100)


def move_aside(path: Path) -> str:
    path.rename(path.with_name(path.name + ".broken"))
    return "ok"


def writable_file(path: Path) -> str:
    chattr("-i", path)
    return "ok"


def writable_directory(path: Path) -> str:
    chattr("-i", path.parent)
    return "ok"


def migrate(path: Path) -> str:
    done = zentrack_cli("--store", str(path), "store", "migrate")
    return "ok" if done.returncode == 0 else f"migrate exit {done.returncode}: {done.stderr[-300:]}"


def back_to_current_schema(path: Path) -> str:
    schema_version(path, 10)  # as if ml-metadata had been upgraded
    return "ok"


#: case -> (break it, fix it, a phrase of the fix the error must name, needs chattr,
#: whether the store can still be read)
CASES = {
    "garbage": (garbage, move_aside, "move it aside", False, False),
    "truncated": (truncated, move_aside, "move it aside", False, False),
    "other_application": (other_application, move_aside, "another application", False, False),
    "read_only_file": (read_only_file, writable_file, "writable", True, True),
    "read_only_directory": (read_only_directory, writable_directory, "writable", True, False),
    "older_schema": (older_schema, migrate, "zentrack store migrate", False, False),
    "newer_schema": (newer_schema, back_to_current_schema, "upgrade", False, False),
}


def zentrack_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zentrack ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "zentrack", *args],
        cwd=ROOT,
        env=child_env(None),
        capture_output=True,
        text=True,
        timeout=120,
    )


def describe(action, path: Path, fix: str) -> str:
    """Run ``action``; say whether it raised a StoreError naming ``path`` and ``fix``."""
    try:
        action()
    except StoreError as exc:
        message = str(exc)
        missing = [what for what in (str(path), fix) if what not in message]
        return OK if not missing else f"StoreError without {missing}: {message[:300]}"
    except Exception as exc:  # the finding: any other exception is a bug
        return f"{type(exc).__name__} instead of StoreError: {str(exc)[:300]}"
    return "no error"


def read_anyway(caplog, path: Path, fix: str) -> str:
    """A read of a store that cannot be written: what it holds, and a warning naming the fix.

    The warning comes once per process: from this read, or from ``init``
    if that already tried to write what a dead process left.
    """
    with caplog.at_level(logging.WARNING, logger="zentrack"):
        try:
            found = [(r.params["worker"], r.params["i"]) for r in zt.find(step="tick")]
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc)[:300]}"
    warnings = [r.getMessage() for r in caplog.records if r.name == "zentrack"]
    warned = any(str(path) in w and fix in w for w in warnings)
    return OK if found == [(7, 0)] and warned else f"found {found}, warnings {warnings}"


def attempt(action) -> object:
    """The result of ``action``, or the exception it raised, as text."""
    try:
        return action()
    except Exception as exc:  # reported in the comparison, not raised
        return f"{type(exc).__name__}: {str(exc)[:300]}"


def new_store(tmp_path: Path, name: str = "broken") -> Path:
    """A real zentrack store with one record, written (and closed) by another process."""
    path = tmp_path / name / "metadata.sqlite"
    path.parent.mkdir()
    done = worker("calls", str(path), "1", "7")
    assert done.returncode == 0, done.stderr
    # zentrack leaves the data in the -wal file (see test_reliability's
    # TestStoreFile); fold it into the file, so that breaking the file breaks the store.
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


def worker_one_params(records) -> list[tuple[int, int]]:
    return sorted((r.params["worker"], r.params["i"]) for r in records if r.params["worker"] == 1)


# -- the tests ----------------------------------------------------------------------------------


class TestBrokenStore:
    @pytest.mark.parametrize("case", sorted(CASES))
    def test_calls_return_records_wait_and_a_flush_after_the_fix_writes_them_all(
        self, store_path, tmp_path, immutable_supported, case, caplog
    ):
        """Broken: calls return, reads say what to do, records wait; fixed: one flush writes all.

        A store that can be read but not written (a read-only file) is read
        anyway, with a warning naming the fix.
        """
        breaker, fixer, fix, needs_chattr, readable = CASES[case]
        if needs_chattr and not immutable_supported:
            pytest.skip("chattr +i is not available here (tests run as root: chmod is not enough)")
        path = new_store(tmp_path)
        breaker(path)
        fixed = "not attempted"
        try:
            zt.init(path)
            done = worker("calls", str(path), str(CALLS), "1")
            errors = [
                describe(zt.flush, path, fix),
                read_anyway(caplog, path, fix) if readable else describe(zt.find, path, fix),
            ]
            waiting = _tracker.active().pending()
        finally:
            fixed = fixer(path)
        # The fix itself may write them (`zentrack store migrate` flushes at its exit).
        attempt(zt.flush)
        left = attempt(lambda: _tracker.active().pending())
        found = attempt(lambda: worker_one_params(zt.find(step="tick")))
        expected = (
            (0, CALLS),
            [OK, OK],
            CALLS,
            "ok",
            0,
            [(1, i) for i in range(CALLS)],
        )
        actual = (
            (done.returncode, output(done).get("returned")),
            errors,
            waiting,
            fixed,
            left,
            found,
        )
        note(
            f"broken store: {case}",
            calls=CALLS,
            waiting_while_broken=waiting,
            written_after_fix=len(found) if isinstance(found, list) else found,
            still_waiting=attempt(lambda: _tracker.active().pending()),
            calls_elapsed=output(done).get("elapsed"),
            max_pause=output(done).get("max_pause"),
        )
        assert expected == actual, done.stderr[-2000:]

    def test_init_with_records_waiting_on_a_broken_store_does_not_raise(self, tmp_path):
        """init() on a broken store with a dead process's records waiting warns, never raises."""
        path = new_store(tmp_path)
        done = worker("calls_then_kill", str(path), str(CALLS), "0", "1")
        garbage(path)
        initialised = attempt(lambda: type(zt.init(path)).__name__)
        waiting = _tracker.active().pending() if initialised == "Tracker" else None
        expected = ("Tracker", CALLS)
        assert expected == (initialised, waiting), done.stderr


class TestLockedStore:
    def test_store_locked_by_another_process(self, store_path, tmp_path):
        """Calls return while another process holds BEGIN EXCLUSIVE; nothing is lost."""
        path = new_store(tmp_path, "locked")
        zt.init(path)
        ready, release = tmp_path / "ready", tmp_path / "release"
        holder = start_worker("hold_sqlite_lock", str(path), str(ready), str(release))
        try:
            wait_for(lambda: ready.exists() or holder.poll() is not None, what="the lock")
            started = time.perf_counter()
            results = [tick(i=i, worker=1) for i in range(CALLS)]
            calls_elapsed = time.perf_counter() - started
            started = time.perf_counter()
            error = describe(zt.flush, path, "lock")
            flush_stall = time.perf_counter() - started
        finally:
            release.touch()
            holder.communicate(timeout=90)
        flushed = attempt(zt.flush)
        expected = ([i * 2 + 1 for i in range(CALLS)], OK, 0, CALLS, [(1, i) for i in range(CALLS)])
        actual = (
            results,
            error,
            holder.returncode,
            flushed,
            worker_one_params(zt.find(step="tick")),
        )
        note(
            "store locked by another process",
            calls=CALLS,
            calls_elapsed=calls_elapsed,
            flush_stall_until_error=flush_stall,
        )
        assert expected == actual


class TestMissingDirectory:
    def test_init_names_the_missing_directory_and_the_fix(self, tmp_path):
        """zt.init() on a path whose folder is missing raises StoreError naming it and the fix."""
        path = tmp_path / "missing" / "twice" / "metadata.sqlite"
        expected = OK
        assert expected == describe(lambda: zt.init(path), path, "create it")

    def test_implicit_init_in_a_missing_directory_creates_it_and_keeps_every_record(self, tmp_path):
        """$ZENTRACK_STORE in a missing folder: the folder is made (with a warning), nothing lost.

        The process exits without a flush of its own and without ever calling
        init: the records must survive it (an in-memory fallback would not).
        """
        path = tmp_path / "missing" / "twice" / "metadata.sqlite"
        done = worker("implicit_calls", str(CALLS), env={"ZENTRACK_STORE": str(path)})
        zt.init(path)
        expected = (0, CALLS, True, [(0, i) for i in range(CALLS)])
        actual = (
            done.returncode,
            output(done).get("returned"),
            f"created the folder '{path.parent}'" in done.stderr,
            sorted((r.params["worker"], r.params["i"]) for r in zt.find(step="tick")),
        )
        assert expected == actual, done.stderr[-1000:]


    @pytest.mark.parametrize("below", [("sub", "metadata.sqlite"), ("metadata.sqlite",)])
    def test_implicit_init_where_no_folder_can_be_made_still_runs_the_calls(
        self, tmp_path, below
    ):
        """$ZENTRACK_STORE below a regular file: calls return; exit says the records are lost."""
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        path = blocker.joinpath(*below)
        done = worker("implicit_calls", str(CALLS), env={"ZENTRACK_STORE": str(path)})
        expected = (0, CALLS, True, True)
        actual = (
            done.returncode,
            output(done).get("returned"),
            "cannot create the folder" in done.stderr,
            f"{CALLS} record(s) of this process are lost" in done.stderr,
        )
        assert expected == actual, done.stderr[-2000:]


class TestReadOnlyFolders:
    def test_a_lock_file_that_cannot_be_opened_fails_writes_but_not_reads(self, tmp_path, caplog):
        """No writer lock (here a folder where the lock file goes): StoreError; reads work."""
        path = new_store(tmp_path)
        done = worker("calls_then_kill", str(path), str(CALLS), "1", "1")
        lock = path.with_name(path.name + ".lock")
        lock.unlink(missing_ok=True)
        lock.mkdir()
        try:
            zt.init(path)
            flushed = describe(zt.flush, lock, "writable")
            read = read_anyway(caplog, lock, "writable")
        finally:
            lock.rmdir()
        expected = (-signal.SIGKILL, OK, OK, CALLS, [(1, i) for i in range(CALLS)])
        actual = (
            done.returncode,
            flushed,
            read,
            attempt(zt.flush),
            worker_one_params(zt.find(step="tick")),
        )
        assert expected == actual

    def test_unwritable_journal_folder_sends_each_record_straight_to_the_store(
        self, store_path, immutable_supported
    ):
        """An immutable journal folder: calls return, each record is already in the store."""
        if not immutable_supported:
            pytest.skip("chattr +i is not available here")
        tick(i=-1, worker=0)
        zt.flush()
        zt.init(store_path)  # a new tracker: its journal file does not exist yet
        journal = store_path.with_name(store_path.name + ".journal")
        chattr("+i", journal)
        try:
            results = [tick(i=i, worker=1) for i in range(CALLS)]
            flushed = attempt(zt.flush)
        finally:
            chattr("-i", journal)
        expected = ([i * 2 + 1 for i in range(CALLS)], 0, [(1, i) for i in range(CALLS)])
        actual = (results, flushed, worker_one_params(zt.find(step="tick")))
        assert expected == actual

    def test_read_only_folder_without_a_journal_yet(self, tmp_path, immutable_supported):
        """Immutable folder, no journal yet: each call raises a StoreError saying 'writable'.

        Neither the journal nor the store can take the record, so the call
        does not return as if it were recorded; once fixed, calls record again.
        """
        if not immutable_supported:
            pytest.skip("chattr +i is not available here")
        path = tmp_path / "shared" / "metadata.sqlite"
        path.parent.mkdir()
        from ml_metadata.metadata_store import metadata_store
        from ml_metadata.proto import metadata_store_pb2 as pb

        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = str(path)
        metadata_store.MetadataStore(config)
        zt.init(path)
        chattr("+i", path.parent)
        try:
            errors = [describe(lambda i=i: tick(i=i, worker=1), path, "writable") for i in range(3)]
        finally:
            chattr("-i", path.parent)
        results = [tick(i=i, worker=2) for i in range(CALLS)]
        flushed = attempt(zt.flush)
        expected = ([OK] * 3, [i * 2 + 2 for i in range(CALLS)], CALLS, [])
        actual = (errors, results, flushed, worker_one_params(zt.find(step="tick")))
        assert expected == actual


class TestMigrate:
    def test_migrate_backs_up_upgrades_and_reads_work(self, tmp_path):
        """`zentrack --store PATH store migrate` backs up, upgrades to schema 10; reads work."""
        path = new_store(tmp_path, "old")
        older_schema(path)
        before = sqlite3.connect(path).execute("SELECT COUNT(*) FROM Execution").fetchone()[0]
        done = zentrack_cli("--store", str(path), "store", "migrate")
        backups = sorted(path.parent.glob(path.name + ".backup*"))
        backup_rows = (
            sqlite3.connect(backups[0]).execute("SELECT COUNT(*) FROM Execution").fetchone()[0]
            if backups
            else None
        )
        zt.init(path)
        expected = (0, 1, (1, 1, 7), 10, [(7, 0)])
        actual = (
            done.returncode,
            len(backups),
            (before, backup_rows, schema_version(backups[0]) if backups else None),
            schema_version(path),
            sorted((r.params["worker"], r.params["i"]) for r in zt.find(step="tick")),
        )
        assert expected == actual, done.stderr

    def test_the_command_the_error_message_suggests_works(self, tmp_path):
        """The `zentrack ...` command quoted by the older-schema StoreError migrates the store."""
        path = new_store(tmp_path, "old")
        older_schema(path)
        zt.init(path)
        try:
            zt.find()
            message = ""
        except StoreError as exc:
            message = str(exc)
        quoted = re.findall(r"`(zentrack [^`]+)`", message)
        done = zentrack_cli(*quoted[0].split()[1:]) if quoted else None
        expected = (1, 0, 10)
        actual = (
            len(quoted),
            done.returncode if done else None,
            schema_version(path),
        )
        assert expected == actual, (message, done.stderr if done else "")
