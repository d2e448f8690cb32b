"""Steps, pipelines and subprocess writers for ``tests/test_servers.py``.

Writers run in a subprocess (``python -m tests.server_workers CMD URL``) so
that an abort inside MLMD shows as an exit code instead of killing pytest.
Each prints one JSON line last.  Everything here is module-level so the
subprocess finds the same steps (and fingerprints) as the test process.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
from typing import Any

import zentrack as zt


@zt.step
def prepare(n: int = 3, *, scale: float = 1.0) -> list[float]:
    """Make ``n`` numbers (a cached step: its output becomes an artifact)."""
    return [float(i) * scale for i in range(n)]


@zt.step(name="Fitter")
class Fitter:
    """A class step with an upper-case name (MySQL compares names case-insensitively)."""

    def __init__(self, lr: float = 0.01, layers: Any = None) -> None:
        self.lr = lr
        self.layers = layers

    def run(self, data: list[float]) -> dict[str, Any]:
        zt.log_metrics(loss=1.0 - self.lr, **{"Loss": self.lr})
        return {"weights": [x * self.lr for x in data], "lr": self.lr}


@zt.step(params=["threshold"])
def score(model: Any, *, threshold: float = 0.5) -> float:
    """Score a model: ``model`` is an input from :class:`Fitter` (an INPUT event)."""
    return float(model["lr"]) + threshold


@zt.pipeline
def experiment(lr: float = 0.1, n: int = 3) -> float:
    """prepare -> Fitter -> score."""
    data = prepare(n)
    model = Fitter(lr=lr, layers=[8, 4]).run(data)
    return score(model)


class Diverged(Exception):
    """What :func:`diverge` raises."""


@zt.step(cache=False)
def diverge(lr: float = 1.0) -> None:
    """Always fails, with backslashes and quotes in its message."""
    raise Diverged(f"loss is nan at C:\\runs\\{lr!r} (\"bad\")")


@zt.step(cache=False)
def tick(i: int = 0) -> int:
    """A cheap, uncached step."""
    return 2 * i


@zt.step(cache=False)
def hazard(label: str = "", value: Any = None) -> str:
    """Record ``value`` as a parameter and as the metric ``m``."""
    zt.log_metrics(m=value)
    return label


@zt.pipeline
def hazard_run(label: str = "", value: Any = None) -> None:
    """A run whose own parameter and whose one step's parameter is ``value``."""
    hazard(label=label, value=value)


@zt.step(cache=False)
def cased(lr: int = 1, LR: int = 2) -> int:
    """Two parameters whose names differ only in case."""
    return lr + LR


LONG_PARAM = "p" * 300
_namespace: dict[str, Any] = {}
exec(f"def long_param({LONG_PARAM}=0.5):\n    return 1\n", _namespace)
long_param = zt.step(cache=False)(_namespace["long_param"])

_random = random.Random(5)
#: Every value MLMD's server backends cannot store verbatim, and neighbours.
VALUES: dict[str, Any] = {
    "nan": math.nan,
    "inf": math.inf,
    "minus_inf": -math.inf,
    "1e-7": 1e-7,
    "minus_zero": -0.0,
    "one_third": 1 / 3,
    "int_2_31_minus_1": 2**31 - 1,
    "int_2_31": 2**31,
    "int_minus_2_31_minus_1": -(2**31) - 1,
    "int_2_53_plus_1": 2**53 + 1,
    "int_2_63": 2**63,
    "int_minus_2_100": -(2**100),
    "backslash": "C:\\temp\\new\\x00",
    "backslashes_10kB": "\\" * 10_000,
    "random_10kB": "".join(_random.choice("aé日\\'\"%~#^ Z9") for _ in range(10_000)),
    "nul": "a\0b",
    "struct_prefix": "mlmd-struct::CgMKAWESAA==",
    "tilde": "~home",
    "parts_like": "x#parts",
    "quotes": "it's \"quoted\"",
    "nested": {
        "floats": [math.nan, -0.0, math.inf, 1e-7, 1 / 3],
        "ints": (2**31, 2**53 + 1, -(2**64)),
        "text": ["a\0", "mlmd-struct::x", "\\", "~"],
    },
}

#: Values only recorded by steps: a run also writes its values into a YAML config,
#: which takes ruamel.yaml minutes for a string of megabytes.
STEP_ONLY: dict[str, Any] = {
    # Over 4 MiB: split into parts on MySQL (its packets hold 16 MiB).
    "over_4_MiB": "0123456789abcdef\\" * (4 * 2**20 // 17 + 100),
}

#: Step, pipeline and metric names MLMD's server backends cannot store verbatim.
NAMES: dict[str, str] = {
    "backslash": "back\\slash",
    "upper": "Train",
    "lower": "train",
    "accent": "café",
    "tilde": "~tilde",
    "backslashes_200": "\\" * 200,
    "accents_200": "É" * 200,
    "trailing_space": "train ",
}
#: Metric names only (step and pipeline names refuse these).
METRIC_NAMES: dict[str, str] = {
    "nul": "a\0b",
    "long_300": "m" * 300,
    "struct": "mlmd-struct::m",
    "hash": "x#parts",  # the form of a split value's part count (see docs/mlmd.md)
}


def write_hazards(url: str) -> None:
    """Record every value and name hazard, flush, and report."""
    zt.init(url)
    for label, value in VALUES.items():
        hazard(label=label, value=value)
        hazard_run(label=label, value=value)
    for label, value in STEP_ONLY.items():
        hazard(label=label, value=value)
        hazard(label=label, value=value)
    long_param(**{LONG_PARAM: 0.25})
    cased(lr=3, LR=4)
    for label, name in NAMES.items():
        zt.step(name=name, cache=False)(_body)(x=len(label))
        zt.pipeline(name=name)(_pipeline_body)(label=label)
    for label, name in {**NAMES, **METRIC_NAMES}.items():
        _metric(label=label, name=name)
    written = zt.flush()
    print(json.dumps({"written": written}), flush=True)


def _body(x: int = 0) -> int:
    return x + 1


def _pipeline_body(label: str = "") -> str:
    tick(i=len(label))
    return label


@zt.step(cache=False)
def _metric(label: str = "", name: str = "") -> None:
    zt.log_metrics(**{name: len(label) + 0.5})


def killed_writer(url: str, calls: str) -> None:
    """Make tracked calls, then leave without flushing (``os._exit``: no atexit)."""
    zt.init(url)
    for i in range(int(calls)):
        tick(i=i)
    print(json.dumps({"calls": int(calls)}), flush=True)
    os._exit(0)


def main() -> None:
    commands = {"hazards": write_hazards, "killed_writer": killed_writer}
    commands[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
