"""Crash safety: a record of a call that has returned is never lost, never doubled.

Real processes are killed with real signals at the worst moments: right after
their last tracked call, in the middle of a drain (the ``.inflight`` window),
right after a chosen MLMD write, and in the middle of a pipeline run.  Counts
are checked through zentrack's reads and through a plain ``ml_metadata``
reader.  Worker commands live in ``tests/reliability_workers.py``.
"""

from __future__ import annotations

import json
import select
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter

import pytest

import zentrack as zt
from tests.reliability_workers import (
    note,
    output,
    record_census,
    start_drainer,
    start_worker,
    tick,
    tick_params,
    wait_for,
    worker,
)
from zentrack._store.location import parse

#: Calls made by a process that is then SIGKILLed (more than one batch of 1000).
CALLS = 1500
#: Records left in a journal for a drainer to be killed on.
BACKLOG = 20_000


class Boom(Exception):
    """The error a step raises to fail a pipeline."""


def journal_dir(store_path):
    return parse(store_path).journal_dir


def offsets(store_path):
    """The drained offset of every journal: it moves once a batch is committed."""
    return {p.name: p.read_text() for p in journal_dir(store_path).glob("*.offset")}


class TestKilledWriter:
    @pytest.mark.parametrize("recovery", ["init", "flush", "read"])
    def test_every_returned_call_of_a_sigkilled_process_is_recovered(
        self, store_path, plain_store, recovery
    ):
        """A process SIGKILLed after N calls leaves N records, found by init, flush or a read."""
        done = worker("calls_then_kill", str(store_path), str(CALLS))
        if recovery == "init":
            zt.init(store_path)
        elif recovery == "flush":
            zt.flush()
        found = zt.find(step="tick")
        expected = (-signal.SIGKILL, [(0, i) for i in range(CALLS)], (CALLS, CALLS))
        actual = (done.returncode, tick_params(found), record_census(plain_store))
        assert expected == actual, done.stderr
        lost = CALLS - len(found)
        note("sigkill after calls", recovery=recovery, processes=1, calls=CALLS, lost=lost)

    def test_replays_from_this_and_another_process_add_no_duplicates(self, store_path, plain_store):
        """init+flush three times, then another process's init+flush, write each record once."""
        done = worker("calls_then_kill", str(store_path), str(CALLS))
        flushed = []
        for _ in range(3):
            zt.init(store_path)
            flushed.append(zt.flush())
        second = worker("flush", str(store_path))
        zt.init(store_path)
        flushed.append(zt.flush())
        expected = (-signal.SIGKILL, [0, 0, 0, 0], {"flushed": 0, "found": CALLS}, (CALLS, CALLS))
        actual = (done.returncode, flushed, output(second), record_census(plain_store))
        executions, distinct = record_census(plain_store)
        note(
            "replay after recovery",
            processes=2,
            calls=CALLS,
            repetitions=4,
            duplicates=executions - distinct,
            lost=CALLS - distinct,
        )
        assert expected == actual, second.stderr

    def test_sigkill_with_a_background_drainer_running_loses_nothing(self, store_path, plain_store):
        """Killed right after its calls, while its own background drainer may be mid-write."""
        done = worker("calls_then_kill", str(store_path), "2500")
        found = zt.find(step="tick")
        expected = (-signal.SIGKILL, [(0, i) for i in range(2500)], (2500, 2500))
        actual = (done.returncode, tick_params(found), record_census(plain_store))
        assert expected == actual, done.stderr


