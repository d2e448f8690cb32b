"""Overhead of a tracked call over a plain call of the same function (cache off).

Target: a tracked call costs at most 5 µs more than the plain call (median).

Subjects, each timed in batches of 1000 consecutive calls (``timeit``),
baseline and subject interleaved in a shuffled order every round:

* ``f(1, lr=0.02)`` where ``f(x, *, lr=0.01, epochs=1, name="a")`` returns
  ``x``, plain and decorated with ``@zt.step(cache=False)`` (4 parameters);
* the entry point ``t.run(1)`` of a class step (3 parameters frozen at
  construction; ``x`` is an input, hashed by content), plain and tracked.

The figure is the median over rounds of the per-round difference
``tracked - plain`` per call.  Two tracker configurations are measured one
after the other, each on its own SQLite store in a temp dir, with
``zt.init(store, cache=False)``:

* *default*: the tracker as ``zt.init`` returns it (``batch_size=1000``):
  every 1000th record crosses the size trigger and spawns the background
  drainer process, so one spawn falls in every batch and its cost is
  amortised over the batch, as a user's loop sees it.  This is the target.
* *journal only*: ``batch_size``/``max_age`` set so high that no background
  flush starts: the cost of the tracking code and the journal write alone.
* *journal only, other core busy* (full runs): the same while a process
  spins on the other core, as the drainer keeps it busy in the default case;
  the difference tells a busy neighbour core's cost (shared caches, memory)
  from what the drainer itself adds.

The records journaled are never written to MLMD: the tracker is dropped
without its exit flush at the end (see ``_common.abandon_active_tracker``).
A full run also prints a per-stage breakdown of the hot path, timed through
zentrack's private functions (best effort: skipped if they changed).
"""

from __future__ import annotations

import argparse
import contextlib
import mmap
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from _common import (
    Outcome,
    abandon_active_tracker,
    drainer_failed,
    header,
    hold_background_flush,
    interleaved,
    median,
    paired,
    parse_args,
    per_call,
    spread,
    temp_dir,
)

import zentrack as zt

TARGET_US = 5.0


def f(x, *, lr=0.01, epochs=1, name="a"):
    return x


tracked_f = zt.step(cache=False)(f)


class Trainer:
    def __init__(self, lr=0.01, epochs=1, name="a"):
        self.lr = lr
        self.epochs = epochs
        self.name = name

    def run(self, x):
        return x


@zt.step(cache=False)
class TrackedTrainer:
    def __init__(self, lr=0.01, epochs=1, name="a"):
        self.lr = lr
        self.epochs = epochs
        self.name = name

    def run(self, x):
        return x


CALL = "fn(1, lr=0.02)"
ENTRY = "obj.run(1)"


def subjects(number: int) -> dict[str, Any]:
    return {
        "plain f": per_call(CALL, {"fn": f}, number),
        "tracked f": per_call(CALL, {"fn": tracked_f}, number),
        "plain class entry": per_call(ENTRY, {"obj": Trainer(lr=0.02)}, number),
        "tracked class entry": per_call(ENTRY, {"obj": TrackedTrainer(lr=0.02)}, number),
    }


@contextlib.contextmanager
def busy_other_core() -> Iterator[None]:
    """A process spinning on the other core while the block runs (a neighbour's load).

    The default tracker's drainer works on the other core while calls are
    timed; a core kept busy by anything costs the caller a little through
    shared caches and memory.  Timing the journal-only case beside a spinning
    process tells that share apart from what the drainer itself adds.
    """
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run_scenario(
    label: str, hold: bool, rounds: int, number: int, seed: int, outcome: Outcome
) -> dict[str, float]:
    """Measure both pairs under one tracker configuration; return median overheads in µs."""
    overheads: dict[str, float] = {}
    with temp_dir("hot") as directory:
        tracker = zt.init(str(directory / "metadata.sqlite"), cache=False)
        if hold:
            hold_background_flush(tracker)
        print(f"-- {label}: batch_size={tracker.batch_size:,}, max_age={tracker.max_age:g} s")
        measures = subjects(number)
        for measure in measures.values():  # warm-up: code digest, journal file
            measure()
        results = interleaved(measures, rounds, seed)
        for kind in ("f", "class entry"):
            plain, tracked = results[f"plain {kind}"], results[f"tracked {kind}"]
            diff_us = [d * 1e6 for d in paired(results, f"tracked {kind}", f"plain {kind}")]
            overheads[kind] = median(diff_us)
            name = "f(1, lr=0.02)" if kind == "f" else "t.run(1)"
            print(
                f"   {name:14} plain {median(plain) * 1e6:6.2f} µs   tracked "
                f"{median(tracked) * 1e6:6.2f} µs   overhead {median(diff_us):6.2f} µs "
                f"{spread(diff_us)} (tracked/plain x{median(tracked) / median(plain):,.0f})"
            )
        if drainer_failed(tracker):
            outcome.note(
                f"{label}: a background drainer exited with an error (see the zentrack "
                "warning above); its records stayed in the journal."
            )
        abandon_active_tracker()
    print()
    return overheads


