"""Read speed at scale: lookups, typed queries and run listings on large stores.

Targets (issue 11, judged at 100,000 executions on SQLite):

* ``zt.lookup(full_fingerprint)``: **<= 100 us**;
* ``zt.find(step="trainer", units=N // 3)`` (1 hit): **<= 20 ms**;
* ``zt.find(step="trainer", lr__lt=0.0101)`` (1 % hits): **<= 150 ms**.

Also measured: the newest 20 records and the top 20 by a metric
(``limit=20, order_by="-started"`` / ``"-accuracy"``: a query matching
every record returns its first 20).

The store: ``N`` executions (10,000 and 100,000; 2,000 only with ``--quick``)
of one function step ``trainer`` with 5 params (``units`` int, distinct per
call; ``lr`` float with more than 6 decimals; ``optimizer`` str; ``shuffle``
bool; ``epochs`` int) and one metric (``accuracy``, logged with
``zt.log_metrics``).  Every 100th call runs inside a pipeline run of
``training`` (``N / 100`` runs).  It is written by zentrack itself, tracked
call by tracked call, in a child process, and kept in a cache folder
(``--cache-dir``, default ``$TMPDIR/zt-bench-cache-<uid>``) keyed by ``N``,
:data:`DATA_VERSION`, the zentrack version and a digest of zentrack's source
files, so later runs reuse it (``--rebuild`` forces a new one).  Each run
measures a fresh copy of the cached file, after one tracked call of another
step (``probe``) in the measuring process, so the store has a live, drained
journal as it does in a user's session.

Each read is measured next to, in the same rounds (shuffled order each round):

* **raw MLMD**: plain ``ml_metadata`` calls that fetch the same records from
  a copy of the same file (MLMD links its own SQLite: two SQLite libraries
  must not have one file open in one process): ``get_executions_by_external_ids``
  (lookup), ``get_executions`` with a ``filter_query`` on the custom property
  (find), ``ListOptions(limit=20, order_by=CREATE_TIME)`` (newest 20; MLMD
  cannot order by a property: no top-20 figure), the run contexts and each
  run's executions (runs listing, compare);
* **MLflow** (optional, ``pip install mlflow-skinny sqlalchemy alembic``):
  ``search_runs`` on an SQLite tracking store holding the same ``N`` runs
  (5 params, 1 metric) and ``N / 100`` pipeline runs in a second experiment.
  MLflow's API writes ~20 runs/s here, so the store is built by cloning the
  rows MLflow itself wrote for a template run (``runs``, ``params``,
  ``tags``, ``metrics``, ``latest_metrics``) with each run's own values.
  MLflow params are strings, compared with ``=``, ``!=`` and ``LIKE`` only:
  the 1 % ``lr`` query is ``params.lr LIKE '0.0100%'`` (the same rows);
  ``lookup`` is ``get_run(run_id)`` by primary key.  Without mlflow
  installed the column is skipped, with a note.

Every result is checked (hit counts, the record found); a raw MLMD
``filter_query`` on a double may find other rows than the exact query (MLMD
keeps 6 decimals of a double): that is reported as a note.
Figures: per-call medians over rounds; ratios are per round, then the median.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import inspect
import logging
import os
import shutil
import sqlite3
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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
    temp_dir,
)

import zentrack as zt

SIZES = (10_000, 100_000)
QUICK_SIZES = (2_000,)
#: One call in RUN_EVERY runs inside a pipeline run.
RUN_EVERY = 100
COMPARE_LAST = 20
STEP = "trainer"
PIPELINE = "training"
OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_BELOW = 0.0101
ACCURACY_ABOVE = 0.995
#: Targets at 100,000 executions, seconds per call.
TARGETS = {"lookup": 100e-6, "find, 1 hit": 20e-3, "find, 1% hits": 150e-3}
TARGET_SIZE = 100_000
#: Bump when the data written (params, metric, steps, runs) changes: cached stores are rebuilt.
DATA_VERSION = 1


# -- the data --------------------------------------------------------------------------------


def params(i: int, n: int) -> dict[str, Any]:
    """The 5 params of call ``i`` of ``n``: ``lr < 0.0101`` for 1 % of them."""
    return {
        "units": i,
        "lr": 0.01 + 0.01 * (i + 0.5) / n,
        "optimizer": OPTIMIZERS[i % 3],
        "shuffle": i % 2 == 0,
        "epochs": 1 + i % 10,
    }


def accuracy(i: int, n: int) -> float:
    """A metric spread evenly over [0.5, 1): above 0.995 for 1 % of the calls."""
    return 0.5 + 0.5 * ((i * 7919) % n) / n


@zt.step(name=STEP, cache=False)
def train(
    *,
    units: int = 0,
    lr: float = 0.01,
    optimizer: str = "adam",
    shuffle: bool = True,
    epochs: int = 1,
) -> None:
    zt.log_metrics(accuracy=accuracy(units, _SIZE[0]))


#: The store size being built (the metric depends on it).
_SIZE = [1]


@zt.pipeline(name=PIPELINE)
def training(
    units: int = 0, lr: float = 0.01, optimizer: str = "adam", shuffle: bool = True, epochs: int = 1
) -> None:
    train(units=units, lr=lr, optimizer=optimizer, shuffle=shuffle, epochs=epochs)


@zt.step(name="probe", cache=False)
def probe(*, x: int = 0) -> int:
    return x


def expected(n: int) -> dict[str, int]:
    """What each read must return, computed from the data."""
    return {
        "find, 1 hit": 1,
        "find, 1% hits": sum(params(i, n)["lr"] < LR_BELOW for i in range(n)),
        "find metric, 1%": sum(accuracy(i, n) > ACCURACY_ABOVE for i in range(n)),
        "find newest 20": FIRST,
        "find top 20 by metric": FIRST,
        "runs listing": len(range(0, n, RUN_EVERY)),
        "compare_runs, 20 runs": min(COMPARE_LAST, len(range(0, n, RUN_EVERY))),
    }


# -- building and caching stores ---------------------------------------------------------------


def _digest(package: Path) -> str:
    """A digest of zentrack's source: a change of how it writes gives a new store."""
    sha = hashlib.sha256()
    for file in sorted(package.rglob("*.py")):
        sha.update(str(file.relative_to(package)).encode())
        sha.update(file.read_bytes())
    return sha.hexdigest()[:12]


