"""Flush stall: how fast a user's CPU-bound main thread runs while records are flushed.

Target: while zentrack flushes in the background, the main thread keeps at
least 90% of the speed it has alone.

The main thread runs a pure-Python work unit of about 1 ms in a loop for a
window of ``W`` seconds and counts units per second; the gap between two
consecutive units' ends is a unit's time plus any pause (GIL held elsewhere,
CPU taken away).  Each round measures, in a shuffled order, on fresh stores:

* *alone*: the loop with nothing else running (the baseline);
* *drainer, store exists*: the normal background path in steady state.  A
  first size-triggered flush of 10 records (awaited) has created the store;
  then ``N`` tracked calls are made with the tracker's ``batch_size`` set to
  ``N``, so the ``N``-th call crosses the size trigger and spawns the
  background drainer process (``python -m zentrack._record.drain``), as it normally
  does; the window starts right after that call and ends after ``W`` s or
  when the drainer exits;
* *drainer, first flush*: the same, but the drainer also creates the store;
* *thread (contrast)*: ``threading.Thread(target=zt.flush)`` drains the same
  backlog in this process; the store is opened (``ml_metadata`` imported,
  schema created) before the window.  On SQLite zentrack inserts the
  executions through ``sqlite3``, which lets go of the GIL for every
  statement: the loop keeps more of its speed and the flush, sharing the
  GIL, takes longer (it counts if it committed records or was still running
  when the window ended; through MLMD, which holds the GIL for each write
  call, this stalled the loop badly);
* *control: busy child*: a trivial CPU-bound child process (``while True:
  pass``, no zentrack) spins during the window: the best any out-of-process
  flusher can do on this machine under its current load.  If this control
  also falls below 90%, a missed target is the machine's, not zentrack's.

``max_age`` is set to 1e9 s so that the age timer never flushes.  A drainer
scenario only counts if the drainer committed records *during* the window
(read from the journal's ``.offset`` file at the window's start and end; a
window that ends before the drainer's first commit is extended until that
commit, up to 5 x ``W``, so that the drainer's start-up is not all it holds); a
drainer that is still running when the window ends is terminated (by its pid)
and the temp store discarded.  Figures: medians over rounds of per-round
ratios to the *alone* loop of the same round; pauses in ms.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    NEVER_SECONDS,
    Outcome,
    abandon_active_tracker,
    header,
    hold_background_flush,
    median,
    parse_args,
    spread,
    stop_drainer,
    temp_dir,
)

import zentrack as zt

TARGET_RATIO = 0.90
UNIT_SECONDS = 0.001


@zt.step(cache=False)
def f(x, *, lr=0.01, epochs=1, name="a"):
    return x


def work(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def calibrate() -> int:
    """Iterations of ``work`` that take about ``UNIT_SECONDS`` (best of several tries)."""
    n = 10_000
    best = min(_time(lambda: work(n)) for _ in range(20))
    return max(1, int(n * UNIT_SECONDS / best))


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Loop:
    """One measurement window of the work loop."""

    units: int
    seconds: float
    gaps: list[float]

    @property
    def rate(self) -> float:
        return self.units / self.seconds

    @property
    def longest(self) -> float:
        return max(self.gaps)


def run_loop(
    n: int,
    duration: float,
    stop: Callable[[], bool] | None = None,
    until: Callable[[], bool] | None = None,
) -> Loop:
    """Run work units for ``duration`` s, or until ``stop()``; record each unit's end.

    With ``until``, a window that ends before ``until()`` holds is extended
    (to at most 5 x ``duration``) until it does: ``until`` is only polled then.
    """
    ends: list[float] = []
    start = now = time.perf_counter()
    deadline = start + duration
    limit = start + 5 * duration
    while now < deadline or (until is not None and now < limit and not until()):
        work(n)
        now = time.perf_counter()
        ends.append(now)
        if stop is not None and stop():
            break
    gaps = [b - a for a, b in zip([start, *ends[:-1]], ends, strict=True)]
    return Loop(units=len(ends), seconds=ends[-1] - start, gaps=gaps)


# -- scenarios ---------------------------------------------------------------------------


@dataclass
class Window:
    loop: Loop
    committed: int  # records the flusher committed during the window
    valid: bool
    trigger_ms: float = float("nan")
    detail: str = ""


def offsets(journal_dir: Path) -> dict[Path, int]:
    """How far each journal has been committed to the store (its ``.offset`` files)."""
    out = {}
    for path in journal_dir.glob("*.offset"):
        try:
            out[path.with_suffix("")] = int(path.read_text() or 0)
        except (OSError, ValueError):
            continue
    return out


def lines_between(before: dict[Path, int], after: dict[Path, int]) -> int:
    """Journal lines committed between two ``offsets()`` snapshots."""
    count = 0
    for journal, end in after.items():
        start = before.get(journal, 0)
        try:
            with open(journal, "rb") as file:
                file.seek(start)
                count += file.read(max(end - start, 0)).count(b"\n")
        except OSError:
            continue
    return count


def journal_calls(first: int, count: int) -> None:
    for i in range(first, first + count):
        f(i, lr=0.001 * (i % 97), epochs=i % 7)


def drainer_window(
    n: int, unit: int, window: float, store_exists: bool, outcome: Outcome, label: str
) -> Window:
    with temp_dir("stall") as directory:
        tracker = zt.init(str(directory / "metadata.sqlite"), cache=False)
        try:
            return _drainer_window(tracker, n, unit, window, store_exists, outcome, label)
        finally:
            abandon_active_tracker()  # its temp store is about to be removed


def _drainer_window(
    tracker: Any,
    n: int,
    unit: int,
    window: float,
    store_exists: bool,
    outcome: Outcome,
    label: str,
) -> Window:
    tracker.max_age = NEVER_SECONDS
    journal_dir = Path(tracker.location.journal_dir)
    first = 0
    if store_exists:  # a previous background flush created the store
        tracker.batch_size = first = 10
        journal_calls(0, first)
        drainer = tracker._drainer
        if drainer is None:
            outcome.fail(f"{label}: crossing batch_size=10 started no drainer")
            return Window(Loop(0, 1, [0.0]), 0, False)
        drainer.wait(120)
        if drainer.returncode != 0:
            outcome.fail(
                f"{label}: the first drainer failed: {_stderr(drainer)}",
                key=f"{label}: first drainer failed",
            )
    tracker.batch_size = n
    journal_calls(first, n - 1)
    start = time.perf_counter()
    journal_calls(first + n - 1, 1)  # crosses batch_size: spawns the drainer
    trigger_ms = (time.perf_counter() - start) * 1e3
    drainer = tracker._drainer
    if drainer is None or (drainer.poll() is not None and drainer.returncode != 0):
        reason = "none started" if drainer is None else _stderr(drainer)
        outcome.fail(f"{label}: no background drainer ran ({reason})", key=f"{label}: none ran")
        return Window(Loop(0, 1, [0.0]), 0, False)
    before = offsets(journal_dir)
    loop = run_loop(
        unit,
        window,
        stop=lambda: drainer.poll() is not None,
        until=lambda: offsets(journal_dir) != before,  # the drainer has committed something
    )
    after = offsets(journal_dir)
    committed = lines_between(before, after)
    detail = f"drainer {'still running' if drainer.poll() is None else 'exited'}"
    if drainer.poll() is None:
        stop_drainer(tracker)  # the window is over; discard the rest of the backlog
    elif drainer.returncode != 0:
        detail = f"drainer exited with status {drainer.returncode}: {_stderr(drainer)}"
    valid = committed > 0
    if not valid:
        outcome.fail(
            f"{label}: the drainer committed no record during the {loop.seconds:.2f} s "
            f"window ({detail})",
            key=f"{label}: nothing committed",
        )
    return Window(loop, committed, valid, trigger_ms, detail)


def busy_child_window(unit: int, window: float) -> Window:
    """Control: the loop while a trivial CPU-bound child process spins (no zentrack)."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.05)  # let it start spinning
        loop = run_loop(unit, window)
    finally:
        child.terminate()
        child.wait()
    return Window(loop, 0, True)


