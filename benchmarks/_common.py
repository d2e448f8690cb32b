"""Shared helpers of the zentrack benchmarks (not part of the package).

Every benchmark measures a *subject* next to a *baseline* in the same run,
interleaved round by round (the order is shuffled in each round), and reports
medians over rounds, of paired per-round differences or ratios where it can:
on the shared, noisy cores this machine has, a slow patch hits the baseline
and the subject of the same round alike and mostly cancels out.

Exit status of every script: 1 when an invariant check fails (always), or when
a timing target is missed and ``--check`` was given; else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The repository root (the parent of ``benchmarks/``).
REPO = Path(__file__).resolve().parent.parent

# MLMD's C++ core logs INFO lines through glog; keep ERRORs only.
os.environ.setdefault("GLOG_minloglevel", "2")


# -- command line ------------------------------------------------------------------------


def parse_args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """Parse the options every benchmark takes (plus ``extra`` ones)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="short CI smoke run (a few seconds), noisy figures"
    )
    parser.add_argument("--rounds", type=int, default=None, help="override the number of rounds")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a timing target is missed"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round shuffling")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def header(title: str, args: argparse.Namespace, *details: str) -> None:
    """Print what is measured, on what, and how."""
    print(f"== {title}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"   python {platform.python_version()} ({sys.executable}), {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.2f}"
    )
    print(f"   zentrack {zentrack_revision()}")
    print(f"   mode: {'quick (CI smoke; figures are noisy)' if args.quick else 'full'}")
    for line in details:
        print(f"   {line}")
    print()


def zentrack_revision() -> str:
    """The git commit of the tree measured, marked when zentrack/ has local edits.

    The tree is the one ``zentrack`` is imported from (``PYTHONPATH`` may
    point at another checkout than this script's, see ``ab_hot_path.py``).
    """
    spec = importlib.util.find_spec("zentrack")
    tree = Path(spec.origin).parent.parent if spec is not None and spec.origin else REPO
    if not (tree / "pyproject.toml").is_file():  # an installed copy: this checkout's
        tree = REPO
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "--", "zentrack"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "(revision unknown)"
    return f"at {head}" + (" + uncommitted edits in zentrack/" if dirty else "")


# -- measuring -----------------------------------------------------------------------------


def interleaved(
    subjects: Mapping[str, Callable[[], float]], rounds: int, seed: int = 0
) -> dict[str, list[float]]:
    """Run every measurement once per round, in a freshly shuffled order each round."""
    rng = random.Random(seed)
    names = list(subjects)
    results: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            results[name].append(subjects[name]())
    return results


def per_call(stmt: str, namespace: Mapping[str, Any], number: int) -> Callable[[], float]:
    """Return a measurement: seconds per execution of ``stmt`` over a batch of ``number``.

    ``timeit`` inlines ``stmt`` in its loop (no extra call per iteration) and
    turns the garbage collector off while timing, for baseline and subject alike.
    """
    timer = timeit.Timer(stmt, globals=dict(namespace))

    def measure() -> float:
        return timer.timeit(number) / number

    return measure


def paired(
    results: Mapping[str, Sequence[float]], subject: str, baseline: str, how: str = "diff"
) -> list[float]:
    """Per-round ``subject - baseline`` (``how="diff"``) or ``subject / baseline``."""
    pairs = zip(results[subject], results[baseline], strict=True)
    if how == "diff":
        return [s - b for s, b in pairs]
    return [s / b for s, b in pairs]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """The interquartile range ``[p25-p75]`` of ``values``, for judging the noise."""
    if len(values) < 2:
        return "[single round]"
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return f"[{fmt.format(q1)}-{fmt.format(q3)}]"


# -- targets and invariant checks ----------------------------------------------------------


