"""Many writers on one SQLite store: processes, threads, process pools and Dask.

Every writer makes tracked calls of ``tests.reliability_workers.tick``; the
test then counts the executions through zentrack and through a plain
``ml_metadata`` reader, and checks that every (worker, call) pair is there
exactly once.  The pauses workers measured between their calls are written
to ``$ZENTRACK_RELIABILITY_LOG`` for ``docs/reliability.md``, not asserted.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import subprocess
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

import zentrack as zt
from tests.reliability_workers import (
    ROOT,
    child_env,
    command,
    note,
    output,
    record_census,
    tick,
    tick_params,
    worker,
)

PROCESSES = 8
CALLS_PER_PROCESS = 1000
THREADS = 8
CALLS_PER_THREAD = 200
POOL_TASKS = 200


def run_together(commands, timeout=120):
    """Start every command at once; return (exit code, stdout, stderr, wall seconds) of each."""
    started = time.monotonic()
    children = [
        subprocess.Popen(
            command(*cmd),
            env=child_env(None),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for cmd in commands
    ]
    results = []
    try:
        for child in children:
            stdout, stderr = child.communicate(timeout=timeout)
            results.append((child.returncode, stdout, stderr, time.monotonic() - started))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    return results


class TestManyProcesses:
    def test_eight_processes_of_a_thousand_calls_each_write_exactly_8000(
        self, store_path, plain_store
    ):
        """8 processes x 1000 calls on one SQLite store: 8000 records, no error, no duplicate."""
        results = run_together(
            [("calls", str(store_path), str(CALLS_PER_PROCESS), str(w)) for w in range(PROCESSES)]
        )
        reports = [json.loads(stdout.splitlines()[-1]) for _, stdout, _, _ in results]
        found = zt.find(step="tick")
        expected = (
            [0] * PROCESSES,
            [""] * PROCESSES,
            [CALLS_PER_PROCESS] * PROCESSES,
            [(w, i) for w in range(PROCESSES) for i in range(CALLS_PER_PROCESS)],
            (PROCESSES * CALLS_PER_PROCESS,) * 2,
        )
        actual = (
            [code for code, _, _, _ in results],
            [stderr for _, _, stderr, _ in results],
            [r["returned"] for r in reports],
            tick_params(found),
            record_census(plain_store),
        )
        note(
            "8 processes x 1000 calls",
            processes=PROCESSES,
            calls=CALLS_PER_PROCESS,
            lost=PROCESSES * CALLS_PER_PROCESS - len(found),
            max_pause=max(r["max_pause"] for r in reports),
            calls_elapsed=max(r["elapsed"] for r in reports),
            slowest_process_wall=max(wall for _, _, _, wall in results),
        )
        assert expected == actual

    def test_four_processes_sigkilled_at_once_are_all_recovered(self, store_path, plain_store):
        """4 writers of 1500 calls each SIGKILL themselves at once: 6000 records afterwards."""
        count = 1500
        results = run_together(
            [("calls_then_kill", str(store_path), str(count), "0", str(w)) for w in range(4)]
        )
        found = zt.find(step="tick")
        expected = (
            [-signal.SIGKILL] * 4,
            [(w, i) for w in range(4) for i in range(count)],
            (4 * count, 4 * count),
        )
        actual = (
            [code for code, _, _, _ in results],
            tick_params(found),
            record_census(plain_store),
        )
        note("4 processes sigkilled at once", processes=4, calls=count, lost=4 * count - len(found))
        assert expected == actual


class TestThreads:
    def test_threads_in_one_process_are_all_recorded(self, store_path, plain_store):
        """8 threads x 200 calls in this process: 1600 records, each exactly once."""
        errors, pauses = [], []

        def work(w):
            longest, last = 0.0, time.perf_counter()
            try:
                for i in range(CALLS_PER_THREAD):
                    tick(i=i, worker=w)
                    now = time.perf_counter()
                    longest, last = max(longest, now - last), now
            except Exception as exc:  # collected: the test expects none
                errors.append(repr(exc))
            pauses.append(longest)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        found = zt.find(step="tick")
        expected = (
            [],
            [(w, i) for w in range(THREADS) for i in range(CALLS_PER_THREAD)],
            (THREADS * CALLS_PER_THREAD,) * 2,
        )
        actual = (errors, tick_params(found), record_census(plain_store))
        note(
            "8 threads x 200 calls", threads=THREADS, calls=CALLS_PER_THREAD, max_pause=max(pauses)
        )
        assert expected == actual

    def test_threads_in_a_process_that_exits_are_all_recorded(self, store_path, plain_store):
        """8 threads x 2000 calls in a worker that then exits normally: 16000 records."""
        done = worker("threads", str(store_path), str(THREADS), "2000")
        report = output(done)
        found = zt.find(step="tick")
        expected = (0, [], [(w, i) for w in range(THREADS) for i in range(2000)])
        actual = (done.returncode, report.get("errors"), tick_params(found))
        note("8 threads x 2000 calls, subprocess", threads=THREADS, calls=2000, **report)
        assert expected == actual, done.stderr


def _square_in_worker(i):
    """Runs in a pool worker: one tracked call."""
    return tick(i=i, worker=99)


class TestProcessPools:
    @pytest.mark.parametrize(
        ("method", "initialise"),
        [("fork", False), ("spawn", False), ("forkserver", False), ("spawn", True)],
        ids=["fork", "spawn", "forkserver", "spawn-with-initializer"],
    )
    def test_pool_workers_calls_are_recorded_in_the_parents_store(
        self, store_path, tmp_path, monkeypatch, method, initialise
    ):
        """ProcessPoolExecutor workers' tracked calls are all in the store the parent chose."""
        monkeypatch.chdir(tmp_path)  # a worker that falls back to ./.zentrack writes here
        options = {"initializer": zt.init, "initargs": (str(store_path),)} if initialise else {}
        started = time.monotonic()
        with ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context(method), **options
        ) as pool:
            results = list(pool.map(_square_in_worker, range(POOL_TASKS), chunksize=10))
        wall = time.monotonic() - started
        found = zt.find(step="tick")
        stray = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob(".zentrack/*"))
        expected = (True, POOL_TASKS, POOL_TASKS, [])
        actual = (
            results == [i * 2 + 99 for i in range(POOL_TASKS)],
            len(found),
            len({r.params["i"] for r in found}),
            stray,
        )
        note(
            f"ProcessPoolExecutor {method}" + (" + initializer" if initialise else ""),
            workers=2,
            calls=POOL_TASKS,
            wall=wall,
            lost=POOL_TASKS - len(found),
            stray=stray,
        )
        assert expected == actual


class TestDask:
    @pytest.mark.parametrize("how", ["ZENTRACK_STORE", "init only"])
    def test_dask_local_cluster_workers_are_all_recorded(
        self, store_path, tmp_path, monkeypatch, how
    ):
        """A Dask LocalCluster (2 worker processes) runs 400 tracked calls: all 400 are stored."""
        pytest.importorskip("distributed")
        from dask.distributed import Client, LocalCluster

        monkeypatch.chdir(tmp_path)
        if how == "ZENTRACK_STORE":
            monkeypatch.setenv("ZENTRACK_STORE", str(store_path))
        started = time.monotonic()
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            futures = client.map(_square_in_worker, range(400), pure=False)
            results = client.gather(futures, errors="raise")
        wall = time.monotonic() - started
        found = zt.find(step="tick")
        stray = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob(".zentrack/*"))
        expected = (True, 400, 400, [])
        actual = (
            results == [i * 2 + 99 for i in range(400)],
            len(found),
            len({r.params["i"] for r in found}),
            stray,
        )
        note(f"Dask LocalCluster ({how})", workers=2, calls=400, wall=wall, lost=400 - len(found))
        assert expected == actual