class TestKilledDrainer:
    def test_drainer_sigkilled_mid_drain_three_times_loses_and_doubles_nothing(
        self, store_path, plain_store
    ):
        """`python -m zentrack._record.drain` SIGKILLed mid-batch, thrice: exact count after."""
        done = worker("calls_then_kill", str(store_path), str(BACKLOG), "1")
        marker = journal_dir(store_path) / ".inflight"
        killed, markers = [], []
        for delay in (0.0, 0.05, 0.15):
            before = offsets(store_path)
            drainer = start_drainer(store_path)
            try:
                wait_for(
                    lambda b=before, d=drainer: offsets(store_path) != b or d.poll() is not None,
                    what="a drainer's first committed batch",
                )
                time.sleep(delay)
                drainer.send_signal(signal.SIGKILL)
                killed.append(drainer.wait(timeout=30))
            finally:
                if drainer.poll() is None:
                    drainer.kill()
            markers.append(marker.exists())
        zt.init(store_path)
        found = zt.find(step="tick")
        expected = (
            -signal.SIGKILL,
            [-signal.SIGKILL] * 3,
            [(0, i) for i in range(BACKLOG)],
            (BACKLOG, BACKLOG),
        )
        actual = (done.returncode, killed, tick_params(found), record_census(plain_store))
        note(
            "drainer sigkilled mid-drain",
            backlog=BACKLOG,
            kills=3,
            inflight_marker_left=markers,
            lost=BACKLOG - len(found),
        )
        assert expected == actual

    @pytest.mark.parametrize(
        "method",
        [
            "put_contexts",
            "put_executions",
            "insert",
            "put_attributions_and_associations",
            "put_artifacts",
            "put_events",
        ],
    )
    def test_crash_right_after_an_mlmd_write_is_repaired_by_the_next_flush(
        self, store_path, plain_store, method
    ):
        """Killed after an MLMD commit but before its offsets: runs, steps and lineage complete."""
        runs, per_run = 3, 200
        produced = worker("runs_then_kill", str(store_path), str(runs), str(per_run))
        crashed = worker("crash_after", str(store_path), method)
        zt.init(store_path)
        found = zt.find(step="produce")
        store = plain_store()
        executions = store.get_executions()
        events = store.get_events_by_execution_ids([e.id for e in executions])
        outputs = Counter(e.execution_id for e in events if e.type == e.OUTPUT)
        lineage = {
            "without an OUTPUT event": sum(1 for e in executions if e.id not in outputs),
            "with several": sum(1 for n in outputs.values() if n > 1),
        }
        expected = (
            (-signal.SIGKILL, -signal.SIGKILL),
            list(range(runs * per_run)),
            {"without an OUTPUT event": 0, "with several": 0},
            [("COMPLETE", per_run)] * runs,
            (runs * per_run, runs * per_run),
        )
        actual = (
            (produced.returncode, crashed.returncode),
            sorted(r.params["i"] for r in found),
            lineage,
            [(r.state, len(r.steps)) for r in zt.runs(pipeline="produce_run")],
            record_census(plain_store),
        )
        note(
            f"crash right after {method}",
            records=runs * per_run,
            lost=runs * per_run - len(found),
            **lineage,
        )
        assert expected == actual, crashed.stdout + crashed.stderr


class TestInterruptedPipeline:
    def test_sigkilled_pipeline_run_is_failed_after_the_next_read(self, store_path):
        """A run whose process was SIGKILLed reads back FAILED (not RUNNING) with its 3 steps."""
        done = worker("pipeline_then_kill", str(store_path), "3")
        (run,) = zt.runs(pipeline="killed")
        expected = (-signal.SIGKILL, "FAILED", [0, 1, 2], True)
        actual = (
            done.returncode,
            run.state,
            [s.params["i"] for s in run.steps],
            "killed" in (run.error or ""),
        )
        assert expected == actual, done.stderr

    @pytest.mark.parametrize(
        ("sig", "state", "exit_code", "raised"),
        [
            (signal.SIGTERM, "CANCELED", 128 + signal.SIGTERM, "SystemExit"),
            (signal.SIGINT, "CANCELED", -signal.SIGINT, "KeyboardInterrupt"),
        ],
        ids=["SIGTERM", "SIGINT"],
    )
    def test_signal_during_a_pipeline_ends_its_run_with_completed_steps(
        self, store_path, tmp_path, sig, state, exit_code, raised
    ):
        """SIGTERM/SIGINT mid-run: the run is CANCELED and its completed steps are recorded."""
        ready = tmp_path / "ready"
        child = start_worker("pipeline_waiting", str(store_path), "3", str(ready))
        try:
            wait_for(lambda: ready.exists() or child.poll() is not None, what="the pipeline")
            child.send_signal(sig)
            stdout, stderr = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
        (run,) = zt.runs(pipeline="counting")
        expected = (exit_code, raised, state, [0, 1, 2])
        actual = (
            child.returncode,
            json.loads(stdout.splitlines()[-1])["raised"] if stdout.strip() else None,
            run.state,
            [s.params["i"] for s in run.steps],
        )
        assert expected == actual, stderr

    def test_unhandled_exception_fails_the_run_and_propagates_unchanged(self):
        """The very exception object reaches the caller; the run is FAILED with both steps."""

        @zt.step(cache=False)
        def fine(x: int = 1) -> int:
            return x

        @zt.step(cache=False)
        def broken(x: int = 2) -> int:
            raise error

        @zt.pipeline
        def doomed() -> None:
            fine()
            broken()

        error = Boom("disk on fire")
        with pytest.raises(Boom) as info:
            doomed()
        (run,) = zt.runs(pipeline="doomed")
        frames = [frame.name for frame in info.traceback]
        expected = (
            True,
            ("disk on fire",),
            True,
            "FAILED",
            "Boom: disk on fire",
            [
                ("fine", "COMPLETE"),
                ("broken", "FAILED"),
            ],
        )
        actual = (
            info.value is error,
            info.value.args,
            "broken" in frames,
            run.state,
            run.error,
            [(s.step, s.state) for s in run.steps],
        )
        assert expected == actual


