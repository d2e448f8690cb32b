"""Tests for zentrack._record.backlog: a read flushes only when something waits.

A read (``lookup``, ``find``, ``runs``) with nothing waiting must take no
lock and write no file, yet still see every call that returned before it in
any process, and still mark FAILED the runs of processes that died.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import pytest

import zentrack as zt
from tests.reliability_workers import start_worker, tick, worker
from zentrack._record import journal as _journal
from zentrack._record.backlog import MARKER_GRACE, Backlog, retire_dead_markers
from zentrack._store.location import parse


def folder_state(store_path: Path) -> dict[str, tuple[int, int]]:
    """Every file beside the store and in its journal folder: (size, mtime in ns)."""
    found = {}
    for folder in (store_path.parent, parse(store_path).journal_dir):
        assert folder is not None
        for entry in os.scandir(folder):
            if entry.is_file() and not entry.name.startswith("metadata.sqlite-"):
                info = entry.stat()
                found[entry.path] = (info.st_size, info.st_mtime_ns)
    return found


def reads() -> tuple[int, int, int]:
    return (len(zt.find(step="tick")), len(zt.lookup("0" * 64)), len(zt.runs()))


def waiting(store_path: Path) -> bool:
    """What the lock-free check a read makes says: anything to flush?"""
    journal = parse(store_path).journal_dir
    assert journal is not None
    return any(Backlog(journal).scan())


class TestNothingWaiting:
    def test_a_read_with_nothing_waiting_writes_no_file(self, store_path):
        """After a drain, reads leave the lock file, offsets and journals untouched."""
        tick(i=1)
        zt.flush()
        before = folder_state(store_path)
        time.sleep(0.01)  # a rewrite would show in the mtimes
        counts = [reads() for _ in range(3)]
        expected = (before, [(1, 0, 0)] * 3, False)
        actual = (folder_state(store_path), counts, waiting(store_path))
        assert expected == actual

    def test_reads_do_not_wait_for_a_held_writer_lock(self, store_path, caplog, monkeypatch):
        """Another process holding the writer lock does not delay or warn a read: none is taken."""
        tick(i=1)
        zt.flush()
        monkeypatch.setenv("ZENTRACK_LOCK_TIMEOUT", "0.2")
        holder = start_worker("hold_writer_lock", str(store_path), "60")
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            with caplog.at_level(logging.DEBUG, logger="zentrack"):
                counts = reads()
        finally:
            holder.kill()
            holder.wait()
        flush_messages = [r.getMessage() for r in caplog.records if "lock" in r.getMessage()]
        expected = ((1, 0, 0), [])
        assert expected == (counts, flush_messages)


class TestOtherProcesses:
    def test_a_read_sees_calls_another_process_made_after_the_last_read(self, store_path):
        """The remembered offsets never hide a journal that grew or appeared since."""
        tick(i=0)
        first = len(zt.find(step="tick"))
        done = worker("calls_then_kill", str(store_path), "5", "1", "1")  # journal only
        found = sorted((r.params["i"], r.params["worker"]) for r in zt.find(step="tick"))
        expected = (1, -signal.SIGKILL, [(0, 0), (0, 1), (1, 1), (2, 1), (3, 1), (4, 1)])
        assert expected == (first, done.returncode, found), done.stderr

    def test_a_dead_processs_journal_is_drained_by_a_read(self, store_path):
        """A journal longer than its offset is pending: the read drains it, then nothing waits."""
        done = worker("calls_then_kill", str(store_path), "3", "1")
        backlog = Backlog(parse(store_path).journal_dir)
        waiting = backlog.pending()
        found = len(zt.find(step="tick"))
        expected = (-signal.SIGKILL, True, 3, False)
        assert expected == (done.returncode, waiting, found, backlog.pending()), done.stderr


class TestDeadMarkers:
    def test_a_sigkilled_pipeline_is_failed_by_the_next_read(self, store_path):
        """Its .alive marker is dead: the read reconciles, and the marker is gone after."""
        done = worker("pipeline_then_kill", str(store_path), "2")
        journal = parse(store_path).journal_dir
        assert journal is not None
        markers = [p.name for p in journal.glob("*.alive")]
        (run,) = zt.runs(pipeline="killed")
        expected = (-signal.SIGKILL, 1, "FAILED", [])
        actual = (done.returncode, len(markers), run.state, list(journal.glob("*.alive")))
        assert expected == actual, done.stderr

    @pytest.mark.parametrize(("age", "kept"), [(0.0, True), (MARKER_GRACE + 5, False)])
    def test_a_dead_marker_no_run_names_is_deleted_once_old(self, store_path, age, kept):
        """A marker left by a process that ended its runs stops costing reads after a minute."""
        tick(i=0)
        zt.flush()
        journal = parse(store_path).journal_dir
        assert journal is not None
        marker = journal / f"{os.uname().nodename}-999999-0123abcd.alive"
        marker.write_text("")
        then = time.time() - age
        os.utime(marker, (then, then))
        retired = retire_dead_markers(journal)
        expected = (kept, [] if kept else [marker])
        assert expected == (marker.exists(), retired)

    def test_a_live_marker_is_not_dead(self, store_path, tmp_path):
        """A running pipeline's marker is locked by its process: not dead, not deleted."""
        ready = tmp_path / "ready"
        child = start_worker("pipeline_waiting", str(store_path), "1", str(ready))
        try:
            deadline = time.monotonic() + 60
            while not ready.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            journal = parse(store_path).journal_dir
            assert journal is not None
            dead = Backlog(journal).dead_markers()
            retired = retire_dead_markers(journal, grace=0.0)
            markers = len(list(journal.glob("*.alive")))
        finally:
            child.kill()
            child.wait()
        expected = ([], [], 1)
        assert expected == (dead, retired, markers)

    def test_another_hosts_marker_is_left_alone(self, store_path):
        """Markers of other machines (a shared folder) are neither probed as dead nor deleted."""
        tick(i=0)
        zt.flush()
        journal = parse(store_path).journal_dir
        assert journal is not None
        marker = journal / "some-other-host-1234-0123abcd.alive"
        marker.write_text("")
        old = time.time() - 3600
        os.utime(marker, (old, old))
        expected = ([], [], True)
        actual = (Backlog(journal).dead_markers(), retire_dead_markers(journal), marker.exists())
        assert expected == actual


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


