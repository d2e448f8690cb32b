"""Checked by ``mypy --strict`` in CI, never run: the types users see.

Each ``type: ignore[...]`` asserts that mypy reports that error there
(``warn_unused_ignores`` is on under ``--strict``).
"""

from pathlib import Path
from typing import Any, assert_type

import zentrack as zt


@zt.step
def train(data: list[float], *, lr: float = 0.01, epochs: int = 1) -> float:
    return sum(data) * lr * epochs


@zt.step(name="scorer", version="2", cache=False)
def score(model: float, threshold: float = 0.5) -> bool:
    return model > threshold


@zt.step(name="trainer")
class TrainerStep:
    def __init__(self, batch_size: int = 1, lr: float = 0.01) -> None:
        self.lr = lr

    def run(self, data: list[float]) -> float:
        return sum(data) * self.lr


assert_type(train([1.0, 2.0], lr=0.1), float)
assert_type(train.fingerprint([1.0], lr=0.1), str)
assert_type(score(0.7), bool)
assert_type(score.fingerprint(0.7, threshold=0.1), str)
assert_type(TrainerStep(lr=0.1).run([1.0]), float)
assert_type(zt.fingerprint(train, [1.0], lr=0.2), str)
records: list[zt.Record] = zt.lookup("0" * 64)  # a list subclass that shows as a table
found: list[zt.Record] = zt.find("train", lr__lt=0.1)
runs: list[zt.Run[Any]] = zt.runs(tags={"team": "vision"})
assert_type(zt.find("train")[0], zt.Record)
assert_type(zt.runs()[0], zt.Run[Any])
assert_type(zt.runs()[0].tags, dict[str, str])
zt.runs()[0].tag(data="v2", old=None)
zt.runs()[0].note("text")
zt.runs()[0].tag(seed=3)  # type: ignore[arg-type]
assert_type(zt.compare_runs().to_html(), str)
assert_type(zt.compare_runs().to_html("report.html", color_by="accuracy"), Path)

train("not a list")  # type: ignore[arg-type]
train([1.0], learning_rate=0.1)  # type: ignore[call-arg]
score.fingerprint("x")  # type: ignore[arg-type]


class Model:
    @zt.step
    def fit(self, data: list[float], lr: float = 0.1) -> float:
        return sum(data) * lr


model = Model()
assert_type(model.fit([1.0]), float)
assert_type(model.fit([1.0], lr=0.2), float)
assert_type(Model.fit(model, [1.0]), float)
assert_type(Model.fit.fingerprint(model, [1.0]), str)
assert_type(zt.fingerprint(model.fit, [1.0]), str)
model.fit("x")  # type: ignore[arg-type]
model.fit([1.0], learning_rate=0.1)  # type: ignore[call-arg]


@zt.pipeline
def training(lr: float = 0.01) -> float:
    return train([1.0], lr=lr)


@zt.pipeline(name="named")
def named(n: int = 1) -> list[int]:
    return [n]


assert_type(training(lr=0.1), zt.Run[float])
assert_type(training().output, float | None)
assert_type(named(2), zt.Run[list[int]])
training(lr="x")  # type: ignore[arg-type]

config = zt.load_config("c.yaml")
assert_type(config.run(), zt.Run[Any])
assert_type(config.plan().misses, list[str])