class TestStuckWriterLock:
    def test_a_stopped_drainer_does_not_hang_other_processes(self, store_path):
        """While a drainer holding the writer lock is SIGSTOPped, calls return and exit is bounded.

        The calls get 15 s to return (they need milliseconds); the process then
        gets 45 s to exit, room for a bounded wait on the lock at exit.
        """
        worker("calls_then_kill", str(store_path), "3000", "1")
        marker = journal_dir(store_path) / ".inflight"
        drainer = start_drainer(store_path)
        child = None
        try:
            wait_for(lambda: marker.exists() or drainer.poll() is not None, what="a drain")
            drainer.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            child = start_worker("implicit_calls", "5", env={"ZENTRACK_STORE": str(store_path)})
            ready, _, _ = select.select([child.stdout], [], [], 15)
            line = child.stdout.readline() if ready else ""
            returned = json.loads(line)["returned"] if line.startswith("{") else "blocked 15 s"
            calls_waited = time.monotonic() - started
            try:
                exit_code = child.wait(timeout=45 if line else 0.1)
            except subprocess.TimeoutExpired:
                exit_code = "did not exit in 45 s" if line else "still blocked"
            waited = time.monotonic() - started
        finally:
            for process in (child, drainer):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
        zt.init(store_path)
        found = len(zt.find(step="tick"))
        note(
            "stopped drainer holds writer lock",
            returned=returned,
            exit_code=exit_code,
            calls_waited=round(calls_waited, 1),
            waited=round(waited, 1),
            in_store_afterwards=found,
        )
        expected = (5, 0, 3005)
        actual = (returned, exit_code, found)
        assert expected == actual

    def test_a_flush_blocked_by_a_held_lock_names_the_holder_and_keeps_the_records(
        self, store_path, monkeypatch
    ):
        """A lock held past ZENTRACK_LOCK_TIMEOUT: StoreError with pid and fix; nothing lost."""
        monkeypatch.setenv("ZENTRACK_LOCK_TIMEOUT", "0.5")
        tracker = zt.init(store_path)
        tracker.batch_size, tracker.max_age = 10**9, 3600.0
        holder = start_worker("hold_writer_lock", str(store_path))
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            for i in range(3):
                assert tick(i=i) == i * 2
            with pytest.raises(zt.exceptions.StoreError) as raised:
                zt.flush()
            waiting = tracker.pending()
        finally:
            holder.kill()
            holder.wait(timeout=30)
        message = str(raised.value)
        expected = (True, True, True, 3, 3, [0, 1, 2])
        actual = (
            f"process {holder.pid}" in message,
            str(parse(str(store_path)).lock_path) in message,
            "ZENTRACK_LOCK_TIMEOUT" in message,
            waiting,
            zt.flush(),
            sorted(r.params["i"] for r in zt.find(step="tick")),
        )
        assert expected == actual, message


class TestStoreFile:
    def test_a_copy_of_the_store_file_holds_every_record_after_the_writer_exits(
        self, store_path, tmp_path
    ):
        """After the writer exits, a copy of metadata.sqlite alone (a backup) has every record."""
        done = worker("calls", str(store_path), "200", "3")
        copy = tmp_path / "copy.sqlite"
        shutil.copy2(store_path, copy)
        connection = sqlite3.connect(copy)
        try:
            rows = connection.execute("SELECT COUNT(*) FROM Execution").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            rows = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        leftovers = sorted(p.name[len(store_path.name) :] for p in store_path.parent.glob("*-wal"))
        note("copy of the store file after exit", executions=200, in_copy=rows, wal=leftovers)
        expected = (0, 200, [])
        assert expected == (done.returncode, rows, leftovers), done.stderr
