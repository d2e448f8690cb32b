"""Importable steps and a subprocess runner for the caching tests.

Fresh interpreters (``python -c``, the ``zentrack`` CLI) import this module by
name (``tests.cache_steps``), so everything here is module-level.  Each step
appends one line to the file named by ``$ZT_RUNS`` when its body runs, so a
test can count runs across processes; without ``$ZT_RUNS`` it counts in
:data:`RUNS` only.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import zentrack as zt

#: Names of the step bodies that ran in this process, in order.
RUNS: list[str] = []
#: Appended to by :func:`mark_unpickled`: proof that a pickle was loaded.
UNPICKLED: list[str] = []

#: The repository root: subprocesses run there so ``tests.cache_steps`` imports.
ROOT = Path(__file__).resolve().parent.parent
#: The Python program that runs :func:`main` in a fresh interpreter.
RUNNER = "import sys; from tests.cache_steps import main; sys.exit(main(sys.argv[1:]))"


def ran(name: str) -> None:
    """Note that the body of step ``name`` ran (in :data:`RUNS` and ``$ZT_RUNS``)."""
    RUNS.append(name)
    path = os.environ.get("ZT_RUNS")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


def runs_in(path: Path) -> list[str]:
    """The step bodies that ran in subprocesses, as noted in the file ``path``."""
    return path.read_text().split() if path.exists() else []


class Point:
    """A plain object with no materializer of its own: cached through pickle."""

    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __repr__(self) -> str:
        return f"Point({self.x!r}, {self.y!r})"


def mark_unpickled(tag: str) -> str:
    """Called by a tampered pickle when it is loaded; must never run."""
    UNPICKLED.append(tag)
    return tag


class Trap:
    """Pickles to a call of :func:`mark_unpickled`: loading it leaves a trace."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (mark_unpickled, ("trap",))


@zt.step
def make_point(x: float = 1.0, y: float = 2.0) -> Point:
    """Return a :class:`Point` (the pickle materializer's case)."""
    ran("make_point")
    return Point(x, y)


@zt.step
def prep(n: int = 3, *, scale: float = 1.0) -> list[float]:
    """The upstream step of a chain: parameters only, so ``zentrack why`` can call it."""
    ran("prep")
    return [i * scale for i in range(n)]


@zt.step
def load(n: int = 3, *, scale: float = 1.0) -> Any:
    """The upstream step of a chain: returns data (an array), so it is passed on as an input."""
    import numpy

    ran("load")
    return numpy.arange(n, dtype=numpy.float64) * scale


@zt.step
def total(data: Any, *, offset: float = 0.0) -> float:
    """The downstream step of a chain: ``data`` is an input."""
    ran("total")
    return float(sum(data)) + offset


@zt.step
def split(n: int = 4) -> tuple[bytes, bytes]:
    """Return two halves, each remembered by lineage as ``<fp>#0`` and ``<fp>#1``."""
    ran("split")
    return bytes(range(n // 2)), bytes(range(n // 2, n))


@zt.step
def count(items: Any) -> int:
    """Count ``items`` (an input)."""
    ran("count")
    return len(items)


def main(argv: list[str]) -> int:
    """Run a step (or explain a call) in this fresh interpreter and print the result.

    ``argv``: ``STORE PATH_ENTRY MODULE:STEP KWARGS_JSON [run|explain|chain|split]``.
    ``PATH_ENTRY`` is put first on ``sys.path`` (``-`` for none), so modules a
    test wrote to its ``tmp_path`` import.  ``run`` prints the result as JSON;
    ``explain`` prints ``{"hit": ..., "reasons": [...]}``; ``chain`` runs
    ``total(load(**kwargs))`` and ``split`` runs ``count(split(**kwargs)[0])``.
    """
    store, path_entry, target, kwargs_text, *rest = argv
    mode = rest[0] if rest else "run"
    if path_entry != "-":
        sys.path.insert(0, path_entry)
    zt.init(store)
    module_name, _, attribute = target.partition(":")
    step = getattr(importlib.import_module(module_name), attribute)
    kwargs = json.loads(kwargs_text)
    if mode == "explain":
        explanation = zt.explain(step, **kwargs)
        print(json.dumps({"hit": explanation.hit, "reasons": explanation.reasons}))
    elif mode == "chain":
        print(json.dumps(total(load(**kwargs))))
    elif mode == "split":
        print(json.dumps(count(split(**kwargs)[0])))
    else:
        result = step(**kwargs)
        if hasattr(result, "tolist"):
            result = result.tolist()
        print(json.dumps(result, default=repr))
    return 0


def run_step_process(
    run_python: Any,
    store: Path,
    target: str,
    kwargs: dict[str, Any] | None = None,
    *,
    path: Path | None = None,
    mode: str = "run",
    runs_file: Path | None = None,
) -> Any:
    """Run :func:`main` in a fresh interpreter (``run_python`` fixture); return its JSON.

    Bytecode caching is off so that a module rewritten within the same second
    is never run from a stale ``.pyc``.
    """
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    if runs_file is not None:
        env["ZT_RUNS"] = str(runs_file)
    done = run_python(
        RUNNER,
        str(store),
        str(path) if path is not None else "-",
        target,
        json.dumps(kwargs or {}),
        mode,
        env=env,
    )
    if done.returncode != 0:
        raise AssertionError(f"subprocess failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def zentrack_cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zentrack --store STORE ARGS...`` at the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "zentrack", "--store", str(store), *args],
        cwd=ROOT,
        env={**os.environ, "GLOG_minloglevel": "2", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def states(step: str) -> list[str]:
    """The recorded states of ``step``'s calls, oldest first."""
    zt.flush()
    return [r.state for r in zt.find(step=step)]


def zentrack_warnings(records: list[logging.LogRecord]) -> list[str]:
    """Messages the ``zentrack`` logger emitted at WARNING or above (``caplog.records``)."""
    return [
        r.getMessage() for r in records if r.name == "zentrack" and r.levelno >= logging.WARNING
    ]