# -- breakdown ---------------------------------------------------------------------------
#
# zentrack's internals are being reworked, so each stage lists candidate statements
# (newest API first) and uses the first one that runs; a stage none of whose
# candidates runs is shown as n/a.  The call-layering, clock, bare copy and bare
# os.write stages use no zentrack code at all: they are the floor of any implementation.

LINE_BUILDER = (
    "_line.step_line(f'{tracker.id_prefix}{next(tracker.ids)}', None, exact, digests_text, "
    "'COMPLETE', t0, time_ns(), '', spec.tail)"
)


def _layer_inner(spec, fn, args, kwargs, canonical, exact, inputs):
    return fn(*args, **kwargs)


def _layer_function(*args, **kwargs):
    return _layer_inner(None, f, args, kwargs, "", "", {})


class _LayeredTrainer(Trainer):
    def run(self, *args, **kwargs):
        return _layer_inner(None, Trainer.run, (self, *args), kwargs, "", "", {})


def _first(ns: dict[str, Any], candidates: list[str]) -> tuple[str | None, Any]:
    """The first candidate statement that evaluates in ``ns``, and its value."""
    for stmt in candidates:
        try:
            try:
                return stmt, eval(stmt, ns)
            except SyntaxError:  # statements, not an expression
                exec(stmt, ns)
                return stmt, None
        except Exception:
            continue
    return None, None


