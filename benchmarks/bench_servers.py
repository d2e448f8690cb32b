"""Reads on PostgreSQL and MariaDB stores: zentrack next to raw MLMD, same data, same rounds.

On the server backends zentrack reads through MLMD's own API (the direct
SQL reads are SQLite's): ``lookup`` is two indexed MLMD reads, ``find``
asks MLMD's ``filter_query`` for its driving condition's candidates (one
query for the param, one for the metric of that name) and confirms them in
Python, ``runs`` reads the run contexts (steps on first use).  This script
measures those figures for ``docs/benchmarks.md``.

Throwaway servers are started with ``tests/servers.py`` (``initdb``/``pg_ctl``
and ``mariadbd`` must be installed; durability off, as in the tests).  Each
store gets ``N`` tracked calls of the query benchmark's ``trainer`` step (5
params, 1 metric, one call in 100 inside a pipeline run), written by
zentrack; then every read is measured once per round, shuffled, next to
plain ``ml_metadata`` reads of the same records: ``get_executions_by_external_ids``
(lookup), ``get_executions`` with a ``filter_query`` (find; MLMD's own
pushdown, which keeps 6 decimals of a double), the pipeline's run contexts
and their executions (runs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from _common import REPO, Outcome, header, interleaved, median, paired, parse_args

sys.path.insert(0, str(REPO / "tests"))

import servers  # tests/servers.py: throwaway servers
from bench_queries import (
    ACCURACY_ABOVE,
    COMPARE_LAST,
    LR_BELOW,
    PIPELINE,
    RUN_EVERY,
    STEP,
    STEP_TYPE,
    expected,
    fmt_ratio,
    fmt_time,
    params,
    per_call,
    train,
    training,
    zentrack_reads,
)

import zentrack as zt

SIZES = (2_000, 10_000)
QUICK_SIZES = (500,)
ROWS = ("lookup", "find, 1 hit", "find, 1% hits", "find metric, 1%", "runs listing",
        "compare_runs, 20 runs")  # fmt: skip


def build(url: str, n: int) -> float:
    """Write ``n`` tracked calls into the store at ``url``; return the seconds it took."""
    import bench_queries

    bench_queries._SIZE[0] = n
    zt.init(url, cache=False)
    start = time.perf_counter()
    for i in range(n):
        if i % RUN_EVERY == 0:
            training(**params(i, n))
        else:
            train(**params(i, n))
    zt.flush()
    return time.perf_counter() - start


def raw_reads(mlmd: Any, n: int, fingerprint: str) -> dict[str, Callable[[], int]]:
    """Plain ``ml_metadata`` reads of the same records."""
    from ml_metadata.metadata_store import ListOptions

    def query(condition: str) -> int:
        options = ListOptions(filter_query=f"type = '{STEP_TYPE}' AND {condition}")
        return len(mlmd.get_executions(list_options=options))

    def run_steps(newest: int | None) -> int:
        parent = mlmd.get_context_by_type_and_name("zentrack.Pipeline", PIPELINE)
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
        "runs listing": lambda: run_steps(None),
        "compare_runs, 20 runs": lambda: run_steps(COMPARE_LAST),
    }


def measure(server: Any, n: int, args: Any, outcome: Outcome) -> None:
    database = server.new_database()
    url = server.url(database)
    seconds = build(url, n)
    print(f"== {server.kind}: {n:,} executions written by zentrack in {seconds:.1f} s")
    want = expected(n)
    target = zt.find(step=STEP, units=n // 2)
    if len(target) != 1:
        outcome.fail(f"{server.kind} N={n}: find(units={n // 2}) found {len(target)} records")
        return
    fingerprint = target[0].fingerprint
    want["lookup"] = 1
    sides = {
        "zentrack": {k: v for k, v in zentrack_reads(n, fingerprint).items() if k in ROWS},
        "raw MLMD": raw_reads(servers.plain_store(server, database), n, fingerprint),
    }
    budget = 0.03 if args.quick else 0.2
    subjects: dict[str, Callable[[], float]] = {}
    for side, reads in sides.items():
        for row, read in reads.items():
            start = time.perf_counter()
            found = read()
            elapsed = time.perf_counter() - start
            if found != want[row] and not (side == "raw MLMD" and row.startswith("find")):
                outcome.fail(f"{server.kind} N={n}: {side} {row!r} found {found}, not {want[row]}")
            number = max(1, min(500, int(budget / max(elapsed, 1e-7))))
            subjects[f"{side}|{row}"] = per_call(read, number)
    rounds = args.rounds or (3 if args.quick else 5)
    results = interleaved(subjects, rounds, seed=args.seed)
    print(f"   {'read':<24}{'zentrack':>14}{'raw MLMD':>14}{'zt/MLMD':>12}")
    for row in ROWS:
        ratio = median(paired(results, f"zentrack|{row}", f"raw MLMD|{row}", how="ratio"))
        print(
            f"   {row:<24}{fmt_time(median(results[f'zentrack|{row}'])):>14}"
            f"{fmt_time(median(results[f'raw MLMD|{row}'])):>14}{fmt_ratio(ratio):>12}"
        )
    print(f"   ({rounds} rounds; medians per call; ratios per round, median)")
    print()
    from zentrack._record import tracker as _tracker

    if _tracker._active is not None:
        _tracker._active.close()
        _tracker._active = None


def main() -> int:
    def extra(parser: Any) -> None:
        parser.add_argument("--sizes", type=int, nargs="+", help="store sizes (executions)")

    args = parse_args(__doc__.splitlines()[0], extra)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    header(
        "reads on PostgreSQL and MariaDB (through MLMD's API) next to raw MLMD",
        args,
        f"sizes: {', '.join(f'{n:,}' for n in sizes)} executions; throwaway servers",
    )
    outcome = Outcome()
    for start in (servers.postgres, servers.mariadb):
        with start() as server:
            if isinstance(server, str):
                outcome.note(server)
                continue
            for n in sizes:
                measure(server, n, args, outcome)
    return outcome.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