def thread_window(n: int, unit: int, window: float, outcome: Outcome) -> Window:
    with temp_dir("stall-thread") as directory:
        tracker = zt.init(str(directory / "metadata.sqlite"), cache=False)
        hold_background_flush(tracker)
        tracker.store.mlmd  # noqa: B018 -- import ml_metadata, create the schema: not timed
        journal_calls(0, n)
        journal_dir = Path(tracker.location.journal_dir)
        before = offsets(journal_dir)
        flusher = threading.Thread(target=zt.flush, name="zt.flush", daemon=True)
        flusher.start()
        loop = run_loop(unit, window, stop=lambda: not flusher.is_alive())
        after = offsets(journal_dir)
        running = flusher.is_alive()  # flushing through the whole window
        flusher.join()
        committed = lines_between(before, after)
        if committed == 0 and not running:
            outcome.fail("thread: zt.flush() ended without committing a record")
        abandon_active_tracker()
    return Window(loop, committed, committed > 0 or running)


def _stderr(drainer: Any) -> str:
    try:
        _, err = drainer.communicate(timeout=5)
    except Exception as exc:  # already read, or still running
        return f"(stderr unavailable: {exc})"
    text = (err or b"").decode(errors="replace").strip()
    lines = [line for line in text.splitlines() if "RuntimeWarning" not in line]
    return " | ".join(lines)[-400:] or "(no stderr)"


