"""Cache hits: a zentrack step served from its cache vs a ``joblib.Memory`` hit.

Target: a warm-process hit of a small output costs at most 1/3 of joblib's
hit of the same function (joblib's is ~150 us here). Both are measured in the
same rounds, interleaved. Also reported: a hit in a fresh process (the first
call there, which also digests the step's code), for zentrack and joblib,
timed inside the child.

Invariant (always checked): the hit returns the value the function returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from _common import (
    REPO,
    Outcome,
    abandon_active_tracker,
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

TARGET_RATIO = 1 / 3

STEPS = '''
def scores(n, scale=1.0):
    return {"n": n, "values": [i * scale for i in range(8)]}
'''

CHILD = '''
import json, sys, time
sys.path.insert(0, {scratch!r})
t0 = time.perf_counter()
if {which!r} == "zentrack":
    import zentrack as zt
    import bench_cache_steps as m
    zt.init({store!r})
    step = zt.step(m.scores)
    t1 = time.perf_counter()
    value = step(3, scale=0.5)
else:
    import joblib
    import bench_cache_steps as m
    step = joblib.Memory({joblib_dir!r}, verbose=0).cache(m.scores)
    t1 = time.perf_counter()
    value = step(3, scale=0.5)
t2 = time.perf_counter()
print(json.dumps({{"call": t2 - t1, "total": t2 - t0, "value": value}}))
'''


def child(which: str, scratch: str, store: str, joblib_dir: str) -> dict[str, object]:
    code = CHILD.format(which=which, scratch=scratch, store=store, joblib_dir=joblib_dir)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=dict(os.environ, GLOG_minloglevel="2"),
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    rounds = args.rounds or (5 if args.quick else 40)
    number = 50 if args.quick else 300
    header(
        "bench_cache: warm cache hit, zentrack vs joblib.Memory",
        args,
        f"{rounds} rounds x {number} hits, shuffled order per round; median [p25-p75]",
    )
    outcome = Outcome()
    try:
        import joblib
    except ImportError:
        outcome.note("joblib is not installed (pip install joblib): no baseline to compare")
        return outcome.finish(args.check)

    import zentrack as zt

    with temp_dir("cache") as scratch:
        (scratch / "bench_cache_steps.py").write_text(textwrap.dedent(STEPS))
        sys.path.insert(0, str(scratch))
        import bench_cache_steps as module

        store = str(scratch / "store" / "metadata.sqlite")
        joblib_dir = str(scratch / "joblib")
        tracker = zt.init(store)
        hold_background_flush(tracker)
        tracked = zt.step(module.scores)
        memory = joblib.Memory(joblib_dir, verbose=0)
        cached = memory.cache(module.scores)
        expected = module.scores(3, scale=0.5)
        for fn in (tracked, cached):  # fill both caches
            fn(3, scale=0.5)
        if tracked(3, scale=0.5) != expected or cached(3, scale=0.5) != expected:
            outcome.fail("a cache hit returned a different value")
        namespace = {"tracked": tracked, "cached": cached, "plain": module.scores}
        results = interleaved(
            {
                "plain": per_call("plain(3, scale=0.5)", namespace, number),
                "zentrack": per_call("tracked(3, scale=0.5)", namespace, number),
                "joblib": per_call("cached(3, scale=0.5)", namespace, number),
            },
            rounds,
            args.seed,
        )
        ratio = paired(results, "zentrack", "joblib", how="ratio")
        for name in ("plain", "zentrack", "joblib"):
            values = [v * 1e6 for v in results[name]]
            print(f"   {name:<9} {median(values):8.1f} us per call {spread(values, '{:.1f}')}")
        print(f"   zentrack / joblib: {median(ratio):.3f} {spread(ratio, '{:.3f}')}")

        fresh = {"zentrack": [], "joblib": []}  # type: dict[str, list[float]]
        for _ in range(2 if args.quick else 6):
            for which in ("zentrack", "joblib"):
                data = child(which, str(scratch), store, joblib_dir)
                if data["value"] != expected:
                    outcome.fail(f"{which}: a fresh-process hit returned a different value")
                fresh[which].append(float(data["call"]) * 1e3)  # type: ignore[arg-type]
        for which, values in fresh.items():
            print(
                f"   fresh process, first call (a hit), {which:<8}: {median(values):6.2f} ms "
                f"{spread(values, '{:.2f}')}"
            )
        abandon_active_tracker()
    outcome.target(
        "warm hit, zentrack/joblib", median(ratio), TARGET_RATIO, unit="x", fmt="{:.3f}"
    )
    return outcome.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
