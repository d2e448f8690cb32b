"""Flush throughput: journaled records written into an SQLite MLMD store per second.

Target: ``zt.flush()`` writes at least 10,000 records/s.

Each round, in a shuffled order, on fresh SQLite files in a temp dir:

* *zentrack*: ``N`` tracked calls of ``f(x, *, lr, epochs, name)`` (4
  parameters, a distinct ``x`` each, so ``N`` distinct fingerprints) are
  journaled, then ``zt.flush()`` is timed.  The tracker returned by
  ``zt.init`` gets ``batch_size=10**12`` and ``max_age=1e9`` s so that no size
  or age trigger starts the background drainer while the calls are journaled:
  the timed ``flush()`` drains all ``N`` records in this process, with nothing
  racing it.  The MLMD store is opened (schema created) before the calls, so
  the timing covers draining only (journal read, parse, writes).  On SQLite,
  zentrack inserts the executions itself, the same rows MLMD writes
  (``zentrack/_store/sqlite_writes.py``); MLMD writes the rest.
* *baseline, batches*: raw ``ml_metadata`` ``put_executions`` of ``N``
  executions in batches of 1000, each with the custom properties zentrack
  writes for such a call (4 parameters + ``zentrack.fingerprint`` +
  ``zentrack.record``, a ~300-byte JSON string) and an ``external_id``;
  protos are built before timing.  MLMD_NOTES.md measured ~16,000/s.
* *baseline, batches, zentrack's external ids*: the same batches with the
  ``external_id`` zentrack gives these records: each one is its
  fingerprint's first execution, so its external id is the fingerprint (64
  random hex digits; lookups find it by that), not the short record id.
  Random keys into MLMD's external-id index may cost more than the record
  ids' ordered ones (0-50 µs per record in runs here, within the noise).
* *baseline, one at a time*: the same, one ``put_executions`` call per
  execution, on a small sample.

Both baselines open their store the way zentrack does (WAL journal mode set on
the new file first).  Figures: medians over rounds; ratios are per round.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    Outcome,
    fmt_rate,
    header,
    hold_background_flush,
    interleaved,
    median,
    paired,
    parse_args,
    spread,
    temp_dir,
)

import zentrack as zt

TARGET_PER_S = 10_000.0
BATCH = 1000

#: MLMD calls listed first in the breakdown (any other get_*/put_* call is timed too).
MLMD_CALLS = (
    "get_executions_by_external_ids",
    "get_contexts_by_external_ids",
    "put_contexts",
    "put_executions",
    "put_attributions_and_associations",
)


@zt.step(cache=False)
def f(x, *, lr=0.01, epochs=1, name="a"):
    return x


def call_args(i: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return (i,), {"lr": 0.001 * (i % 97), "epochs": i % 7, "name": f"run-{i % 13}"}


# -- zentrack ------------------------------------------------------------------------------


def instrument(totals: dict[str, float]) -> Callable[[], None]:
    """Time every ``get_*``/``put_*`` of MLMD and zentrack's direct SQLite writes into ``totals``.

    Patched on the classes, so the connections a flush opens and closes are
    all timed; returns the function that undoes the patches.
    """
    from ml_metadata.metadata_store.metadata_store import MetadataStore as Mlmd

    from zentrack._store.sqlite_writes import SqliteWriter

    patched: list[tuple[type, str, Any]] = []
    targets = [(Mlmd, "MLMD ", ("get_", "put_")), (SqliteWriter, "direct ", ("insert", "first_"))]
    for cls, label, prefixes in targets:
        for name, attribute in inspect.getmembers_static(cls):
            if not name.startswith(prefixes) or not inspect.isfunction(attribute):
                continue  # (properties are not evaluated: some log warnings when read)

            def timed(
                *args: Any, _method: Any = attribute, _name: str = label + name, **kwargs: Any
            ) -> Any:
                start = time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    totals[_name] += time.perf_counter() - start

            patched.append((cls, name, attribute))
            setattr(cls, name, timed)

    def undo() -> None:
        for cls, name, attribute in patched:
            setattr(cls, name, attribute)

    return undo


def zentrack_round(n: int, outcome: Outcome, breakdowns: list[dict[str, float]]) -> float:
    """Journal ``n`` calls, time ``zt.flush()``; return records per second."""
    with temp_dir("flush") as directory:
        tracker = zt.init(str(directory / "metadata.sqlite"), cache=False)
        hold_background_flush(tracker)
        tracker.store.mlmd  # noqa: B018  (open the store and create its schema now)
        for i in range(n):
            args, kwargs = call_args(i)
            f(*args, **kwargs)
        totals: dict[str, float] = defaultdict(float)
        undo = instrument(totals)
        try:
            start = time.perf_counter()
            written = zt.flush()
            elapsed = time.perf_counter() - start
        finally:
            undo()
        if written != n:
            outcome.fail(f"zt.flush() wrote {written} records, expected {n}")
        totals["total"] = elapsed
        breakdowns.append(dict(totals))
        tracker.close()
    return n / elapsed


# -- raw MLMD baselines --------------------------------------------------------------------


def open_raw_store(path: Path) -> Any:
    """An MLMD store on a new SQLite file, WAL mode set first as zentrack does."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(config)


