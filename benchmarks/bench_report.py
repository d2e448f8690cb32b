"""The HTML comparison report at 1,000 runs: file size, Python render time, browser build time.

Subject: a comparison of 1,000 runs x 10 params x 3 metrics (a random sweep).
Baseline in the same rounds: the same sweep cut to 24 runs, the size of a
small grid search.  Each round renders both in Python and opens both files in
one headless Chromium (:mod:`tests.browser`), in a shuffled order.

Figures (medians over rounds, with the interquartile range):

* render: ``render_comparison_html`` in Python, ms;
* script: the page's own build, from its first line of script to the last
  view built (``window.ztBuildMs``), ms;
* ready: navigation start to the first frame drawn after the build (two
  ``requestAnimationFrame`` callbacks after the load event), ms: what a person
  waits for.

Targets: the 1,000-run page is ready in at most 2 s (2,000 ms); the file is
at most 2 MB (an invariant: always checked, as the size does not vary).  Also
checked always: the page builds without a script error, one line per run.
Where Chromium is missing, the browser figures are skipped with a note.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, Outcome, header, interleaved, median, parse_args, spread, temp_dir

sys.path.insert(0, str(REPO))

import zentrack as zt
from tests.browser import Browser, BrowserUnavailable
from zentrack._report.html import render_comparison_html

TARGET_READY_MS = 2000.0
TARGET_BYTES = 2_000_000
RUNS = 1000
SMALL = 24

READY = """new Promise((done) => {
  const settle = () => requestAnimationFrame(() => requestAnimationFrame(() =>
    done({ready: performance.now(), script: window.ztBuildMs,
          lines: document.querySelectorAll('#zt-pc-svg path.pc-line').length})));
  if (document.readyState === "complete") settle(); else addEventListener("load", settle);
})"""


def sweep(count: int, seed: int = 0) -> zt.Comparison:
    """``count`` runs of a random 10-param sweep with accuracy, loss and fit time."""
    rng = random.Random(seed)
    runs: list[zt.Run[Any]] = []
    params: dict[str, list[Any]] = {}
    metrics: dict[str, list[Any]] = {}
    start = 1_700_000_000.0
    for _ in range(count):
        took = rng.uniform(20, 400)
        runs.append(
            zt.Run(
                id=time.strftime("%Y%m%dT%H%M%S", time.gmtime(start))
                + f"-{rng.getrandbits(32):08x}",
                pipeline="train",
                state="FAILED" if rng.random() < 0.03 else "COMPLETE",
                steps=[],
                params={},
                config_path=None,
                started=start,
                ended=start + took,
            )
        )
        start += took + rng.uniform(1, 30)
        row = {
            "train.lr": 10 ** rng.uniform(-4, -1),
            "train.depth": rng.randint(2, 12),
            "train.optimizer": rng.choice(["adam", "adamw", "sgd", "rmsprop"]),
            "train.dropout": rng.choice([0.0, 0.1, 0.2, 0.3, 0.5]),
            "train.batch_size": rng.choice([16, 32, 64, 128, 256]),
            "train.weight_decay": 10 ** rng.uniform(-6, -2),
            "train.warmup_steps": rng.choice([0, 100, 500, 1000]),
            "train.seed": rng.getrandbits(16),
            "data.augment": rng.random() < 0.5,
            "data.fraction": round(rng.uniform(0.3, 1.0), 3),
        }
        for key, value in row.items():
            params.setdefault(key, []).append(value)
        accuracy = 0.7 + 0.25 * rng.random()
        for key, value in {
            "evaluate.accuracy": accuracy,
            "evaluate.loss": 1.1 - accuracy + rng.gauss(0, 0.02),
            "train.fit_time": took * 0.9,
        }.items():
            metrics.setdefault(key, []).append(value)
    return zt.Comparison(runs=runs, params=params, metrics=metrics)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    rounds = args.rounds or (2 if args.quick else 7)
    header(
        "HTML comparison report: 1,000 runs vs 24",
        args,
        f"{RUNS} and {SMALL} runs x 10 params x 3 metrics; {rounds} rounds, interleaved",
    )
    outcome = Outcome()
    big, small = sweep(RUNS, args.seed), sweep(SMALL, args.seed)
    with temp_dir("report") as scratch:
        files = {RUNS: scratch / "big.html", SMALL: scratch / "small.html"}
        pages = {RUNS: big, SMALL: small}
        render = interleaved(
            {str(n): _render_timer(pages[n], files[n]) for n in pages}, rounds, args.seed
        )
        sizes = {n: files[n].stat().st_size for n in files}
        print(
            f"   file size: {RUNS} runs {sizes[RUNS] / 1e6:.3f} MB, {SMALL} runs "
            f"{sizes[SMALL] / 1e3:.1f} kB ({sizes[RUNS] / RUNS:.0f} bytes per run at {RUNS})"
        )
        for n in (RUNS, SMALL):
            print(
                f"   render in Python, {n:>4} runs: {median(render[str(n)]):7.1f} ms "
                f"{spread(render[str(n)], '{:.1f}')}"
            )
        outcome.target(
            "file size at 1,000 runs",
            sizes[RUNS] / 1e6,
            TARGET_BYTES / 1e6,
            unit="MB",
            fmt="{:.3f}",
        )
        if sizes[RUNS] > TARGET_BYTES:
            outcome.fail(f"the 1,000-run file is {sizes[RUNS]:,} bytes, over {TARGET_BYTES:,}")
        try:
            browser = Browser(width=1280, height=900)
        except BrowserUnavailable as error:
            outcome.note(f"browser figures skipped: {error}")
            return outcome.finish(args.check)
        with browser:
            opened = _open_all(browser, files, rounds, args.seed, outcome)
        for n in (RUNS, SMALL):
            script = [r["script"] for r in opened[n]]
            ready = [r["ready"] for r in opened[n]]
            print(
                f"   in Chromium, {n:>4} runs: script {median(script):7.1f} ms "
                f"{spread(script, '{:.0f}')}, ready {median(ready):7.1f} ms "
                f"{spread(ready, '{:.0f}')}"
            )
        ratio = median(
            [b["ready"] / s["ready"] for b, s in zip(opened[RUNS], opened[SMALL], strict=True)]
        )
        print(f"   ready, {RUNS} runs / {SMALL} runs (paired per round): {ratio:.2f}x")
        outcome.target(
            "page ready at 1,000 runs",
            median([r["ready"] for r in opened[RUNS]]),
            TARGET_READY_MS,
            unit="ms",
            fmt="{:.0f}",
        )
    return outcome.finish(args.check)


def _render_timer(comparison: zt.Comparison, path: Path) -> Any:
    def measure() -> float:
        t0 = time.perf_counter()
        page = render_comparison_html(comparison)
        elapsed = (time.perf_counter() - t0) * 1e3
        path.write_text(page, encoding="utf-8")
        return elapsed

    return measure


def _open_all(
    browser: Browser, files: dict[int, Path], rounds: int, seed: int, outcome: Outcome
) -> dict[int, list[dict[str, float]]]:
    """Open each file once per round, shuffled; keep what the page reports."""
    results: dict[int, list[dict[str, float]]] = {n: [] for n in files}
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(files)
        rng.shuffle(order)
        for n in order:
            browser.errors.clear()
            browser.open(files[n].as_uri())
            found = browser.evaluate(READY)
            if browser.errors:
                outcome.fail(f"script error in the {n}-run page: {browser.errors[0]}", "js")
            if found["lines"] != n:
                outcome.fail(f"the {n}-run page drew {found['lines']} lines", "lines")
            results[n].append({"ready": found["ready"], "script": found["script"]})
    return results


if __name__ == "__main__":
    sys.exit(main())
