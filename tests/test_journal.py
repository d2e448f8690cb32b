"""Tests for zentrack._record.journal and _drain: a returned call's record is never lost."""

from __future__ import annotations

import json
import signal

import pytest

import zentrack as zt
from tests.steps_for_tests import train
from zentrack._record.journal import JournalWriter, pending_chunks, writer_alive
from zentrack._record.line import parse_line
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
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        writer.close()
        lines = [ln for c in pending_chunks(tmp_path / "journal") for ln in c.lines]
        expected = (
            [],
            16_000,
            sorted(b'{"w":%d,"i":%d}' % (w, i) for w in range(8) for i in range(2000)),
        )
        assert expected == (errors, len(lines), sorted(lines))

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
