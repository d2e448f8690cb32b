"""Tests for zentrack._record.journal and _drain: a returned call's record is never lost."""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import zentrack as zt
from tests.small_disks import fill_disk, small_tmpfs
from tests.steps_for_tests import train
from zentrack._record import journal as _journal
from zentrack._record.backlog import Backlog
from zentrack._record.journal import JournalWriter, pending_chunks, writer_alive
from zentrack._record.line import parse_line
from zentrack._record.tracker import active
from zentrack._store.location import parse

CALLS = 7

KILLED_SCRIPT = """
import os, signal, sys
import zentrack as zt
from tests.steps_for_tests import train

zt.init(sys.argv[1])
for i in range(int(sys.argv[2])):
    train(b"data", lr=i / 10)
os.kill(os.getpid(), signal.SIGKILL)
"""

EXITING_SCRIPT = """
import sys
import zentrack as zt
from tests.steps_for_tests import train

zt.init(sys.argv[1])
for i in range(int(sys.argv[2])):
    train(b"data", lr=i / 10)
"""


def lrs(records):
    return sorted(r.params["lr"] for r in records)


class TestKilledProcess:
    def test_records_of_a_killed_process_are_recovered(self, run_python, store_path):
        """After SIGKILL, init on the same store writes every call that had returned."""
        done = run_python(KILLED_SCRIPT, str(store_path), str(CALLS))
        expected = -signal.SIGKILL
        assert expected == done.returncode, done.stderr
        zt.init(store_path)
        expected = [i / 10 for i in range(CALLS)]
        assert expected == lrs(zt.find(step="train"))

    def test_recovery_adds_no_duplicates(self, run_python, store_path, plain_store):
        """Repeated inits and flushes after recovery write each record exactly once."""
        run_python(KILLED_SCRIPT, str(store_path), str(CALLS))
        zt.init(store_path)
        flushed = [zt.flush(), zt.flush()]
        zt.init(store_path)
        flushed.append(zt.flush())
        executions = plain_store().get_executions_by_type("zentrack.step.train")
        expected = ([0, 0, 0], CALLS, CALLS)
        actual = (flushed, len(executions), len({e.external_id for e in executions}))
        assert expected == actual

    def test_flush_recovers_without_init(self, run_python, store_path):
        """A plain flush() in another process also picks up a dead process's journal."""
        run_python(KILLED_SCRIPT, str(store_path), str(CALLS))
        expected = CALLS
        assert expected == zt.flush()


class TestNormalExit:
    def test_records_are_in_mlmd_right_after_exit(self, run_python, store_path, plain_store):
        """A process that exits normally leaves its records readable by plain MLMD."""
        done = run_python(EXITING_SCRIPT, str(store_path), str(CALLS))
        expected = (0, CALLS)
        actual = (
            done.returncode,
            len(plain_store().get_executions_by_type("zentrack.step.train")),
        )
        assert expected == actual, done.stderr


class TestReplay:
    def test_replaying_a_journal_adds_no_duplicates(self, store_path):
        """Lines already in the store are recognised by record id when replayed."""
        for lr in (0.1, 0.2, 0.3):
            train(b"data", lr=lr)
        first = zt.flush()
        journal_dir = parse(store_path).journal_dir
        for offset in journal_dir.glob("*.offset"):
            offset.unlink()  # as if the process died between writing MLMD and the offset
        expected = (3, 0, [0.1, 0.2, 0.3])
        actual = (first, zt.flush(), lrs(zt.find(step="train")))
        assert expected == actual


