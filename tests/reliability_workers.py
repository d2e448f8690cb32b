"""Worker processes and helpers for the reliability tests.

Every scenario runs in a real, separate interpreter so that it can be killed
with a real signal, crash at a chosen point, or hold real locks::

    python -c "from tests.reliability_workers import main; main()" CMD ARGS...

(:func:`worker` and :func:`start_worker` build that command line; running
through an import keeps the steps' module name ``tests.reliability_workers``
in every process, so fingerprints agree with the parent's.)  Each command
prints one JSON line on stdout saying what it did, how long it took and the
longest pause between two tracked calls.  The pauses and times feed the
figures of ``docs/reliability.md`` through :func:`note`; tests never assert
on them.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zentrack as zt

#: The repository root: workers run there so ``tests`` is importable.
ROOT = Path(__file__).resolve().parent.parent
#: Upper bound for a worker process; a hang fails the test instead of blocking it.
TIMEOUT = 90
#: Appends one JSON line per measured scenario when set (used to write the docs).
LOG_ENV = "ZENTRACK_RELIABILITY_LOG"

# -- steps and pipelines the workers call -------------------------------------------


@zt.step(cache=False)
def tick(i: int = 0, worker: int = 0) -> int:
    """A cheap, uncached step: the unit of every stress scenario."""
    return i * 2 + worker


@zt.step
def produce(i: int = 0) -> list[int]:
    """A cached step: its output becomes an MLMD artifact linked by an OUTPUT event."""
    return [i, i + 1]


@zt.pipeline
def produce_run(run: int = 0, calls: int = 1) -> None:
    """A pipeline run of ``calls`` cached steps."""
    for i in range(calls):
        produce(i=run * calls + i)


@zt.pipeline
def counting(steps: int = 3, hold: float = 0.0, ready: str = "") -> int:
    """Run ``steps`` tracked calls, then tell the parent and wait up to ``hold`` seconds."""
    for i in range(steps):
        tick(i=i, worker=-1)
    if ready:
        Path(ready).write_text("ready")
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline:
        time.sleep(0.01)
    return steps


@zt.step(cache=False)
def hazard(label: str = "", value: Any = None) -> str:
    """Record ``value`` as a parameter and as the metric ``m``."""
    zt.log_metrics(m=value)
    return label


@zt.step(name="a", cache=False)
def control(x: int = 1) -> int:
    """The step every hazard step name is stored beside."""
    return x


@zt.pipeline
def hazard_run(label: str = "", value: Any = None) -> None:
    """A run whose own parameter and whose one step's parameter is ``value``."""
    hazard(label=label, value=value)


#: Every value hazard of MLMD_NOTES.md, by label.  NaN is compared with
#: ``tests.strategies.typed``, which makes it equal to itself.
HAZARD_VALUES: dict[str, Any] = {
    "nan": math.nan,
    "inf": math.inf,
    "minus_inf": -math.inf,
    "1e-7": 1e-7,
    "minus_zero": -0.0,
    "one_third": 1 / 3,
    "int_2_63": 2**63,
    "int_minus_2_63_minus_1": -(2**63) - 1,
    "int_2_64_plus_1": 2**64 + 1,
    "int_minus_2_100": -(2**100),
    "nul": "a\0b",
    "backslashes": "C:\\temp\\new\\x00",
    "long_100kB": "x" * 100_000,
    "struct_prefix": "mlmd-struct::",
    "struct_prefix_base64": "mlmd-struct::CgMKAWESAA==",
    "lone_surrogate": "bad \ud800 text",
    "name_300_chars": "n" * 300,
    "nested": {
        "floats": [math.nan, -0.0, math.inf, 1e-7],
        "ints": (2**70, -(2**64)),
        "text": ["a\0", "mlmd-struct::x", "\udfff", "\\"],
    },
}

#: Step, pipeline, parameter and metric names that MLMD may mangle.
HAZARD_NAMES: dict[str, str] = {
    "nul": "a\0b",
    "backslash": "back\\slash",
    "struct_prefix": "mlmd-struct::x",
    "lone_surrogate": "bad\ud800name",
    "300_chars": "s" * 300,
}

#: A parameter name of 300 characters (a valid identifier).
LONG_PARAM = "p" * 300
_namespace: dict[str, Any] = {}
exec(f"def long_param({LONG_PARAM}=0.5):\n    return 1\n", _namespace)
long_param = zt.step(cache=False)(_namespace["long_param"])