class TestMappedJournals:
    """A mapped journal's size is its capacity: what waits is told by the byte at its offset."""

    def test_a_half_full_mapped_journal_is_not_pending_once_drained(self, store_path):
        """After a drain nothing waits, though the file is far longer than its offset."""
        journal = parse(store_path).journal_dir
        assert journal is not None
        backlog = Backlog(journal)
        try:
            tick(i=1)
            tick(i=2)
            zt.flush()
            (path,) = journal.glob("*.jsonl")
            drained = backlog.pending()
            tick(i=3)
            appended = backlog.pending()
            zt.flush()
            again = backlog.pending()
        finally:
            backlog.close()
        expected = (_journal.ROTATE_BYTES, False, True, False)
        assert expected == (path.stat().st_size, drained, appended, again)

    def test_an_old_journal_without_padding_is_pending_until_drained(self, store_path):
        """A journal whose size is its data (written before the mapping) still counts."""
        done = worker("calls_then_kill", str(store_path), "3", "1")
        journal = parse(store_path).journal_dir
        assert journal is not None
        (path,) = journal.glob("*.jsonl")
        path.write_bytes(path.read_bytes().split(b"\0", 1)[0])  # as os.write left it
        backlog = Backlog(journal)
        try:
            waiting = backlog.pending()
            found = len(zt.find(step="tick"))
            after = backlog.pending()
        finally:
            backlog.close()
        expected = (-signal.SIGKILL, True, 3, False, [])
        actual = (done.returncode, waiting, found, after, list(journal.glob("*.jsonl")))
        assert expected == actual, done.stderr

    def test_scanning_leaks_no_descriptor(self, store_path):
        """50 backlogs scanned then closed (or dropped), 50 marker sweeps: no descriptor left."""
        import gc

        tick(i=1)
        journal = parse(store_path).journal_dir
        assert journal is not None
        before = open_descriptors()
        held = []
        for _ in range(50):
            backlog = Backlog(journal)
            backlog.scan()
            held.append(open_descriptors() - before)
            backlog.close()
            retire_dead_markers(journal)
        for _ in range(50):
            Backlog(journal).scan()  # dropped unclosed: its finalizer closes them
        gc.collect()
        expected = ([1] * 50, before)
        assert expected == (held, open_descriptors())

    def test_a_forked_backlog_closes_its_copies(self, store_path):
        """forget() in a child closes the descriptors it inherited; the parent's stay usable."""
        tick(i=1)
        journal = parse(store_path).journal_dir
        assert journal is not None
        backlog = Backlog(journal)
        try:
            backlog.scan()
            (fd,) = [fd for fd, _ in backlog._fds.values()]
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    backlog.forget()
                    try:
                        os.fstat(fd)
                        os.write(write, b"open")
                    except OSError:
                        os.write(write, b"closed")
                finally:
                    os._exit(0)
            os.close(write)
            os.waitpid(pid, 0)
            in_child = os.read(read, 16)
            os.close(read)
            expected = (b"closed", True)
            assert expected == (in_child, backlog.pending())
        finally:
            backlog.close()

    def test_threads_scanning_at_once_leak_and_misread_nothing(self, store_path):
        """8 threads scan one backlog while journals come and go: no descriptor left over."""
        import threading

        tick(i=1)
        journal = parse(store_path).journal_dir
        assert journal is not None
        before = open_descriptors()
        backlog = Backlog(journal)
        errors: list[str] = []
        stop = threading.Event()

        def scan() -> None:
            try:
                while not stop.is_set():
                    backlog.scan()
            except Exception as exc:  # EBADF: a descriptor closed under this thread
                errors.append(repr(exc))

        threads = [threading.Thread(target=scan) for _ in range(8)]
        for thread in threads:
            thread.start()
        for i in range(200):  # each new or deleted file makes every scan a full one
            planted = journal / f"host-{i}-0123abcd.jsonl"
            planted.write_bytes(b"")
            planted.unlink()
        stop.set()
        for thread in threads:
            thread.join()
        pending = backlog.pending()
        backlog.close()
        expected = ([], True, before)
        assert expected == (errors[:3], pending, open_descriptors())


EXIT_AFTER_A_SETTLED_READ = """
import os, sys
import zentrack as zt
from tests.reliability_workers import tick

zt.init(sys.argv[1])
tick(0)
zt.flush()
folder = sys.argv[1] + ".journal"
os.utime(folder, ns=(1, 1))  # unchanged for long: the next read trusts what it listed
zt.find(step="tick")  # a full scan that remembers the journal's descriptor
zt.find(step="tick")  # the shortcut through the remembered descriptor
for i in range(1, 4):
    tick(i)
"""


class TestExit:
    def test_exit_after_a_settled_read_writes_the_waiting_records(self, store_path, run_python):
        """Exit flushes through the scan: the descriptors must still be there at exit.

        (They were closed by an exit-time finalizer first: the exit flush then
        failed with a KeyError and left the records to the next process.)
        """
        zt.init(store_path.parent / "other.sqlite")  # this process stays out of the way
        done = run_python(EXIT_AFTER_A_SETTLED_READ, str(store_path))
        zt.init(store_path)
        found = sorted(r.params["i"] for r in zt.find(step="tick"))
        expected = (0, "", [0, 1, 2, 3])
        assert expected == (done.returncode, done.stderr.strip(), found)