def zentrack_key(n: int) -> str:
    spec = importlib.util.find_spec("zentrack")
    assert spec is not None and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    return f"zentrack-{n}-d{DATA_VERSION}-v{zt.__version__}-{_digest(package)}"


def mlflow_key(n: int, mlflow_version: str) -> str:
    return f"mlflow-{n}-d{DATA_VERSION}-v{mlflow_version}"


def cache_root(requested: str | None) -> Path:
    """The cache folder: ours (owned by this user, not a symlink, not writable by others)."""
    root = (
        Path(requested)
        if requested
        else Path(tempfile.gettempdir()) / f"zt-bench-cache-{os.getuid()}"
    )
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(root)
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise SystemExit(
            f"Cache folder {str(root)!r} is a symlink, not owned by this user or writable by "
            "others; remove it or pass another with --cache-dir."
        )
    return root


def built(root: Path, builds: dict[str, list[str]], rebuild: bool) -> dict[str, Path]:
    """The folders ``root/key`` of ``builds`` (key -> this script's build args).

    Missing ones are built at the same time, each by a child process running
    this script into a temp folder beside it, moved into place when complete.
    """
    folders = {key: root / key for key in builds}
    missing = {
        key: args
        for key, args in builds.items()
        if rebuild or not (folders[key] / "complete").exists()
    }
    children = []
    start = time.perf_counter()
    for key, args in missing.items():
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        command = [sys.executable, str(Path(__file__).resolve()), *args, str(work)]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        children.append((key, work, child))
    failed = []
    for key, work, child in children:
        _, err = child.communicate()
        if child.returncode == 0:
            (work / "complete").touch()
            if folders[key].exists():
                shutil.rmtree(folders[key])
            os.replace(work, folders[key])
            print(f"   built {key} in {time.perf_counter() - start:.1f} s")
        else:
            shutil.rmtree(work, ignore_errors=True)
            failed.append(f"building {key} failed:\n{err.decode(errors='replace')[-3000:]}")
    if failed:
        raise SystemExit("\n".join(failed))
    return folders


