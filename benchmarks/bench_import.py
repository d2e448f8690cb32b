"""Import cost: ``python -c "import zentrack"`` over ``python -c pass``.

Target: ``import zentrack`` adds at most 30 ms (median of interleaved runs).

Every round starts one fresh interpreter of each kind, in a shuffled order,
from a scratch working directory, and times it end to end (fork, exec,
interpreter start-up, import, exit); the figure is the median of the
per-round differences.  As a cross-check, the import is also timed inside
the child with ``time.perf_counter`` around it.

Invariant (always checked, a failure exits with status 1): ``import zentrack``
leaves ``ml_metadata``, ``numpy``, ``pandas`` and ``google.protobuf`` (and
their submodules) out of ``sys.modules``: MLMD is loaded at the first flush
or read, never at import.  The script prints every module the import adds,
and the slowest ones from ``python -X importtime``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections import defaultdict

from _common import (
    Outcome,
    header,
    interleaved,
    median,
    paired,
    parse_args,
    spread,
    temp_dir,
)

TARGET_MS = 30.0
FORBIDDEN = ("ml_metadata", "numpy", "pandas", "google.protobuf")

PROBE = """
import sys, time
before = set(sys.modules)
start = time.perf_counter()
import zentrack
elapsed = time.perf_counter() - start
new, present = sorted(set(sys.modules) - before), sorted(sys.modules)
import json
print(json.dumps({"elapsed": elapsed, "new": new, "all": present}))
"""


def timed_run(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    """Wall-clock seconds of one child interpreter, start to exit."""
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def probe(cwd: str, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def importtime(cwd: str, env: dict[str, str], runs: int) -> dict[str, list[tuple[int, int]]]:
    """``-X importtime`` (self µs, cumulative µs) per module, over ``runs`` children."""
    found: dict[str, list[tuple[int, int]]] = defaultdict(list)
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import zentrack"],
            cwd=cwd,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stderr
        for match in pattern.finditer(err):
            found[match.group(4)].append((int(match.group(1)), int(match.group(2))))
    return found


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    rounds = args.rounds or (8 if args.quick else 60)
    header(
        "bench_import: import zentrack over python -c pass",
        args,
        f"{rounds} rounds, one child interpreter of each kind per round, shuffled order; "
        "median of per-round differences [p25-p75]",
    )
    outcome = Outcome()
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    with temp_dir("import") as scratch:
        cwd = str(scratch)
        bare = [sys.executable, "-c", "pass"]
        subject = [sys.executable, "-c", "import zentrack"]
        # What a user pays before the first tracked call: the import plus @step.
        decorate = [
            sys.executable,
            "-c",
            "import zentrack as zt\n@zt.step\ndef f(x=1):\n    return x",
        ]
        try:  # warm the page cache and .pyc files; fail cleanly if the import is broken
            details = probe(cwd, env)
        except subprocess.CalledProcessError as exc:
            outcome.fail(f"import zentrack fails: {(exc.stderr or '').strip()[-600:]}")
            return outcome.finish(args.check)
        timed_run(bare, cwd, env)
        results = interleaved(
            {
                "pass": lambda: timed_run(bare, cwd, env),
                "import": lambda: timed_run(subject, cwd, env),
                "decorate": lambda: timed_run(decorate, cwd, env),
            },
            rounds,
            args.seed,
        )
        inside = [float(probe(cwd, env)["elapsed"]) * 1e3 for _ in range(5 if args.quick else 15)]
        details = probe(cwd, env)
        timings = importtime(cwd, env, 2 if args.quick else 7)

    diff_ms = [d * 1e3 for d in paired(results, "import", "pass")]
    print(f"   python -c pass             {median(results['pass']) * 1e3:7.1f} ms")
    print(f"   python -c 'import zentrack' {median(results['import']) * 1e3:6.1f} ms")
    print(f"   difference                 {median(diff_ms):7.1f} ms {spread(diff_ms, '{:.1f}')}")
    first_step = [d * 1e3 for d in paired(results, "decorate", "pass")]
    print(
        f"   import zentrack + a first @step, over pass: {median(first_step):.1f} ms "
        f"{spread(first_step, '{:.1f}')} (the names load on first use; MLMD still not)"
    )
    print(
        f"   cross-check, import timed inside the child: {median(inside):.1f} ms "
        f"{spread(inside, '{:.1f}')}"
    )

    new = [str(m) for m in details["new"]]  # type: ignore[attr-defined]
    print()
    print(f"-- modules that import zentrack adds to sys.modules: {len(new)}")
    groups: dict[str, list[str]] = defaultdict(list)
    for name in new:
        groups[name.split(".")[0]].append(name)
    singles = sorted(top for top, names in groups.items() if len(names) == 1)
    for top in sorted(groups, key=lambda t: (-len(groups[t]), t)):
        names = groups[top]
        if len(names) > 1:
            shown = ", ".join(names[:6]) + (f", ... (+{len(names) - 6})" if len(names) > 6 else "")
            print(f"   {top:10} {len(names):3}  {shown}")
    wrapped = textwrap.wrap(", ".join(singles), width=90)
    print(f"   {len(singles)} more, one module each:")
    for line in wrapped:
        print(f"      {line}")
    print()
    print("-- slowest of those by -X importtime self time (median over runs)")
    rows = [
        (median([s for s, _ in v]), median([c for _, c in v]), name)
        for name, v in timings.items()
        if name in new
    ]
    for self_us, cumulative_us, name in sorted(rows, reverse=True)[:15]:
        print(
            f"   {name:44} self {self_us / 1e3:6.2f} ms   cumulative {cumulative_us / 1e3:6.2f} ms"
        )
    if "zentrack" in timings:
        print(
            f"   zentrack, cumulative under -X importtime (inflated by its own overhead): "
            f"{median([c for _, c in timings['zentrack']]) / 1e3:.1f} ms"
        )

    print()
    present = [str(m) for m in details["all"]]  # type: ignore[attr-defined]
    loaded = [m for m in present if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    if loaded:
        by_zentrack = [m for m in loaded if m in new]
        outcome.fail(
            f"{', '.join(loaded)} in sys.modules after import zentrack"
            + (
                f" (loaded by the import: {', '.join(by_zentrack)})"
                if by_zentrack
                else " (already there before it: a .pth or sitecustomize?)"
            )
        )
    else:
        print(f"   OK: none of {', '.join(FORBIDDEN)} is in sys.modules after import zentrack")
    outcome.target("import zentrack time", median(diff_ms), TARGET_MS, unit="ms", fmt="{:.1f}")
    return outcome.finish(args.check)


if __name__ == "__main__":
    sys.exit(main())
