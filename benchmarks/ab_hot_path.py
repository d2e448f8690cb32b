"""Tracked-call overhead of two zentrack trees, measured in alternating pairs.

On a shared machine the minutes differ by more than a hot-path change: a
figure from one run and a figure from another, minutes apart, do not tell
the change from the noise.  This script alternates the two trees, ``--pairs``
times (which goes first alternates too), each a fresh process running
``bench_hot_path.py --only-default`` with ``PYTHONPATH`` set to the tree, and
prints the median of the per-pair differences (new minus base).

    git worktree add /tmp/base <revision>
    python benchmarks/ab_hot_path.py --base /tmp/base --new . --pairs 10 --rounds 80
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: The lines of bench_hot_path.py's scenario: the call's name, then its overhead.
OVERHEAD = re.compile(r"^\s+(f\(1, lr=0\.02\)|t\.run\(1\)).*overhead\s+([-\d.]+) µs", re.M)
KINDS = {"f(1, lr=0.02)": "function", "t.run(1)": "class entry"}


def measure(tree: Path, rounds: int) -> dict[str, float]:
    """One run of the default-tracker scenario with zentrack imported from ``tree``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [sys.executable, str(HERE / "bench_hot_path.py"), "--only-default"]
    done = subprocess.run(
        [*command, "--rounds", str(rounds)], env=env, capture_output=True, text=True, check=False
    )
    found = {KINDS[name]: float(value) for name, value in OVERHEAD.findall(done.stdout)}
    if set(found) != set(KINDS.values()):
        raise SystemExit(f"bench_hot_path.py gave no figures for {tree}:\n{done.stderr[-2000:]}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the tree measured first")
    parser.add_argument("--new", type=Path, default=HERE.parent, help="default: this tree")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=80, help="rounds of 1,000 calls per run")
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    for label, tree in trees.items():
        if not (tree / "zentrack" / "__init__.py").is_file():
            raise SystemExit(f"--{label} {tree} holds no zentrack/ package")
    print(f"== ab_hot_path: base {trees['base']}, new {trees['new']}")
    print(f"   {args.pairs} pairs of bench_hot_path.py --only-default --rounds {args.rounds}")
    runs: list[dict[str, dict[str, float]]] = []
    for i in range(args.pairs):
        order = ("base", "new") if i % 2 == 0 else ("new", "base")
        pair = {label: measure(trees[label], args.rounds) for label in order}
        runs.append(pair)
        print(
            "   "
            + "   ".join(
                f"{label}: " + ", ".join(f"{k} {pair[label][k]:.2f}" for k in KINDS.values())
                for label in ("base", "new")
            ),
            flush=True,
        )
    print()
    for kind in KINDS.values():
        base = [run["base"][kind] for run in runs]
        new = [run["new"][kind] for run in runs]
        diffs = [n - b for b, n in zip(base, new, strict=True)]
        print(
            f"   {kind:12} base {statistics.median(base):.2f} µs, new {statistics.median(new):.2f}"
            f" µs; paired difference {statistics.median(diffs):+.2f} µs"
            f" [{min(diffs):+.2f}, {max(diffs):+.2f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