def build_zentrack_store(n: int, folder: Path) -> None:
    """Write ``n`` tracked calls into ``folder/metadata.sqlite`` (child process)."""
    _SIZE[0] = n
    tracker = zt.init(str(folder / "metadata.sqlite"), cache=False)
    for i in range(n):
        if i % RUN_EVERY == 0:
            training(**params(i, n))
        else:
            train(**params(i, n))
    zt.flush()
    tracker.close()  # also folds the write-ahead log into the file that is cached
    path = folder / "metadata.sqlite"
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        (found,) = connection.execute(
            "SELECT count(*) FROM Execution e JOIN Type t ON t.id = e.type_id WHERE t.name = ?",
            (STEP_TYPE,),
        ).fetchone()
    finally:
        connection.close()
    wal = path.with_name(path.name + "-wal")
    if found != n or (wal.exists() and wal.stat().st_size):
        raise SystemExit(f"the built store holds {found} of {n} executions (or an unfolded WAL)")


def _quiet_mlflow() -> Any:
    warnings.filterwarnings("ignore")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return mlflow


def build_mlflow_store(n: int, folder: Path) -> None:
    """The same data in an MLflow SQLite tracking store (child process).

    Two template runs are written through MLflow's API; every other run is a
    clone of the template's rows with its own id, name, times and values.
    """
    mlflow = _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    experiments = {}
    for name in (STEP, PIPELINE):
        experiments[name] = client.create_experiment(
            name, artifact_location=(folder / "artifacts" / name).as_uri()
        )
    templates = {}
    for name, experiment in experiments.items():
        run = client.create_run(experiment, tags={"mlflow.source.name": "bench_queries.py"})
        client.log_batch(
            run.info.run_id,
            params=[mlflow.entities.Param(k, str(v)) for k, v in params(0, n).items()],
            metrics=[mlflow.entities.Metric("accuracy", accuracy(0, n), 0, 0)],
        )
        client.set_terminated(run.info.run_id)
        templates[name] = run.info.run_id
    del client
    connection = sqlite3.connect(db)
    try:
        with connection:
            for name, template in templates.items():
                indexes = range(1, n) if name == STEP else range(RUN_EVERY, n, RUN_EVERY)
                _clone_runs(connection, template, indexes, n)
    finally:
        connection.close()
    ids = _mlflow_ids(db)
    if len(ids) != n:
        raise SystemExit(f"the MLflow store has {len(ids)} runs of {STEP}, expected {n}")


def _clone_runs(connection: sqlite3.Connection, template: str, indexes: range, n: int) -> None:
    """Copy ``template``'s rows once per index, with that index's id, name, times and values."""
    start, end = connection.execute(
        "SELECT start_time, end_time FROM runs WHERE run_uuid = ?", (template,)
    ).fetchone()
    run_ids = {i: uuid.uuid4().hex for i in indexes}
    for table in ("runs", "params", "tags", "metrics", "latest_metrics"):
        cursor = connection.execute(f"SELECT * FROM {table} WHERE run_uuid = ?", (template,))
        columns = [d[0] for d in cursor.description]
        template_rows = cursor.fetchall()
        out = []
        for i in indexes:
            values = {k: str(v) for k, v in params(i, n).items()}
            for row in template_rows:
                record = dict(zip(columns, row, strict=True))
                record["run_uuid"] = run_ids[i]
                if table == "runs":
                    record["name"] = f"run-{i}"
                    record["start_time"] = start + i
                    record["end_time"] = end + i
                    if record.get("artifact_uri"):
                        record["artifact_uri"] = record["artifact_uri"].replace(
                            template, run_ids[i]
                        )
                elif table == "params":
                    record["value"] = values[record["key"]]
                elif table == "tags" and record["key"] == "mlflow.runName":
                    record["value"] = f"run-{i}"
                elif table in ("metrics", "latest_metrics"):
                    record["value"] = accuracy(i, n)
                    record["timestamp"] = start + i
                out.append(tuple(record[c] for c in columns))
        marks = ", ".join("?" * len(columns))
        connection.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", out)


def _mlflow_ids(db: Path) -> dict[str, str]:
    """``{units value: run_uuid}`` of the trainer experiment's runs."""
    connection = sqlite3.connect(db)
    try:
        return dict(
            connection.execute(
                "SELECT p.value, p.run_uuid FROM params p JOIN runs r USING (run_uuid) "
                "JOIN experiments e USING (experiment_id) WHERE e.name = ? AND p.key = 'units'",
                (STEP,),
            ).fetchall()
        )
    finally:
        connection.close()


# -- the reads ---------------------------------------------------------------------------------

