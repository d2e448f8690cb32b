"""Pipelines and steps in an importable module, for run, rerun and CLI tests.

Configs name their sources as ``tests.pipelines_for_tests.<name>``, so
everything here must stay module-level.  Every step notes that it ran in
:data:`CALLS` and, when ``$ZT_TEST_LOG`` names a file, appends a line to it:
that is how a test (or a test's subprocess) sees that nothing ran.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import zentrack as zt

#: ``(step name, its params)`` for every step body that ran in this process.
CALLS: list[tuple[str, dict[str, Any]]] = []
#: The environment variable naming a file every step body appends a line to.
LOG_ENV = "ZT_TEST_LOG"
#: The environment variable naming the file :func:`waits_for_signal` creates once running.
STARTED_ENV = "ZT_TEST_STARTED"


class Boom(Exception):
    """The failure :func:`failing` raises."""


def _ran(step: str, **params: Any) -> None:
    CALLS.append((step, params))
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(f"{step} {params!r}\n")


@zt.step
def load_data(n: int = 4, *, scale: float = 1.0) -> list[float]:
    """Make ``n`` numbers: a function step whose arguments are all parameters."""
    _ran("load_data", n=n, scale=scale)
    return [float(i) * scale for i in range(n)]


@zt.step(name="trainer")
class TrainerStep:
    """The seed's trainer: every ``__init__`` keyword argument is a parameter."""

    def __init__(self, batch_size=1, lr=0.01, hidden_layers=None, epochs=1):
        self.batch_size = batch_size
        self.lr = lr
        self.hidden_layers = hidden_layers
        self.epochs = epochs

    def run(self, data):
        """Fit a "model" (a dict, so its lineage follows it) and log a loss."""
        _ran("trainer", batch_size=self.batch_size, lr=self.lr, epochs=self.epochs)
        zt.log_metrics(loss=round(1.0 - self.lr, 6))
        return {"weights": [x * self.lr for x in data], "lr": self.lr}


@zt.step(params=["threshold"])
def evaluate(model: Any, *, threshold: float = 0.5) -> float:
    """Score a model: ``model`` is an input (from the trainer), ``threshold`` a parameter."""
    _ran("evaluate", threshold=threshold)
    return model["lr"] + threshold


@zt.step(params=["lr", "epochs"])
def fit(data: Any, *, lr: float = 0.01, epochs: int = 1) -> float:
    """A function step taking ``lr``, called with an explicit value by :func:`hardcoded`."""
    _ran("fit", lr=lr, epochs=epochs)
    return lr * epochs


@zt.step
def keep_values(
    tiny: float = 0.5,
    one: int = 0,
    one_float: float = 0.0,
    nothing: Any = None,
    nested: Any = None,
    mapping: Any = None,
    flag: bool = False,
) -> None:
    """Take parameters of every shape, for exact round trips through a config."""
    _ran("keep_values", tiny=tiny, one=one)


@zt.step
def blend(base: float = 1.0, **weights: float) -> float:
    """A step with ``**weights``: a config records them under ``weights``."""
    _ran("blend", base=base, **weights)
    return base + sum(weights.values())


@zt.pipeline
def blended() -> float:
    """Calls :func:`blend` with extra keyword args."""
    return blend(base=0.5, momentum=0.25)


@zt.pipeline
def training(n: int = 4, lr: float = 0.01) -> float:
    """load_data -> trainer -> evaluate: the pipeline most tests run."""
    data = load_data(n)
    model = TrainerStep(lr=lr, batch_size=2, hidden_layers=[64, 32]).run(data)
    return evaluate(model)


@zt.pipeline
def hardcoded() -> float:
    """Steps called with values written in the code: a config must override them."""
    data = load_data(3)
    TrainerStep(lr=0.1).run(data)
    return fit(data, lr=0.1, epochs=2)


@zt.pipeline
def twice() -> list[float]:
    """The same step called twice in one run: keys ``fit`` and ``fit#2``."""
    data = load_data(2)
    return [fit(data, lr=0.1), fit(data, lr=0.2)]


@zt.pipeline
def inner(lr: float = 0.3) -> float:
    """A pipeline that :func:`outer` calls."""
    return fit(load_data(2), lr=lr)


@zt.pipeline
def outer() -> float:
    """Calls :func:`inner`: its steps belong to this run."""
    load_data(5)
    return inner(lr=0.4).output


@zt.pipeline
def failing() -> None:
    """Runs one step, then raises :class:`Boom`."""
    load_data(1)
    raise Boom("the pipeline broke on purpose")


@zt.pipeline
def values() -> None:
    """A step with values whose types a config must keep exactly."""
    keep_values(
        tiny=1e-07,
        one=1,
        one_float=1.0,
        nothing=None,
        nested=[1, [2.5, {"a": None}], "x"],
        mapping={"k": [True, "y"], "inner": {"z": 0}},
        flag=True,
    )


@zt.pipeline
def scaled(n: int = 2, factor: float = 1.0) -> float:
    """A pipeline arg (``factor``) that no step takes: only the pipeline uses it."""
    return sum(load_data(n)) * factor


@zt.pipeline
def waits_for_signal() -> None:
    """Runs one step, says so in ``$ZT_TEST_STARTED``, then waits to be terminated."""
    load_data(1)
    Path(os.environ[STARTED_ENV]).write_text("started", encoding="utf-8")
    for _ in range(1200):  # at most two minutes: the test sends SIGTERM long before
        time.sleep(0.1)


#: A trainer built at import time, outside any run, that :func:`prebuilt` runs.
PREBUILT = TrainerStep(lr=0.1)


@zt.pipeline
def prebuilt() -> dict[str, Any]:
    """Runs a class-step instance made before the run started."""
    return PREBUILT.run(load_data(2))


@zt.pipeline
def threaded() -> list[float]:
    """Calls steps from worker threads, as a pipeline parallelising its steps does.

    Two ``fit`` calls, and a trainer built and run on a worker thread.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        fitted = list(pool.map(lambda lr: fit([1.0], lr=lr), [0.1, 0.2]))
        pool.submit(lambda: TrainerStep(lr=0.3).run([1.0])).result()
    return fitted


@zt.pipeline
def waits_with_others(n: int, arrived: Any, release: Any) -> None:
    """Runs ``load_data(n)``, waits at the ``arrived`` barrier, then for ``release``.

    Two of these on two threads are two runs in progress at once.
    """
    load_data(n)
    arrived.wait(timeout=60)
    release.wait(timeout=60)


class Dataset:
    """Data a pipeline takes as an argument: not of a tracked type, so not in its config."""

    def __init__(self, xs: list[float]) -> None:
        self.xs = list(xs)


@zt.pipeline
def on_dataset(dataset: Dataset, lr: float = 0.1) -> float:
    """A pipeline with a required argument that its config cannot hold."""
    return fit(dataset.xs, lr=lr)


def not_a_step(lr: float = 0.1) -> float:
    """A plain function: a config naming it as a step must be refused."""
    _ran("not_a_step", lr=lr)
    return lr