# -- measurements ----------------------------------------------------------------------


class Pauses:
    """The longest gap between two consecutive tracked calls of one worker."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.longest = 0.0

    def tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self.last)
        self.last = now

    def report(self, **extra: Any) -> None:
        elapsed = time.perf_counter() - self.start
        print(json.dumps({"elapsed": elapsed, "max_pause": self.longest, **extra}), flush=True)


def note(scenario: str, **figures: Any) -> None:
    """Append the figures of one scenario to ``$ZENTRACK_RELIABILITY_LOG``, if set."""
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"scenario": scenario, **figures}, default=repr) + "\n")


# -- starting workers (parent side) -------------------------------------------------------


def tick_params(records: list[zt.Record]) -> list[tuple[int, int]]:
    """``(worker, i)`` of each ``tick`` record, sorted: what a test expects to find."""
    return sorted((r.params["worker"], r.params["i"]) for r in records)


def record_census(plain_store: Callable[[], Any]) -> tuple[int, int]:
    """(executions, distinct record ids) as a plain ``ml_metadata`` reader sees them.

    A duplicated record shows up as a difference between the two.
    """
    executions = plain_store().get_executions()
    ids = {
        json.loads(e.custom_properties["zentrack.record"].string_value)["id"]
        for e in executions
        if "zentrack.record" in e.custom_properties
    }
    return len(executions), len(ids)


def command(cmd: str, *args: str) -> list[str]:
    return [sys.executable, "-c", "from tests.reliability_workers import main; main()", cmd, *args]


def child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, "GLOG_minloglevel": "2", "PYTHONPATH": str(ROOT)}
    env.pop(LOG_ENV, None)
    env.update(extra or {})
    return env


def worker(
    cmd: str, *args: str, env: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run one worker command to its end (or until ``timeout`` raises)."""
    return subprocess.run(
        command(cmd, *args),
        cwd=ROOT,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_worker(cmd: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start one worker command in the background."""
    return subprocess.Popen(
        command(cmd, *args),
        cwd=ROOT,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_drainer(store: Path) -> subprocess.Popen[bytes]:
    """Start zentrack's own drainer, ``python -m zentrack._record.drain sqlite:///STORE``."""
    return subprocess.Popen(
        [sys.executable, "-m", "zentrack._record.drain", f"sqlite://{store}"],
        cwd=ROOT,
        env=child_env(None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def output(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON line a worker printed last (empty if it printed none)."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    """Poll ``condition`` every 5 ms until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what or condition}")
        time.sleep(0.005)


# -- worker commands (child side) --------------------------------------------------------


def _no_background_flush(tracker: zt.Tracker) -> None:
    """Leave every record in the journal: no size or age flush in this process."""
    tracker.batch_size = 10**9
    tracker.max_age = 3600.0


def calls(store: str, count: str, worker: str = "0") -> None:
    """Make ``count`` tracked calls and exit normally (the exit flush writes them)."""
    zt.init(store)
    pauses = Pauses()
    returned = 0
    n, w = int(count), int(worker)
    for i in range(n):
        returned += tick(i=i, worker=w) == i * 2 + w
        pauses.tick()
    pauses.report(worker=w, returned=returned)


def implicit_calls(count: str) -> None:
    """Make ``count`` tracked calls on the store of ``$ZENTRACK_STORE``, never calling init."""
    pauses = Pauses()
    returned = 0
    for i in range(int(count)):
        returned += tick(i=i) == i * 2
        pauses.tick()
    pauses.report(returned=returned)


def calls_then_kill(store: str, count: str, backlog: str = "0", worker: str = "0") -> None:
    """Make ``count`` tracked calls, then SIGKILL this process (no atexit, no flush).

    With ``backlog`` = 1, size and age flushes are switched off first, so
    every record is left in the journal for the parent to drain.
    """
    tracker = zt.init(store)
    if backlog == "1":
        _no_background_flush(tracker)
    w = int(worker)
    for i in range(int(count)):
        tick(i=i, worker=w)
    print(json.dumps({"returned": int(count)}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def runs_then_kill(store: str, runs: str, per_run: str) -> None:
    """Run ``runs`` pipeline runs of ``per_run`` cached calls, then SIGKILL this process.

    Nothing is flushed: the parent finds every record and run in the journal.
    """
    _no_background_flush(zt.init(store))
    for run in range(int(runs)):
        produce_run(run=run, calls=int(per_run))
    os.kill(os.getpid(), signal.SIGKILL)


def flush(store: str) -> None:
    """Initialise the store (which recovers dead journals), flush, and print the counts."""
    zt.init(store)
    print(json.dumps({"flushed": zt.flush(), "found": len(zt.find(step="tick"))}), flush=True)


def crash_after(store: str, method: str, batch: str = "250") -> None:
    """Drain the store's journals, SIGKILLing this process right after an MLMD call.

    ``method`` names a method of the ``ml_metadata`` store object (for example
    ``put_executions``), or ``insert``: the direct SQLite writer's.  Its
    second call (the second batch) is committed, then the process dies
    before zentrack notes the batch's progress: the window the ``.inflight``
    marker exists for.
    """
    from zentrack._record import drain as _drain
    from zentrack._store.location import parse
    from zentrack._store.mlmd import MetadataStore

    location = parse(store)
    assert location.journal_dir is not None and location.lock_path is not None
    adapter = MetadataStore(location)
    # ``insert``: zentrack's direct SQLite insert of executions (nothing may hold
    # MLMD's store then, or zentrack writes through MLMD instead).
    target = adapter._writer if method == "insert" else adapter.mlmd
    original: Callable[..., Any] = getattr(target, method)
    seen = [0]

    def dying(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        seen[0] += 1
        if seen[0] >= 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(target, method, dying)
    with _drain.writer_lock(location.lock_path):
        _drain.drain_journals(adapter, location.journal_dir, batch=int(batch))
    print(json.dumps({"crashed": False, "calls": seen[0]}), flush=True)


def pipeline_then_kill(store: str, steps: str) -> None:
    """Start a pipeline run, make ``steps`` calls in it, then SIGKILL this process."""
    zt.init(store)

    @zt.pipeline(name="killed")
    def killed(steps: int = 1) -> None:
        for i in range(steps):
            tick(i=i)
        os.kill(os.getpid(), signal.SIGKILL)

    killed(steps=int(steps))


def pipeline_waiting(store: str, steps: str, ready: str, hold: str = "60") -> None:
    """Run ``counting`` and wait inside it until signalled (or ``hold`` seconds pass)."""
    zt.init(store)
    try:
        counting(steps=int(steps), hold=float(hold), ready=ready)
    except BaseException as exc:
        print(json.dumps({"raised": type(exc).__name__, "args": list(exc.args)}), flush=True)
        raise


def hold_sqlite_lock(path: str, ready: str, release: str) -> None:
    """Hold ``BEGIN EXCLUSIVE`` on an SQLite file until ``release`` exists (60 s at most)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("BEGIN EXCLUSIVE")
    Path(ready).write_text("locked")
    deadline = time.monotonic() + 60
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    connection.execute("COMMIT")
    connection.close()


def hold_writer_lock(store: str, seconds: str = "60") -> None:
    """Hold the store's writer lock, print ``locked``, release after ``seconds``."""
    from zentrack._record import drain as _drain
    from zentrack._store.location import parse

    location = parse(store)
    assert location.lock_path is not None
    with _drain.writer_lock(location.lock_path):
        print("locked", flush=True)
        time.sleep(float(seconds))


def threads(store: str, count: str, per_thread: str) -> None:
    """Make ``per_thread`` tracked calls on each of ``count`` threads, then exit normally."""
    zt.init(store)
    errors: list[str] = []
    longest: list[float] = []

    def work(w: int) -> None:
        pauses = Pauses()
        try:
            for i in range(int(per_thread)):
                tick(i=i, worker=w)
                pauses.tick()
        except Exception as exc:  # reported to the parent, which expects none
            errors.append(repr(exc))
        longest.append(pauses.longest)

    workers = [threading.Thread(target=work, args=(w,)) for w in range(int(count))]
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - started
    print(json.dumps({"elapsed": elapsed, "max_pause": max(longest), "errors": errors}))


def plain_census(store: str) -> dict[str, Any]:
    """What a plain ``ml_metadata`` reader lists in ``store``, or the error it raises.

    Also counts custom property Values with no field set (which MLMD aborts on).
    """
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    if not Path(store).exists():
        return {"store": "absent"}
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = store
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
    reader = metadata_store.MetadataStore(config)
    census: dict[str, Any] = {}
    empty = 0
    for kind in ("executions", "contexts", "artifacts"):
        try:
            nodes = getattr(reader, f"get_{kind}")()
        except Exception as exc:  # the finding itself: reported, not raised
            census[kind] = f"{type(exc).__name__}: {str(exc)[:120]}"
            continue
        census[kind] = len(nodes)
        for node in nodes:
            values = node.custom_properties.values()
            empty += sum(1 for v in values if v.WhichOneof("value") is None)
    census["empty_values"] = empty
    return census


def hazard_values(store: str) -> None:
    """Record every hazard value as a step parameter, a metric and a run parameter."""
    zt.init(store)
    for label, value in HAZARD_VALUES.items():
        hazard(label=label, value=value)
        hazard_run(label=label, value=value)
    long_param(**{LONG_PARAM: 0.25})
    zt.flush()
    print(json.dumps({"done": len(HAZARD_VALUES), "plain": plain_census(store)}), flush=True)


def hazard_step_name(store: str, label: str) -> None:
    """Decorate a step named by a hazard, call it, flush and read it back.

    A step named ``a`` is called first: a name that MLMD cuts short (at a
    NUL) must not mix its records with it.  Prints ``rejected`` (with the
    error) when the decorator refuses the name, else what reads return.
    """
    zt.init(store)
    name = HAZARD_NAMES[label]

    def body(x: int = 1) -> int:
        return x + 1

    try:
        tracked = zt.step(name=name, cache=False)(body)
    except (TypeError, ValueError) as exc:
        print(json.dumps({"rejected": repr(exc), "plain": plain_census(store)}), flush=True)
        return
    control(x=1)  # "a": what MLMD would truncate "a\0b" to
    returned = tracked(x=41)
    zt.flush()
    found = [(r.step, r.params) for r in zt.find(step=name)]
    every = [(r.step, r.params) for r in zt.find()]
    report = {"returned": returned, "found": found, "all": every, "plain": plain_census(store)}
    print(json.dumps(report), flush=True)


def hazard_pipeline_name(store: str, label: str) -> None:
    """Decorate a pipeline named by a hazard, run it, flush and read its run back."""
    zt.init(store)
    name = HAZARD_NAMES[label]

    def body(lr: float = 0.5) -> float:
        tick(i=7)
        return lr

    try:
        tracked = zt.pipeline(name=name)(body)
    except (TypeError, ValueError) as exc:
        print(json.dumps({"rejected": repr(exc), "plain": plain_census(store)}), flush=True)
        return
    run = tracked(lr=0.25)
    zt.flush()
    found = [(r.pipeline, r.state, r.params, len(r.steps)) for r in zt.runs(pipeline=name)]
    report = {"returned": run.output, "found": found, "plain": plain_census(store)}
    print(json.dumps(report), flush=True)


def hazard_metric_name(store: str, label: str) -> None:
    """Log a metric named by a hazard, flush and read it back."""
    zt.init(store)
    name = HAZARD_NAMES[label]

    @zt.step(cache=False)
    def measured(x: int = 1) -> int:
        zt.log_metrics(**{name: 0.5})
        return x

    returned = measured(x=3)
    zt.flush()
    found = [r.metrics for r in zt.find(step="measured")]
    report = {"returned": returned, "found": found, "plain": plain_census(store)}
    print(json.dumps(report), flush=True)


def census(store: str) -> None:
    """Print what a plain ``ml_metadata`` reader lists in ``store``."""
    print(json.dumps({"plain": plain_census(store)}), flush=True)


COMMANDS: dict[str, Callable[..., None]] = {
    f.__name__: f
    for f in (
        calls,
        implicit_calls,
        calls_then_kill,
        runs_then_kill,
        flush,
        crash_after,
        pipeline_then_kill,
        pipeline_waiting,
        hold_sqlite_lock,
        hold_writer_lock,
        threads,
        hazard_values,
        hazard_step_name,
        hazard_pipeline_name,
        hazard_metric_name,
        census,
    )
}


def main() -> None:
    """Run the worker command named by ``sys.argv[1]`` with the remaining arguments."""
    COMMANDS[sys.argv[1]](*sys.argv[2:])