PIPELINE_CONTEXT = "zentrack.Pipeline"
STEP_TYPE = "zentrack.step." + STEP
ROWS = (
    "lookup",
    "find, 1 hit",
    "find, 1% hits",
    "find metric, 1%",
    "find newest 20",
    "find top 20 by metric",
    "runs listing",
    "compare_runs, 20 runs",
)
FIRST = 20
#: MLflow's search_runs ordered by a metric took 11.8 s per call at 10,000 runs (it
#: reads every run's metrics): beyond this size it is not measured.
MLFLOW_METRIC_ORDER_MAX = 10_000


def open_mlmd(path: Path) -> Any:
    """A plain ``ml_metadata`` store on ``path``, read-only."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def zentrack_reads(n: int, fingerprint: str) -> dict[str, Callable[[], int]]:
    """The reads through zentrack's public API; each returns how many records it found.

    A zentrack without ``limit=`` (before issue 11) skips the two rows that need it.
    """
    reads: dict[str, Callable[[], int]] = {
        "lookup": lambda: len(zt.lookup(fingerprint)),
        "find, 1 hit": lambda: len(zt.find(step=STEP, units=n // 3)),
        "find, 1% hits": lambda: len(zt.find(step=STEP, lr__lt=LR_BELOW)),
        "find metric, 1%": lambda: len(zt.find(step=STEP, accuracy__gt=ACCURACY_ABOVE)),
        "find newest 20": lambda: len(zt.find(step=STEP, order_by="-started", limit=FIRST)),
        "find top 20 by metric": lambda: len(
            zt.find(step=STEP, order_by="-accuracy", limit=FIRST)
        ),
        "runs listing": lambda: len(zt.runs(pipeline=PIPELINE)),
        "compare_runs, 20 runs": lambda: len(
            zt.compare_runs(pipeline=PIPELINE, last=COMPARE_LAST).runs
        ),
    }
    if "limit" not in inspect.signature(zt.find).parameters:
        del reads["find newest 20"], reads["find top 20 by metric"]
    return reads


def mlmd_reads(mlmd: Any, n: int, fingerprint: str) -> dict[str, Callable[[], int]]:
    """The same reads with plain ``ml_metadata`` calls on a copy of the same file."""
    from ml_metadata.metadata_store import ListOptions, OrderByField

    newest = ListOptions(
        limit=FIRST,
        order_by=OrderByField.CREATE_TIME,
        is_asc=False,
        filter_query=f"type = '{STEP_TYPE}'",
    )

    def query(condition: str) -> int:
        options = ListOptions(filter_query=f"type = '{STEP_TYPE}' AND {condition}")
        return len(mlmd.get_executions(list_options=options))

    def run_steps(newest: int | None) -> int:
        parent = mlmd.get_context_by_type_and_name(PIPELINE_CONTEXT, PIPELINE)
        children = mlmd.get_children_contexts_by_context(parent.id)
        children.sort(key=lambda c: c.create_time_since_epoch, reverse=True)
        chosen = children[:newest] if newest else children
        for context in chosen:
            mlmd.get_executions_by_context(context.id)
        return len(chosen)

    return {
        "lookup": lambda: len(mlmd.get_executions_by_external_ids([fingerprint])),
        "find, 1 hit": lambda: query(f"custom_properties.units.int_value = {n // 3}"),
        "find, 1% hits": lambda: query(f"custom_properties.lr.double_value < {LR_BELOW!r}"),
        "find metric, 1%": lambda: query(
            f"custom_properties.`zentrack.metric.accuracy`.double_value > {ACCURACY_ABOVE!r}"
        ),
        "find newest 20": lambda: len(mlmd.get_executions(list_options=newest)),
        "runs listing": lambda: run_steps(None),
        "compare_runs, 20 runs": lambda: run_steps(COMPARE_LAST),
    }


def mlflow_reads(db: Path, n: int) -> dict[str, Callable[[], int]]:
    """The same reads with MLflow's client on its SQLite tracking store."""
    _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    step = client.get_experiment_by_name(STEP).experiment_id
    pipeline = client.get_experiment_by_name(PIPELINE).experiment_id
    run_id = _mlflow_ids(db)[str(n // 2)]
    newest = ["attributes.start_time DESC"]

    def search(experiment: str, condition: str = "", limit: int = 50_000) -> int:
        found = client.search_runs([experiment], condition, max_results=limit, order_by=newest)
        return len(found)

    reads: dict[str, Callable[[], int]] = {
        "lookup": lambda: int(client.get_run(run_id).info.run_id == run_id),
        "find, 1 hit": lambda: search(step, f"params.units = '{n // 3}'"),
        "find, 1% hits": lambda: search(step, "params.lr LIKE '0.0100%'"),
        "find metric, 1%": lambda: search(step, f"metrics.accuracy > {ACCURACY_ABOVE!r}"),
        "find newest 20": lambda: search(step, limit=FIRST),
        "find top 20 by metric": lambda: len(
            client.search_runs(
                [step], "", max_results=FIRST, order_by=["metrics.accuracy DESC"]
            )
        ),
        "runs listing": lambda: search(pipeline),
        "compare_runs, 20 runs": lambda: search(pipeline, limit=COMPARE_LAST),
    }
    if n > MLFLOW_METRIC_ORDER_MAX:
        del reads["find top 20 by metric"]
    return reads


# -- measuring ---------------------------------------------------------------------------------


def per_call(read: Callable[[], int], number: int) -> Callable[[], float]:
    """A measurement: seconds per ``read()`` over ``number`` calls (garbage collector off)."""
    import timeit

    timer = timeit.Timer(read)

    def measure() -> float:
        return timer.timeit(number) / number

    return measure


def fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x"


def low(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=4, method="inclusive")[0] if len(values) > 1 else values[0]
    )


def high(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=4, method="inclusive")[2] if len(values) > 1 else values[0]
    )


def fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} us"


@contextlib.contextmanager
def measured_store(zentrack_dir: Path) -> Iterator[Path]:
    """A fresh copy of the cached store, with a live journal of this process."""
    with temp_dir("queries") as directory:
        shutil.copy2(zentrack_dir / "metadata.sqlite", directory / "metadata.sqlite")
        tracker = zt.init(str(directory / "metadata.sqlite"), cache=False)
        probe(x=1)  # this process's journal: open, then drained, as in a user's session
        zt.flush()
        try:
            yield directory / "metadata.sqlite"
        finally:
            tracker.close()


def measure_size(
    n: int,
    zentrack_dir: Path,
    mlflow_db: Path | None,
    args: argparse.Namespace,
    outcome: Outcome,
    figures: dict[tuple[int, str, str], float],
) -> None:
    runs = len(range(0, n, RUN_EVERY))
    print(f"== {n:,} executions of {STEP!r} (5 params, 1 metric), {runs:,} pipeline runs")
    want = expected(n)
    with measured_store(zentrack_dir) as path:
        target = zt.find(step=STEP, units=n // 2)
        if len(target) != 1:
            outcome.fail(f"N={n}: find(units={n // 2}) found {len(target)} records, expected 1")
            return
        fingerprint = target[0].fingerprint
        want["lookup"] = 1
        raw_copy = path.with_name("raw-mlmd.sqlite")
        shutil.copy2(zentrack_dir / "metadata.sqlite", raw_copy)
        sides: dict[str, dict[str, Callable[[], int]]] = {
            "zentrack": zentrack_reads(n, fingerprint),
            "raw MLMD": mlmd_reads(open_mlmd(raw_copy), n, fingerprint),
        }
        if mlflow_db is not None:
            sides["MLflow"] = mlflow_reads(mlflow_db, n)
        for reads in sides.values():  # a row zentrack cannot read is not measured at all
            for row in set(reads) - set(sides["zentrack"]):
                del reads[row]
        budget = 0.03 if args.quick else 0.15
        subjects: dict[str, Callable[[], float]] = {}
        for side, reads in sides.items():
            for row, read in reads.items():
                start = time.perf_counter()
                found = read()  # warm-up, and the result check
                elapsed = time.perf_counter() - start
                if found != want[row]:
                    if side == "raw MLMD" and row.startswith("find"):
                        outcome.note(
                            f"N={n}: raw MLMD filter_query for {row!r} found {found}, the exact "
                            f"answer is {want[row]} (MLMD keeps 6 decimals of a double)"
                        )
                    else:
                        outcome.fail(f"N={n}: {side} {row!r} found {found}, expected {want[row]}")
                number = max(1, min(2000, int(budget / max(elapsed, 1e-7))))
                subjects[f"{side}|{row}"] = per_call(read, number)
        rounds = args.rounds or (3 if args.quick else 5)
        results = interleaved(subjects, rounds, seed=args.seed)
    columns = list(sides)
    head = f"   {'read':<24}" + "".join(f"{c:>14}" for c in columns)
    ratio_heads = [f"zt/{c}" for c in columns[1:]]
    print(head + "".join(f"{h:>26}" for h in ratio_heads))
    for row in ROWS:
        line = f"   {row:<24}"
        for side in columns:
            if f"{side}|{row}" not in results:
                line += f"{'-':>14}"
                continue
            value = median(results[f"{side}|{row}"])
            figures[(n, side, row)] = value
            line += f"{fmt_time(value):>14}"
        for side in columns[1:]:
            if f"{side}|{row}" not in results or f"zentrack|{row}" not in results:
                line += f"{'-':>26}"
                continue
            ratios = paired(results, f"zentrack|{row}", f"{side}|{row}", how="ratio")
            text = (
                f"{fmt_ratio(median(ratios))} [{fmt_ratio(low(ratios))}-{fmt_ratio(high(ratios))}]"
            )
            figures[(n, f"zt/{side}", row)] = median(ratios)
            line += f"{text:>26}"
        print(line)
    print(f"   ({rounds} rounds; medians per call; ratios per round, median [p25-p75])")
    if mlflow_db is None:
        print("   MLflow column skipped (see the note)")
    print()
    if n == TARGET_SIZE:
        for row, limit in TARGETS.items():
            outcome.target(
                f"{row} at {n:,}",
                figures[(n, "zentrack", row)] * 1e3,
                limit * 1e3,
                unit="ms",
                fmt="{:,.2f}",
            )


def mlflow_installed() -> bool:
    """Whether mlflow can be imported (without importing it: that takes seconds)."""
    try:
        return importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):
        return False


