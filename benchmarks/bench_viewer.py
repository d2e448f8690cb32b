"""``zentrack ui`` at 1,000 recorded runs: how long its pages take to answer, and their size.

Subject: a store of 1,000 runs of a two-step pipeline (real ``@zt.pipeline``
calls, 200 in ``--quick``), served by the viewer on 127.0.0.1.  Baseline in
the same rounds: a store of 24 such runs.  Each round fetches, over HTTP,
the runs list (``/``), one run's page and the compare page of the whole
pipeline from both viewers, in a shuffled order.

Figures (medians over rounds, with the interquartile range): the time from
the request to the last byte, ms, and the page's size.

Target: the runs list of 1,000 runs answers in at most 2 s (2,000 ms), the
time the report itself may take to build in a browser.  Always checked:
every page answers 200 and the list shows one row per run (the newest 200,
its default).
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import REPO, Outcome, header, interleaved, median, parse_args, spread, temp_dir

sys.path.insert(0, str(REPO))

import zentrack as zt
from zentrack._cli.values import parse_value
from zentrack._record import tracker as _tracker
from zentrack._report.pages import LIMIT
from zentrack._report.server import ViewerServer, start
from zentrack._runs.query import read_runs
from zentrack._store.location import parse

TARGET_LIST_MS = 2000.0
RUNS = 1000
QUICK_RUNS = 200
SMALL = 24


@zt.step
def prepare(n: int = 100, seed: int = 0) -> int:
    return n + seed


@zt.step(params=["lr", "depth", "optimizer"])
def train(data: int, *, lr: float = 0.01, depth: int = 4, optimizer: str = "adam") -> float:
    accuracy = 0.9 - abs(lr - 0.01) * 2 + depth / 1000
    zt.log_metrics(accuracy=accuracy, loss=1 - accuracy)
    return accuracy


@zt.pipeline
def sweep(lr: float = 0.01, depth: int = 4, optimizer: str = "adam", seed: int = 0) -> float:
    return train(prepare(100, seed=seed), lr=lr, depth=depth, optimizer=optimizer)


def record(store: Path, count: int) -> None:
    """Record ``count`` runs into ``store``."""
    zt.init(store)
    for i in range(count):
        sweep(lr=0.001 * (1 + i % 40), depth=2 + i % 7, optimizer=("adam", "sgd")[i % 2], seed=i)
    zt.flush()


def serve(store: Path) -> tuple[ViewerServer, str]:
    """A viewer of ``store`` serving from a thread, and the id of its newest run."""
    tracker = _tracker.Tracker(parse(store))
    newest = read_runs(tracker.store)[0].id
    server = start(tracker, port=0, parse_value=parse_value)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, newest


def fetch(url: str, outcome: Outcome) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = response.read()
        status = response.status
    elapsed = (time.perf_counter() - t0) * 1e3
    if status != 200:
        outcome.fail(f"{url} answered {status}", url)
    return elapsed, body


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    rounds = args.rounds or (3 if args.quick else 7)
    big_count = QUICK_RUNS if args.quick else RUNS
    header(
        f"zentrack ui: {big_count:,} runs vs {SMALL}",
        args,
        f"two-step pipeline runs; pages: list, one run, compare; {rounds} rounds, interleaved",
    )
    outcome = Outcome()
    with temp_dir("viewer") as scratch:
        t0 = time.perf_counter()
        stores = {n: scratch / str(n) / "metadata.sqlite" for n in (big_count, SMALL)}
        for n, store in stores.items():
            store.parent.mkdir()
            record(store, n)
        _tracker.active().close()
        print(f"   recorded {big_count + SMALL} runs in {time.perf_counter() - t0:.0f} s")
        served = {n: serve(store) for n, store in stores.items()}
        servers = {n: server for n, (server, _) in served.items()}
        newest = {id(server): run for server, run in served.values()}
        sizes: dict[str, int] = {}
        pages = {
            "list": lambda s: s.url,
            "run": lambda s: s.url + "run?id=" + newest[id(s)],
            "compare": lambda s: s.url + "compare?pipeline=sweep",
        }

        def measure(name: str, n: int) -> Any:
            def once() -> float:
                elapsed, body = fetch(pages[name](servers[n]), outcome)
                sizes[f"{name} {n}"] = len(body)
                rows = body.count(b'<input type="checkbox" name="run"')
                if name == "list" and rows != min(n, LIMIT):
                    outcome.fail(f"the list of {n} runs shows {rows} rows", "rows")
                return elapsed

            return once

        subjects = {f"{name} {n}": measure(name, n) for name in pages for n in servers}
        times = interleaved(subjects, rounds, args.seed)
        for name in pages:
            for n in servers:
                key = f"{name} {n}"
                print(
                    f"   {name:<8} {n:>5} runs: {median(times[key]):8.1f} ms "
                    f"{spread(times[key], '{:.0f}')}  {sizes[key] / 1e3:8.1f} kB"
                )
        outcome.target(
            f"runs list at {big_count:,} runs",
            median(times[f"list {big_count}"]),
            TARGET_LIST_MS,
            unit="ms",
            fmt="{:.0f}",
        )
        if args.quick:
            outcome.note(f"--quick records {QUICK_RUNS} runs, not {RUNS}")
        for server in servers.values():
            server.shutdown()
            server.server_close()
            server.viewer.tracker.close()
    return outcome.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