class TestJournalWriter:
    def test_appended_lines_are_pending_while_writer_lives(self, tmp_path):
        """Complete lines are pending; the writer holds the journal until closed."""
        writer = JournalWriter(tmp_path / "journal")
        writer.append(b'{"a":1}\n')
        writer.append(b'{"b":2}\n')
        (chunk,) = pending_chunks(tmp_path / "journal")
        alive = writer_alive(chunk.path)
        writer.close()
        expected = ([b'{"a":1}', b'{"b":2}'], True, False)
        assert expected == (chunk.lines, alive, writer_alive(chunk.path))

    def test_threads_appending_across_rotations_lose_no_line(self, tmp_path, monkeypatch):
        """8 threads append while the journal rotates every 4 kB: every line lands intact."""
        import threading

        from zentrack._record import journal as _journal

        monkeypatch.setattr(_journal, "ROTATE_BYTES", 4096)
        writer = JournalWriter(tmp_path / "journal")
        errors: list[str] = []

        def work(w: int) -> None:
            try:
                for i in range(2000):
                    writer.append(b'{"w":%d,"i":%d}\n' % (w, i))
            except OSError as exc:  # EBADF: a descriptor closed under another thread
                errors.append(repr(exc))

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # threads switch as often as they can
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
        writer.close()
        lines = [ln for c in pending_chunks(tmp_path / "journal") for ln in c.lines]
        expected = (
            [],
            16_000,
            sorted(b'{"w":%d,"i":%d}' % (w, i) for w in range(8) for i in range(2000)),
        )
        assert expected == (errors, len(lines), sorted(lines))

    def test_a_line_written_through_a_mapping_released_meanwhile_goes_to_the_next_file(
        self, tmp_path, monkeypatch
    ):
        """Thread A takes the mapping, thread B rotates, then A writes: A's line is not lost.

        The released file is cut back to its data, so a write into its old
        mapping would land past its end (a ``SIGBUS``); it is refused and goes
        to the new file instead.
        """
        import threading

        monkeypatch.setattr(_journal, "ROTATE_BYTES", 4096)
        directory = tmp_path / "journal"
        writer = JournalWriter(directory)
        writer.append(b'{"first":1}\n')
        real = writer._mm
        fill = b'{"fill":"%s"}\n' % (b"z" * 4073)  # 4,085 bytes: fits only in a new file

        class TakenBeforeTheRotation:
            def write(self, data: bytes) -> int:
                writer._mm = real
                other = threading.Thread(target=writer.append, args=(fill,))
                other.start()
                other.join()
                assert real is not None
                return real.write(data)  # the mapping B just released

        writer._mm = TakenBeforeTheRotation()  # type: ignore[assignment]
        writer.append(b'{"late":2}\n')
        writer.close()
        expected = (
            sorted([b'{"first":1}\n', fill + b'{"late":2}\n']),
            sorted([b'{"first":1}', fill[:-1], b'{"late":2}']),
        )
        actual = (
            sorted(p.read_bytes() for p in journals(directory)),
            sorted(ln for c in pending_chunks(directory) for ln in c.lines),
        )
        assert expected == actual

    def test_partial_last_line_of_a_dead_writer_is_skipped(self, tmp_path):
        """A line cut short by a kill (no newline) is not returned as a record."""
        directory = tmp_path / "journal"
        directory.mkdir()
        (directory / "host-1-dead.jsonl").write_bytes(b'{"a":1}\n{"b":')
        (chunk,) = pending_chunks(directory)
        expected = ([b'{"a":1}'], False)
        assert expected == (chunk.lines, chunk.writer_alive)

    def test_journal_of_a_finished_writer_is_removed_once_drained(self, store_path):
        """After its writer is gone and its lines are stored, a journal file is deleted."""
        train(b"data")
        zt.init(store_path)  # closes the previous tracker's journal, then drains it
        zt.flush()
        expected = []
        assert expected == list(parse(store_path).journal_dir.glob("*.jsonl"))


def journals(directory: Path) -> list[Path]:
    """The journal files of ``directory`` (in no particular order: names are random)."""
    return sorted(directory.glob("*.jsonl"))


def data_of(path: Path) -> bytes:
    """A journal's data: its bytes up to the first NUL (unwritten capacity)."""
    return path.read_bytes().split(b"\0", 1)[0]