def breakdown(rounds: int, number: int, seed: int, overhead: dict[str, float]) -> None:
    """Time each stage of a tracked call (journal only) through zentrack's internals."""
    import time

    from zentrack._record import line as _line
    from zentrack._runs import context as _context
    from zentrack._step import fingerprint as _fingerprint
    from zentrack._step import params as _params
    from zentrack._step import spec as _spec
    from zentrack._step import values as _values

    with temp_dir("hot-breakdown") as directory:
        tracker = zt.init(str(directory / "metadata.sqlite"), cache=False)
        hold_background_flush(tracker)
        tracked_f(1, lr=0.02)
        obj = TrackedTrainer(lr=0.02)
        obj.run(1)
        scratch = os.open(directory / "scratch.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        mapped = os.open(directory / "mapped.jsonl", os.O_RDWR | os.O_CREAT)
        os.posix_fallocate(mapped, 0, 1 << 20)
        mapping = mmap.mmap(mapped, 1 << 20, flags=mmap.MAP_SHARED)
        ns: dict[str, Any] = {
            "spec": getattr(tracked_f, _spec.SPEC_ATTR),
            "spec_c": getattr(TrackedTrainer, _spec.SPEC_ATTR),
            "obj": obj,
            "tracker": tracker,
            "fd": scratch,
            "mm": mapping,
            "os": os,
            "t0": time.time_ns(),
            "time_ns": time.time_ns,
            "_values": _values,
            "_fingerprint": _fingerprint,
            "_spec": _spec,
            "_line": _line,
            "cm": getattr(_context, "current_metrics", None),
            "cr": getattr(_context, "current_run", None),
            "layer": _layer_function,
            "layered_obj": _LayeredTrainer(lr=0.02),
            # the class step's entry point has Trainer.run's signature
            "entry_signature": _params.Signature(
                _params.callable_signature(Trainer.run, drop_self=True)
            ),
        }
        ns["primed"], ns["primed_c"] = ns["spec"].primed(), ns["spec_c"].primed()
        tables: dict[str, list[tuple[str, list[str]]]] = {
            "f": [
                (
                    "bind, split params/inputs, encode params",
                    [
                        "spec.encoder.plan(1, lr=0.02)",  # generated per signature
                        "spec.encode((1,), {'lr': 0.02})",
                    ],
                ),
                (
                    "  fingerprint, sha256 (only a caching step's call has it)",
                    [
                        "_fingerprint.fingerprint(primed, canonical, '{}')",
                    ],
                ),
                (
                    "call layering: wrapper(*a, **kw) -> track(..) -> fn",
                    [
                        "layer(1, lr=0.02)",
                    ],
                ),
            ],
            "class entry": [
                (
                    "instance params text (cached on the instance)",
                    [
                        "_spec.instance_texts(spec_c, obj)",
                    ],
                ),
                (
                    "input digests: bind x=1, its digest, JSON",
                    [
                        "spec_c.entry_digests(1)",  # generated per entry: binds and writes
                        "_fingerprint.inputs_text(spec_c.digest_inputs("
                        "entry_signature.bind((1,), {})))",
                        "spec_c.digest_inputs({'x': 1})",
                    ],
                ),
                (
                    "  fingerprint, sha256 (only a caching step's call has it)",
                    [
                        "_fingerprint.fingerprint(primed_c, canonical, digests)",
                    ],
                ),
                (
                    "call layering: entry(self, *a) -> track(..) -> run",
                    [
                        "layered_obj.run(1)",
                    ],
                ),
            ],
        }
        common: list[tuple[str, list[str]]] = [
            (
                "contextvars: metrics set/reset (if any), run get",
                [
                    "cm.reset(cm.set({})); cr.get()",
                    "cr.get()",
                ],
            ),
            ("two clock reads (time_ns)", ["time_ns(); time_ns()"]),
            ("format the journal line", [LINE_BUILDER]),
            ("tracker.record(line): encode, journal append, counters", ["tracker.record(line)"]),
            ("  a bare copy of the line into a mapping (no fault)", ["mm[: len(data)] = data"]),
            ("  a bare os.write of the line (the former append)", ["os.write(fd, data)"]),
        ]
        for kind, table in tables.items():
            chosen: dict[str, str | None] = {}
            ns["digests"] = ns["digests_text"] = "{}"
            if kind == "class entry":
                ns["spec"] = ns["spec_c"]
            for label, candidates in [*table, *common]:
                stmt, value = _first(ns, candidates)
                chosen[label] = stmt
                if stmt is None:
                    continue
                if label.startswith("bind, split"):  # (canonical, exact, inputs) or canonical
                    ns["canonical"] = ns["exact"] = value[0] if isinstance(value, tuple) else value
                elif label.startswith("instance params"):  # (..., canonical, exact)
                    ns["canonical"] = ns["exact"] = value[-1]
                elif label.startswith("input digests"):
                    ns["digests"] = value
                    ns["digests_text"] = value if isinstance(value, str) else "{}"
                elif label.lstrip().startswith("fingerprint"):
                    ns["fp"] = value
                elif label == "format the journal line":
                    ns["line"], ns["data"] = value, value.encode()
            labels = [label for label, stmt in chosen.items() if stmt is not None]
            measures = {label: per_call(str(chosen[label]), ns, number) for label in labels}
            results = interleaved(measures, rounds, seed)
            total = 0.0
            print(f"   {kind}: overhead {overhead[kind]:.2f} µs (journal only, measured above)")
            for label in chosen:
                if chosen[label] is None:
                    print(f"     {label:52}    n/a (internals changed)")
                    continue
                value = median(results[label]) * 1e6
                if not label.startswith("  "):
                    total += value
                print(f"     {label:52} {value:6.2f} µs")
            print(f"     {'sum of the stages':52} {total:6.2f} µs")
            print(f"     {'rest (overhead - sum)':52} {overhead[kind] - total:6.2f} µs")
        os.close(scratch)
        mapping.close()
        os.close(mapped)
        abandon_active_tracker()


def only_default(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only-default",
        action="store_true",
        help="measure the default tracker alone (what ab_hot_path.py compares)",
    )


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], only_default)
    rounds = args.rounds or (25 if args.quick else 300)
    number = 1000
    header(
        "bench_hot_path: tracked call overhead over a plain call (cache off)",
        args,
        f"{rounds} rounds x {number} calls per subject, interleaved in shuffled order; "
        "medians over rounds, [p25-p75] of per-round differences",
        "store: SQLite file in a temp dir; zt.init(store, cache=False), @zt.step(cache=False)",
    )
    outcome = Outcome()
    if args.only_default:
        default = run_scenario("default tracker", False, rounds, number, args.seed, outcome)
        for kind, label in (("f", "function"), ("class entry", "class-entry")):
            name = f"tracked {label} call overhead, default tracker"
            outcome.target(name, default[kind], TARGET_US, unit="µs")
        return outcome.finish(args.check)
    journal_only = run_scenario(
        "journal only (no background flush)", True, rounds, number, args.seed, outcome
    )
    default = run_scenario(
        "default tracker (size trigger spawns a drainer every 1000 records)", False, rounds,
        number, args.seed, outcome,
    )  # fmt: skip
    lines = [
        ("background-flush triggers add {d:+.2f} µs per call ({kind}; default minus journal "
         "only, from separate runs: indicative)", default, journal_only),
    ]  # fmt: skip
    if not args.quick:
        with busy_other_core():
            loaded = run_scenario(
                "journal only, the other core kept busy by a spinning process", True, rounds,
                number, args.seed, outcome,
            )  # fmt: skip
        lines += [
            ("a busy neighbour core adds {d:+.2f} µs ({kind})", loaded, journal_only),
            ("the drainer adds {d:+.2f} µs beyond a busy core ({kind})", default, loaded),
        ]
    for text, minuend, subtrahend in lines:
        for kind in ("f", "class entry"):
            print("   " + text.format(d=minuend[kind] - subtrahend[kind], kind=kind))
    if not args.quick:
        print()
        print("-- breakdown of the hot path (journal only; private functions, best effort)")
        try:
            breakdown(max(rounds // 3, 20), number, args.seed, journal_only)
        except Exception as exc:  # internals moved: the figures above still stand
            print(f"   breakdown unavailable ({type(exc).__name__}: {exc})")
    outcome.target(
        "tracked function call overhead, default tracker", default["f"], TARGET_US, unit="µs"
    )
    outcome.target(
        "tracked class-entry call overhead, default tracker",
        default["class entry"],
        TARGET_US,
        unit="µs",
    )
    outcome.target(
        "tracked function call overhead, journal only", journal_only["f"], TARGET_US, unit="µs"
    )
    return outcome.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
