"""Write speed next to MLflow: one tracked call vs one MLflow run vs one raw MLMD write.

Two parts, each interleaved round by round (shuffled order each round), each
on its own fresh SQLite stores in a temp dir:

* **one write**, per call:

  * *zentrack, call*: a tracked call of a function step with 5 params
    (``int``, ``float``, ``str``, ``bool``, ``int``), cache off, with the
    tracker ``zt.init`` returns: the record is journaled before the call
    returns (durable), and every 1000th call starts the background drainer,
    whose start is amortised in; batches of 1000 calls;
  * *zentrack, call + flush*: 200 such calls, then ``zt.flush()``: the cost
    per record of having it in MLMD, written in this process;
  * *MLflow*: ``mlflow.start_run()`` + ``mlflow.log_params`` (the same 5
    values) + ``mlflow.end_run()`` on an SQLite tracking store (needs
    ``pip install mlflow-skinny sqlalchemy alembic``; skipped with a note
    when mlflow is not installed);
  * *raw MLMD*: one ``put_executions([execution])`` with the same 5 custom
    properties and an ``external_id``, on an SQLite file in WAL mode (as
    zentrack opens it).

* **entry-call overhead**, per call, over batches of 1000: a class step's
  ``t.run(1)`` (5 ``__init__`` params) and a function step's ``f(1, lr=0.02)``
  (5 params), each minus the same undecorated class / function in the same
  round.  Target (issue 11, item 6): both **<= 5 us**, with the background
  drainer's start amortised in (the tracker as ``zt.init`` returns it: the
  1000th call of a batch starts the drainer); each batch's records are
  flushed, untimed, after it.

Only the public API (``import zentrack as zt``), plain ``ml_metadata`` and
MLflow are used.  Records left waiting are flushed (untimed) between rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import logging
import os
import sqlite3
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _common import (
    Outcome,
    header,
    interleaved,
    median,
    paired,
    parse_args,
    per_call,
    spread,
    temp_dir,
)

import zentrack as zt

TARGET_OVERHEAD_US = 5.0
CALL_BATCH = 1000
FLUSH_BATCH = 200


def params(i: int) -> dict[str, Any]:
    """5 params: int (differs per call), float, str, bool, int."""
    return {"units": i, "lr": 0.01 + i * 1e-9, "optimizer": "adam", "shuffle": True, "epochs": 3}


def plain_train(
    *,
    units: int = 0,
    lr: float = 0.01,
    optimizer: str = "adam",
    shuffle: bool = True,
    epochs: int = 1,
) -> int:
    return units


train = zt.step(name="trainer", cache=False)(plain_train)


class PlainTrainer:
    """A class with 5 ``__init__`` params and an entry point, undecorated."""

    def __init__(
        self,
        units: int = 0,
        lr: float = 0.01,
        optimizer: str = "adam",
        shuffle: bool = True,
        epochs: int = 1,
    ) -> None:
        self.units = units

    def run(self, x: int) -> int:
        return x


@zt.step(name="cls_trainer", cache=False)
class Trainer:
    """The same class as a class step: ``run`` is the tracked entry point."""

    def __init__(
        self,
        units: int = 0,
        lr: float = 0.01,
        optimizer: str = "adam",
        shuffle: bool = True,
        epochs: int = 1,
    ) -> None:
        self.units = units

    def run(self, x: int) -> int:
        return x


def plain_fn(
    x: int,
    *,
    units: int = 0,
    lr: float = 0.01,
    optimizer: str = "adam",
    shuffle: bool = True,
    epochs: int = 1,
) -> int:
    return x


tracked_fn = zt.step(name="fn_trainer", cache=False)(plain_fn)


# -- one write -----------------------------------------------------------------------------


def zentrack_call(counter: Iterator[int]) -> Callable[[], float]:
    """Seconds per tracked call over a batch (records flushed afterwards, untimed)."""

    def measure() -> float:
        start = time.perf_counter()
        for i in itertools.islice(counter, CALL_BATCH):
            train(**params(i))
        elapsed = time.perf_counter() - start
        zt.flush()
        return elapsed / CALL_BATCH

    return measure


def zentrack_call_and_flush(counter: Iterator[int]) -> Callable[[], float]:
    """Seconds per record for tracked calls and the flush that writes them to MLMD."""

    def measure() -> float:
        zt.flush()  # nothing of another subject is written in the timed flush
        start = time.perf_counter()
        for i in itertools.islice(counter, FLUSH_BATCH):
            train(**params(i))
        zt.flush()
        return (time.perf_counter() - start) / FLUSH_BATCH

    return measure


def call_without_tracking(counter: Iterator[int]) -> Callable[[], float]:
    """The same loop with the undecorated function (the loop's own cost)."""

    def measure() -> float:
        start = time.perf_counter()
        for i in itertools.islice(counter, CALL_BATCH):
            plain_train(**params(i))
        return (time.perf_counter() - start) / CALL_BATCH

    return measure


def mlflow_run(directory: Path, number: int) -> Callable[[], float]:
    """Seconds per MLflow run with 5 params (start_run, log_params, end_run)."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)

    mlflow.set_tracking_uri(f"sqlite:///{directory / 'mlflow.db'}")
    mlflow.set_experiment("trainer")
    counter = itertools.count()

    def measure() -> float:
        start = time.perf_counter()
        for i in itertools.islice(counter, number):
            mlflow.start_run()
            mlflow.log_params(params(i))
            mlflow.end_run()
        return (time.perf_counter() - start) / number

    return measure


def mlmd_put(directory: Path, number: int) -> Callable[[], float]:
    """Seconds per raw ``put_executions`` of one execution with 5 custom properties."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    path = directory / "raw.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")  # as zentrack opens a new store
    connection.close()
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    type_id = store.put_execution_type(pb.ExecutionType(name="trainer"))
    counter = itertools.count()

    def write(i: int) -> None:
        execution = pb.Execution(
            type_id=type_id, external_id=f"call-{i}", last_known_state=pb.Execution.COMPLETE
        )
        props = execution.custom_properties
        p = params(i)
        props["units"].int_value = p["units"]
        props["lr"].double_value = p["lr"]
        props["optimizer"].string_value = p["optimizer"]
        props["shuffle"].bool_value = p["shuffle"]
        props["epochs"].int_value = p["epochs"]
        store.put_executions([execution])

    def measure() -> float:
        start = time.perf_counter()
        for i in itertools.islice(counter, number):
            write(i)
        return (time.perf_counter() - start) / number

    return measure


def one_write(args: argparse.Namespace, outcome: Outcome, has_mlflow: bool) -> None:
    print("== one write: tracked call vs MLflow run vs raw MLMD put (per call)")
    rounds = args.rounds or (3 if args.quick else 7)
    with temp_dir("vs-mlflow") as directory:
        zt.init(str(directory / "metadata.sqlite"), cache=False)
        counter = itertools.count()
        train(**params(next(counter)))  # journal open, store created: steady state
        zt.flush()
        subjects: dict[str, Callable[[], float]] = {
            "plain call": call_without_tracking(itertools.count()),
            "zentrack call": zentrack_call(counter),
            "zentrack call + flush": zentrack_call_and_flush(counter),
            "raw MLMD put": mlmd_put(directory, 10 if args.quick else 40),
        }
        if has_mlflow:
            subjects["MLflow run"] = mlflow_run(directory, 3 if args.quick else 10)
        for measure in subjects.values():
            measure()  # warm-up: imports, schema creation, first connection
        results = interleaved(subjects, rounds, seed=args.seed)
        zt.flush()
        calls = next(counter)
        stored = len(zt.find(step="trainer"))
        if stored != calls:
            outcome.fail(f"{calls} tracked calls of 'trainer' but {stored} records in the store")
    print(f"   {'subject':<24}{'per call':>12}   {'vs zentrack call':<26}vs call + flush")
    for name in subjects:
        values = results[name]
        line = f"   {name:<24}{_us(median(values)):>12}"
        if name not in ("plain call", "zentrack call"):
            ratios = paired(results, name, "zentrack call", how="ratio")
            line += f"   {_ratio(ratios):<26}"
        if name in ("raw MLMD put", "MLflow run"):
            ratios = paired(results, name, "zentrack call + flush", how="ratio")
            line += f"{_ratio(ratios)}"
        print(line)
    overhead = paired(results, "zentrack call", "plain call")
    print(
        f"   tracked call minus the plain loop: {_us(median(overhead))} "
        f"{spread([v * 1e6 for v in overhead])} us"
    )
    print(f"   ({rounds} rounds; 'zentrack call' = journaled, durable; MLMD written later)")
    if not has_mlflow:
        print("   MLflow skipped (see the note)")
    print()


# -- entry-call overhead -----------------------------------------------------------------------


def then_flush(measure: Callable[[], float]) -> Callable[[], float]:
    """``measure``, then (untimed) ``zt.flush()``: no backlog builds up over the rounds."""

    def measured_then_flushed() -> float:
        value = measure()
        zt.flush()
        return value

    return measured_then_flushed


def overhead(args: argparse.Namespace, outcome: Outcome) -> None:
    print("== entry-call overhead: class step .run vs function step (per call)")

    rounds = args.rounds or (10 if args.quick else 40)
    with temp_dir("overhead") as directory:
        zt.init(str(directory / "metadata.sqlite"), cache=False)
        plain_t, tracked_t = PlainTrainer(lr=0.02), Trainer(lr=0.02)
        tracked_t.run(1)
        tracked_fn(1, lr=0.02)
        zt.flush()
        namespace = {
            "plain_t": plain_t,
            "tracked_t": tracked_t,
            "plain_fn": plain_fn,
            "tracked_fn": tracked_fn,
        }
        subjects = {
            "plain class .run": per_call("plain_t.run(1)", namespace, CALL_BATCH),
            "class step .run": then_flush(per_call("tracked_t.run(1)", namespace, CALL_BATCH)),
            "plain function": per_call("plain_fn(1, lr=0.02)", namespace, CALL_BATCH),
            "function step": then_flush(per_call("tracked_fn(1, lr=0.02)", namespace, CALL_BATCH)),
        }
        results = interleaved(subjects, rounds, seed=args.seed)
    cls = [v * 1e6 for v in paired(results, "class step .run", "plain class .run")]
    fn = [v * 1e6 for v in paired(results, "function step", "plain function")]
    gap = [c - f for c, f in zip(cls, fn, strict=True)]
    print(f"   class step .run overhead   {median(cls):7.2f} us {spread(cls)}")
    print(f"   function step overhead     {median(fn):7.2f} us {spread(fn)}")
    print(f"   class minus function       {median(gap):7.2f} us {spread(gap)}")
    print(f"   ({rounds} rounds of {CALL_BATCH} calls; tracker as zt.init returns it)")
    print()
    outcome.target("class step .run overhead", median(cls), TARGET_OVERHEAD_US, unit="us")
    outcome.target("function step overhead", median(fn), TARGET_OVERHEAD_US, unit="us")


def _ratio(ratios: list[float]) -> str:
    """Median ratio with its interquartile range, readable at any size."""

    def one(r: float) -> str:
        return f"{r:,.0f}x" if r >= 100 else f"{r:.3g}x"

    if len(ratios) < 2:
        return one(ratios[0])
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return f"{one(median(ratios))} [{one(q1)}-{one(q3)}]"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


def mlflow_installed() -> bool:
    """Whether mlflow can be imported (without importing it: that takes seconds)."""
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False


def main() -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow subject")

    args = parse_args(__doc__.splitlines()[0], extra)
    has_mlflow = not args.no_mlflow and mlflow_installed()
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    header(
        "write speed: tracked call vs MLflow run vs raw MLMD write",
        args,
        "SQLite stores (WAL) in a temp dir; tracker as zt.init returns it (batch_size 1000)",
    )
    outcome = Outcome()
    if not has_mlflow:
        outcome.note(
            "MLflow skipped: "
            + ("--no-mlflow" if args.no_mlflow else "pip install mlflow-skinny sqlalchemy alembic")
        )
    one_write(args, outcome, has_mlflow)
    overhead(args, outcome)
    return outcome.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