def killed_journal(run_python, store_path: Path) -> Path:
    """The journal a writer SIGKILLed after :data:`CALLS` returned calls left behind."""
    done = run_python(KILLED_SCRIPT, str(store_path), str(CALLS))
    assert done.returncode == -signal.SIGKILL, done.stderr
    directory = parse(store_path).journal_dir
    assert directory is not None
    (path,) = directory.glob("*.jsonl")
    return path


class TestMappedJournal:
    def test_a_killed_writers_zero_padded_journal_is_drained_and_retired(
        self, run_python, store_path
    ):
        """SIGKILL after N returned calls: its file is capacity-sized, zero-padded; all N stored."""
        path = killed_journal(run_python, store_path)
        raw = path.read_bytes()
        data = data_of(path)
        directory = path.parent
        backlog = Backlog(directory)
        try:
            waiting = backlog.pending()
            (chunk,) = pending_chunks(directory)
            written = zt.flush()
            after = backlog.pending()
        finally:
            backlog.close()
        expected = (
            (_journal.ROTATE_BYTES, True, CALLS),
            (True, CALLS, False),
            (CALLS, False, [], [i / 10 for i in range(CALLS)]),
        )
        actual = (
            (len(raw), raw[len(data) :] == bytes(len(raw) - len(data)), data.count(b"\n")),
            (waiting, len(chunk.lines), chunk.writer_alive),
            (written, after, list(directory.glob("*.jsonl")), lrs(zt.find(step="train"))),
        )
        assert expected == actual

    def test_a_torn_last_line_with_a_zero_gap_is_skipped(self, run_python, store_path):
        """A kill mid-copy may leave a line's tail without its middle: the lines before it count.

        The torn line (a call that never returned) is skipped, the journal retired.
        """
        path = killed_journal(run_python, store_path)
        lines = data_of(path).splitlines(keepends=True)
        torn = lines[3][:40] + bytes(25) + lines[3][65:]
        padded = b"".join(lines[:3]) + torn
        path.write_bytes(padded + bytes(_journal.ROTATE_BYTES - len(padded)))
        (chunk,) = pending_chunks(path.parent)
        expected = (3, 3, [0.0, 0.1, 0.2], [])
        actual = (len(chunk.lines), zt.flush(), lrs(zt.find(step="train")), journals(path.parent))
        assert expected == actual

    def test_the_journal_rotates_at_its_capacity(self, tmp_path, monkeypatch):
        """Full files are cut back to their data; the current one is mapped at full capacity."""
        monkeypatch.setattr(_journal, "ROTATE_BYTES", 4096)
        directory = tmp_path / "journal"
        writer = JournalWriter(directory)
        line = b'{"n":"%s"}' % (b"x" * 91) + b"\n"  # 100 bytes: 40 fill a file
        for _ in range(100):
            writer.append(line)
        open_files = sorted((p.stat().st_size, writer_alive(p)) for p in journals(directory))
        writer.close()
        closed_sizes = sorted(p.stat().st_size for p in journals(directory))
        count = sum(len(c.lines) for c in pending_chunks(directory))
        expected = ([(4000, False), (4000, False), (4096, True)], [2000, 4000, 4000], 100)
        assert expected == (open_files, closed_sizes, count)

    def test_a_line_larger_than_the_capacity_gets_a_file_of_its_own(self, tmp_path, monkeypatch):
        """A 10 kB line with a 4 kB capacity: its own file, exactly its size; nothing lost."""
        monkeypatch.setattr(_journal, "ROTATE_BYTES", 4096)
        directory = tmp_path / "journal"
        writer = JournalWriter(directory)
        big = b'{"big":"%s"}\n' % (b"y" * 10_000)
        for line in (b'{"a":1}\n', big, b'{"b":2}\n'):
            writer.append(line)
        writer.close()
        expected = ([8, 8, len(big)], sorted([b'{"a":1}', big[:-1], b'{"b":2}']))
        actual = (
            sorted(p.stat().st_size for p in journals(directory)),
            sorted(ln for c in pending_chunks(directory) for ln in c.lines),
        )
        assert expected == actual

    @pytest.mark.parametrize("drainer", ["deleted", "deleting"])
    def test_a_new_journal_retired_before_it_is_locked_is_replaced(
        self, tmp_path, monkeypatch, drainer
    ):
        """A drainer may retire a new, not yet locked (so "dead") empty journal: lines go on.

        It has deleted the file by the time the writer locks it, or holds the
        file's lock while deleting it: either way the writer makes another.
        """
        import fcntl

        directory = tmp_path / "journal"
        real_flock = fcntl.flock
        retired: list[str] = []
        held: list[int] = []

        def drainer_first(fd: int, operation: int) -> None:
            if not retired:
                (path,) = directory.glob("*.jsonl")
                retired.append(path.name)
                if drainer == "deleting":
                    held.append(os.open(path, os.O_RDONLY))
                    real_flock(held[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
                path.unlink()
            real_flock(fd, operation)

        monkeypatch.setattr(fcntl, "flock", drainer_first)
        writer = JournalWriter(directory)
        writer.append(b'{"a":1}\n')
        monkeypatch.undo()
        for fd in held:
            os.close(fd)
        files = [p.name for p in journals(directory)]
        lines = [ln for c in pending_chunks(directory) for ln in c.lines]
        writer.close()
        expected = (1, 1, False, [b'{"a":1}'])
        actual = (len(retired), len(files), retired[0] in files, lines)
        assert expected == actual

    @pytest.mark.parametrize("failing", ["posix_fallocate", "mmap"])
    def test_a_file_system_that_cannot_map_gets_os_write(
        self, store_path, monkeypatch, failing
    ):
        """fallocate or mmap unsupported: lines are appended with os.write, and drained."""

        def unsupported(*args: object, **kwargs: object) -> None:
            raise OSError(errno.EOPNOTSUPP if failing != "mmap" else errno.ENODEV, "unsupported")

        if failing == "mmap":
            monkeypatch.setattr(_journal.mmap, "mmap", unsupported)
        else:
            monkeypatch.setattr(os, "posix_fallocate", unsupported)
        zt.init(store_path)  # a new tracker: a new journal writer
        for lr in (0.1, 0.2, 0.3):
            train(b"data", lr=lr)
        directory = parse(store_path).journal_dir
        assert directory is not None
        waiting = active().pending()
        sizes = [(p.stat().st_size, len(data_of(p))) for p in journals(directory)]
        ((size, data),) = [pair for pair in sizes if pair[1]]  # the first file is left empty
        expected = (3, size, 3, [0.1, 0.2, 0.3])
        actual = (waiting, data, zt.flush(), lrs(zt.find(step="train")))
        assert expected == actual

    def test_a_full_journal_disk_sends_records_straight_to_the_store(
        self, store_path, journal_disk, plain_store
    ):
        """No room to reserve a journal's blocks: each call's record is in the store on return."""
        fill_disk(journal_disk / "filler")
        zt.init(store_path)
        for lr in (0.1, 0.2):
            train(b"data", lr=lr)
        stored = len(plain_store().get_executions_by_type("zentrack.step.train"))
        (journal_disk / "filler").unlink()
        train(b"data", lr=0.3)
        expected = (2, 1, [0.1, 0.2, 0.3])
        actual = (stored, zt.flush(), lrs(zt.find(step="train")))
        zt.init(store_path.with_name("elsewhere.sqlite"))  # let go of the small disk
        assert expected == actual

    def test_a_forked_childs_appends_go_to_its_own_journal(self, store_path):
        """The child neither truncates nor writes the parent's mapped journal."""
        train(b"data", lr=0.1)
        directory = parse(store_path).journal_dir
        assert directory is not None
        (parents,) = journals(directory)
        pid = os.fork()
        if pid == 0:  # the child: two calls, then exit without any cleanup
            try:
                train(b"data", lr=0.2)
                train(b"data", lr=0.3)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        train(b"data", lr=0.4)
        files = journals(directory)
        chunks = list(pending_chunks(directory))
        expected = (
            0,
            _journal.ROTATE_BYTES,
            2,
            2,
            [[0.1, 0.4], [0.2, 0.3]],
            4,
            [0.1, 0.2, 0.3, 0.4],
        )
        actual = (
            os.waitstatus_to_exitcode(status),
            parents.stat().st_size,
            len(files),
            data_of(parents).count(b"\n"),
            sorted([json.loads(ln)["p"]["lr"] for ln in c.lines] for c in chunks),
            zt.flush(),
            lrs(zt.find(step="train")),
        )
        assert expected == actual


@pytest.fixture
def journal_disk(store_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted as the store's journal folder (skips where mounting is not allowed)."""
    directory = parse(store_path).journal_dir
    assert directory is not None
    zt.init(store_path.with_name("elsewhere.sqlite"))  # the store's own tracker lets go
    directory.mkdir(exist_ok=True)
    for leftover in directory.iterdir():
        leftover.unlink()
    with small_tmpfs(directory):
        yield directory


PLAIN_LINE = {
    "v": 1, "id": "fc2e-0", "fp": "a" * 64, "p": {"x": 5}, "i": {"d": "=1"}, "st": "COMPLETE",
    "t0": 1, "t1": 2, "step": "f", "src": "m.f", "code": "abc", "cp": {"self": "15"}, "ver": None,
}  # fmt: skip
WRONG = [None, 0, 1.5, True, "", "x" * 201, "A" * 64, "é\n", [], {}, {"a": 1}, "BOGUS"]


class TestLineSchema:
    """Every line a drain reads is held to its schema, the plain call's line included."""

    def test_a_plain_call_line_reads_back(self):
        """The line a plain call writes is accepted as it is."""
        assert parse_line(json.dumps(PLAIN_LINE)) == PLAIN_LINE

    @pytest.mark.parametrize("key", [k for k in PLAIN_LINE if k != "v"])
    def test_a_wrong_value_is_refused_naming_its_key(self, key):
        """Wrong values of each key (any JSON type, too long, bad text): ValueError naming it."""
        texts = ["", "x" * 201, "A" * 64, "é\n", "BOGUS"]
        accepted = {
            "id": ["A" * 64, "BOGUS"], "step": ["A" * 64, "BOGUS"], "p": [None, {}, {"a": 1}],
            "i": [None, {}], "cp": [None, {}], "t0": [0], "t1": [0],
            "src": texts, "code": texts, "ver": [None, *texts],
        }.get(key, [])  # fmt: skip
        refused = []
        for value in WRONG:
            try:
                parse_line(json.dumps({**PLAIN_LINE, key: value}))
            except ValueError as exc:
                refused.append(value)
                assert repr(key) in str(exc)
        assert [v for v in WRONG if v not in accepted] == refused

    @pytest.mark.parametrize("key", ["id", "fp", "p", "st", "step"])
    def test_a_missing_required_key_is_refused(self, key):
        """A step line without one of its required keys is refused, naming the key."""
        line = {k: v for k, v in PLAIN_LINE.items() if k != key}
        with pytest.raises(ValueError, match=f"no '{key}'"):
            parse_line(json.dumps(line))


def test_a_writer_whose_new_files_are_always_taken_gives_up(tmp_path, monkeypatch):
    """Every new file locked by someone else at once: an OSError after a bounded number of tries.

    The tracker then writes the line straight to the store (past_journal); the
    call must not spin forever creating files.
    """
    made: list[int] = []

    def always_taken(fd: int, operation: int) -> None:
        made.append(fd)
        raise BlockingIOError("held by another process")

    monkeypatch.setattr(_journal.fcntl, "flock", always_taken)
    writer = JournalWriter(tmp_path / "journal")
    with pytest.raises(OSError, match="no new journal file") as raised:
        writer.append(b'{"a":1}\n')
    expected = (_journal._OPEN_TRIES, _journal.errno.EAGAIN)
    assert expected == (len(made), raised.value.errno)