# -- report --------------------------------------------------------------------------------


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    n = 3_000 if args.quick else 20_000
    window = 1.0 if args.quick else 3.0
    rounds = args.rounds or (1 if args.quick else 4)
    unit = calibrate()
    header(
        "bench_flush_stall: CPU-bound main thread speed while records are flushed",
        args,
        f"work unit: {unit:,} iterations of a pure-Python loop (~{UNIT_SECONDS * 1e3:.0f} ms "
        f"alone); window {window:g} s; backlog {n:,} tracked calls; {rounds} round(s), "
        "scenarios shuffled each round",
    )
    outcome = Outcome()
    rng = random.Random(args.seed)
    scenarios: dict[str, Callable[[], Window]] = {
        "alone": lambda: Window(run_loop(unit, window), 0, True),
        "drainer, store exists": lambda: drainer_window(
            n, unit, window, True, outcome, "drainer, store exists"
        ),
        "drainer, first flush": lambda: drainer_window(
            n, unit, window, False, outcome, "drainer, first flush"
        ),
        "thread (contrast)": lambda: thread_window(n, unit, window, outcome),
        "control: busy child": lambda: busy_child_window(unit, window),
    }
    results: dict[str, list[Window]] = {name: [] for name in scenarios}
    for _ in range(rounds):
        order = list(scenarios)
        rng.shuffle(order)
        for name in order:
            results[name].append(scenarios[name]())

    alone = results["alone"]
    print(
        f"   {'scenario':24} {'speed vs alone':>22} {'units/s':>9} {'longest pause':>14} "
        f"{'p99 gap':>8} {'committed in window':>20}"
    )
    verdicts: dict[str, float] = {}
    for name, windows in results.items():
        pairs = [(w, a) for w, a in zip(windows, alone, strict=True) if w.valid]
        if not pairs:
            print(f"   {name:24} {'n/a: no valid window':>22}")
            continue
        ratios = [w.loop.rate / a.loop.rate for w, a in pairs]
        longest = max(w.loop.longest for w, _ in pairs) * 1e3
        p99 = median([_p99(w.loop.gaps) for w, _ in pairs]) * 1e3
        committed = median([w.committed for w, _ in pairs])
        speed = f"{median(ratios) * 100:5.1f}% {spread([r * 100 for r in ratios], '{:.0f}')}"
        print(
            f"   {name:24} {speed:>22} {median([w.loop.rate for w, _ in pairs]):9.0f} "
            f"{longest:11.1f} ms {p99:5.1f} ms "
            f"{'' if name in ('alone', 'control: busy child') else f'{committed:,.0f} records':>20}"
        )
        if name != "alone":
            verdicts[name] = median(ratios)
    print()
    for name in ("drainer, store exists", "drainer, first flush"):
        windows = [w for w in results[name] if w.valid]
        if windows:
            print(
                f"   {name}: the call crossing batch_size took "
                f"{median([w.trigger_ms for w in windows]):.1f} ms (spawning the drainer); "
                f"window {median([w.loop.seconds for w in windows]):.2f} s; "
                f"{windows[-1].detail}"
            )
    for name in ("drainer, store exists", "drainer, first flush"):
        if name in verdicts:
            outcome.target(
                f"main-thread speed while the background drainer flushes ({name})",
                verdicts[name] * 100,
                TARGET_RATIO * 100,
                unit="%",
                higher_is_better=True,
                fmt="{:.1f}",
            )
    if "control: busy child" in verdicts:
        print(
            f"   control: a plain CPU-bound child process (no zentrack) leaves the main thread "
            f"{verdicts['control: busy child'] * 100:.1f}% of its speed: the ceiling for any "
            "out-of-process flusher on this machine right now"
        )
    if "thread (contrast)" in verdicts:
        print(
            f"   contrast: an in-process flush on a thread leaves the main thread "
            f"{verdicts['thread (contrast)'] * 100:.1f}% of its speed"
        )
    return outcome.finish(args.check)


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


if __name__ == "__main__":
    sys.exit(main())