def build_executions(
    type_id: int, n: int, offset: int = 0, fingerprint_ids: bool = False
) -> list[Any]:
    """Executions with the custom properties zentrack writes for ``f``'s calls.

    ``fingerprint_ids``: the external id is the fingerprint, as zentrack
    writes a fingerprint's first execution; else the record id.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    code = hashlib.sha256(b"code").hexdigest()
    out = []
    for i in range(offset, offset + n):
        args, kwargs = call_args(i)
        fp = hashlib.sha256(str(i).encode()).hexdigest()
        record_id = f"0123456789abcdef-{i}"
        params = {
            "epochs": kwargs["epochs"],
            "lr": kwargs["lr"],
            "name": kwargs["name"],
            "x": args[0],
        }
        record = json.dumps(
            {
                "v": 1,
                "id": record_id,
                "fp": fp,
                "p": params,
                "i": {},
                "st": "COMPLETE",
                "t0": 1795676127136830000 + i,
                "t1": 1795676127136840000 + i,
                "step": "f",
                "src": "__main__.f",
                "code": code,
                "ver": None,
            },
            separators=(",", ":"),
        )
        execution = pb.Execution(
            type_id=type_id,
            external_id=fp if fingerprint_ids else record_id,
            last_known_state=pb.Execution.COMPLETE,
        )
        props = execution.custom_properties
        props["x"].int_value = args[0]
        props["lr"].double_value = kwargs["lr"]
        props["epochs"].int_value = kwargs["epochs"]
        props["name"].string_value = kwargs["name"]
        props["zentrack.fingerprint"].string_value = fp
        props["zentrack.record"].string_value = record
        out.append(execution)
    return out


def raw_round(n: int, batch: int, fingerprint_ids: bool = False) -> float:
    """Time raw ``put_executions`` of ``n`` executions, ``batch`` per call; records/s."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    with temp_dir("raw") as directory:
        store = open_raw_store(directory / "raw.sqlite")
        type_id = store.put_execution_type(pb.ExecutionType(name="bench.step"))
        executions = build_executions(type_id, n, fingerprint_ids=fingerprint_ids)
        start = time.perf_counter()
        for i in range(0, n, batch):
            store.put_executions(executions[i : i + batch])
        elapsed = time.perf_counter() - start
        del store
    return n / elapsed


# -- report --------------------------------------------------------------------------------


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    n = 2_000 if args.quick else 20_000
    sample = 30 if args.quick else 300
    rounds = args.rounds or (2 if args.quick else 5)
    header(
        "bench_flush: zt.flush() throughput into SQLite MLMD vs raw MLMD put_executions",
        args,
        f"{rounds} rounds, subjects in shuffled order each round, fresh SQLite files each time",
        f"zentrack: {n:,} tracked calls of f(x, *, lr, epochs, name), distinct fingerprints, "
        "journaled with the background drainer held off (batch_size=10**12, max_age=1e9 s "
        "on the tracker), store opened before timing, then zt.flush() timed",
        f"baselines: raw put_executions of {n:,} executions (batches of {BATCH}) and of "
        f"{sample} executions one per call; same 6 custom properties + external_id "
        "(the record id; also, batched, the fingerprint as zentrack writes it)",
    )
    outcome = Outcome()
    breakdowns: list[dict[str, float]] = []
    results = interleaved(
        {
            "zentrack": lambda: zentrack_round(n, outcome, breakdowns),
            "batch": lambda: raw_round(n, BATCH),
            "same": lambda: raw_round(n, BATCH, fingerprint_ids=True),
            "single": lambda: raw_round(sample, 1),
        },
        rounds,
        args.seed,
    )
    zentrack_rate = median(results["zentrack"])
    print(
        f"   zentrack zt.flush()               {fmt_rate(zentrack_rate):>10}  "
        f"{spread(results['zentrack'], '{:,.0f}')}  ({n / zentrack_rate:.2f} s for {n:,})"
    )
    print(
        f"   MLMD put_executions, {BATCH} a call  {fmt_rate(median(results['batch'])):>10}  "
        f"{spread(results['batch'], '{:,.0f}')}"
    )
    print(
        f"   the same, zentrack's external ids {fmt_rate(median(results['same'])):>10}  "
        f"{spread(results['same'], '{:,.0f}')}"
    )
    print(
        f"   MLMD put_executions, 1 a call     {fmt_rate(median(results['single'])):>10}  "
        f"{spread(results['single'], '{:,.0f}')}"
    )
    to_batch = paired(results, "zentrack", "batch", "ratio")
    to_same = paired(results, "zentrack", "same", "ratio")
    to_single = paired(results, "zentrack", "single", "ratio")
    print(f"   ratio zentrack / batched MLMD:       {median(to_batch):.2f} {spread(to_batch)}")
    print(
        f"   ratio zentrack / batched MLMD, zentrack's external ids (same records): "
        f"{median(to_same):.2f} {spread(to_same)}"
    )
    print(f"   ratio zentrack / one-at-a-time MLMD: {median(to_single):.2f} {spread(to_single)}")
    print()
    print("-- where zt.flush() spends its time (µs per record, median over rounds)")
    total_us = median([b["total"] / n * 1e6 for b in breakdowns])
    called = {k for b in breakdowns for k in b if k != "total"}
    first = [f"MLMD {c}" for c in MLMD_CALLS]
    for name in [*[c for c in first if c in called], *sorted(called - set(first))]:
        values = [b.get(name, 0.0) / n * 1e6 for b in breakdowns]
        print(f"   {name:43} {median(values):7.1f} µs")
    rest = median(
        [(b["total"] - sum(v for k, v in b.items() if k != "total")) / n * 1e6 for b in breakdowns]
    )
    print(f"   zentrack Python: journal read, JSON parse, rows, offsets {rest:7.1f} µs")
    print(f"   total                                       {total_us:7.1f} µs")
    print(
        f"   raw put_executions ({BATCH} a call) for comparison   "
        f"{1e6 / median(results['batch']):7.1f} µs"
    )
    outcome.target(
        "zt.flush() throughput",
        zentrack_rate,
        TARGET_PER_S,
        unit="records/s",
        higher_is_better=True,
        fmt="{:,.0f}",
    )
    return outcome.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