def main() -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--sizes", type=int, nargs="+", help="store sizes (executions)")
        parser.add_argument("--cache-dir", help="where built stores are kept between runs")
        parser.add_argument("--rebuild", action="store_true", help="build the stores anew")
        parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow column")
        parser.add_argument(
            "--build-zentrack", nargs=2, metavar=("N", "DIR"), help=argparse.SUPPRESS
        )
        parser.add_argument("--build-mlflow", nargs=2, metavar=("N", "DIR"), help=argparse.SUPPRESS)

    args = parse_args(__doc__.splitlines()[0], extra)
    if args.build_zentrack:
        build_zentrack_store(int(args.build_zentrack[0]), Path(args.build_zentrack[1]))
        return 0
    if args.build_mlflow:
        build_mlflow_store(int(args.build_mlflow[0]), Path(args.build_mlflow[1]))
        return 0
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    mlflow_version = None
    if not args.no_mlflow and mlflow_installed():
        from importlib.metadata import version

        mlflow_version = (
            version("mlflow-skinny") if _installed("mlflow-skinny") else version("mlflow")
        )
    header(
        "read speed: lookup, find, runs, compare_runs on large stores",
        args,
        f"sizes: {', '.join(f'{n:,}' for n in sizes)} executions; SQLite stores, WAL",
        "baselines: plain ml_metadata on the same file; "
        + (f"MLflow {mlflow_version} search_runs (SQLite)" if mlflow_version else "MLflow skipped"),
    )
    outcome = Outcome()
    if mlflow_version is None:
        outcome.note(
            "MLflow column skipped: "
            + ("--no-mlflow" if args.no_mlflow else "pip install mlflow-skinny sqlalchemy alembic")
        )
    root = cache_root(args.cache_dir)
    figures: dict[tuple[int, str, str], float] = {}
    for n in sizes:
        builds = {zentrack_key(n): ["--build-zentrack", str(n)]}
        if mlflow_version is not None:
            builds[mlflow_key(n, mlflow_version)] = ["--build-mlflow", str(n)]
        folders = built(root, builds, args.rebuild)
        zentrack_dir = folders[zentrack_key(n)]
        mlflow_db = None
        if mlflow_version is not None:
            mlflow_db = folders[mlflow_key(n, mlflow_version)] / "mlflow.db"
        measure_size(n, zentrack_dir, mlflow_db, args, outcome, figures)
    if TARGET_SIZE not in sizes:
        outcome.note(f"the targets are judged at {TARGET_SIZE:,} executions (not measured here)")
    return outcome.finish(args.check)


def _installed(distribution: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