@dataclass
class Outcome:
    """What a benchmark found: timing targets met or missed, invariants broken."""

    targets: list[tuple[str, bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _failure_keys: list[tuple[str, str]] = field(default_factory=list)
    _failure_counts: dict[str, int] = field(default_factory=dict)

    def target(
        self,
        label: str,
        value: float,
        limit: float,
        *,
        unit: str,
        higher_is_better: bool = False,
        fmt: str = "{:.2f}",
    ) -> str:
        """Judge ``value`` against ``limit``; return the verdict text for the report line."""
        met = value >= limit if higher_is_better else value <= limit
        relation = ">=" if higher_is_better else "<="
        text = (
            f"{fmt.format(value)} {unit} (target {relation} {fmt.format(limit)} {unit}): "
            f"{'MET' if met else 'MISSED'}"
        )
        self.targets.append((label, met, text))
        return text

    def fail(self, message: str, key: str | None = None) -> None:
        """Record a broken invariant (always fails the script).

        Failures with the same ``key`` are reported once, with a count.
        """
        key = key or message
        if key in self._failure_counts:
            self._failure_counts[key] += 1
            return
        self._failure_counts[key] = 1
        self._failure_keys.append((key, message))
        print(f"   FAILED CHECK: {message}")

    @property
    def failures(self) -> list[str]:
        return [
            message + (f" (x{self._failure_counts[key]})" if self._failure_counts[key] > 1 else "")
            for key, message in self._failure_keys
        ]

    def note(self, message: str) -> None:
        """Record something a reader of the figures must know."""
        self.notes.append(message)
        print(f"   NOTE: {message}")

    def finish(self, check: bool) -> int:
        """Print the summary; return the exit status."""
        print()
        print("== summary")
        for label, _met, text in self.targets:
            print(f"   {label}: {text}")
        for message in self.failures:
            print(f"   FAILED CHECK: {message}")
        for message in self.notes:
            print(f"   NOTE: {message}")
        missed = [label for label, met, _ in self.targets if not met]
        if self.failures:
            return 1
        if missed and check:
            print(f"   --check: {len(missed)} target(s) missed")
            return 1
        return 0


# -- stores and trackers ----------------------------------------------------------------


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory, removed afterwards (stores and journals live in it)."""
    path = Path(tempfile.mkdtemp(prefix=f"zt-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


#: ``batch_size``/``max_age`` that keep the tracker's size and age triggers from
#: ever starting a background flush during a benchmark.
NEVER_RECORDS = 10**12
NEVER_SECONDS = 10.0**9


def hold_background_flush(tracker: Any) -> None:
    """Keep records in the journal until an explicit ``flush()``: no size/age trigger."""
    tracker.batch_size = NEVER_RECORDS
    tracker.max_age = NEVER_SECONDS


def abandon_active_tracker() -> None:
    """Drop the active tracker *without* flushing its backlog (journals are discarded).

    A hot-path benchmark leaves hundreds of thousands of records in the journal;
    writing them at exit would take minutes.  This stops the age timer, ends a
    still running background drainer that this process started (by its pid),
    closes the journal and forgets the tracker, so the ``atexit`` hook finds
    nothing to flush.  It uses tracker internals, best effort.
    """
    from zentrack._record import tracker as _tracker

    tracker = getattr(_tracker, "_active", None)
    if tracker is None:
        return
    timer = getattr(tracker, "_timer", None)
    if timer is not None:
        timer.cancel()
    stop_drainer(tracker)
    journal = getattr(tracker, "_journal", None)
    if journal is not None:
        journal.close()
    tracker._closed = True
    _tracker._active = None


def stop_drainer(tracker: Any, timeout: float = 10.0) -> None:
    """End the tracker's background drainer process, if one is running."""
    drainer = getattr(tracker, "_drainer", None)
    if drainer is None:
        return
    if drainer.poll() is None:
        drainer.terminate()
        try:
            drainer.wait(timeout)
        except subprocess.TimeoutExpired:
            drainer.kill()
            drainer.wait()
    with contextlib.suppress(OSError, ValueError):
        drainer.communicate(timeout=1)
    tracker._drainer = None


def drainer_failed(tracker: Any) -> bool:
    """Tell whether a background drainer of ``tracker`` exited with an error."""
    return bool(getattr(tracker, "_warned", False))


def fmt_rate(per_second: float) -> str:
    return f"{per_second:,.0f}/s"
