"""Steps defined in an importable module, for tests that pickle or run them elsewhere.

Subprocesses and process-pool workers import this module by name
(``tests.steps_for_tests``), so everything here must stay module-level.
"""

from __future__ import annotations

from typing import Any

import zentrack as zt

#: How many times :func:`counted` has run in this process.
CALLS = {"counted": 0}


@zt.step
class TrainerStep:
    """The seed's trainer: every ``__init__`` keyword argument is a parameter."""

    def __init__(
        self,
        batch_size=1,
        dropout_chance=0.0,
        epochs=1,
        hidden_activation="relu",
        hidden_layers=None,
        last_activation="sigmoid",
        loss="mse",
        lr=0.01,
        metrics=None,
        output_units=1,
    ):
        self.batch_size = batch_size
        self.lr = lr

    def run(self, data):
        return len(data) * self.batch_size


@zt.step
def train(data: Any, *, lr: float = 0.01, epochs: int = 1) -> float:
    """Pretend to train on ``data``."""
    return lr * epochs


@zt.step
def keep(value: Any = None) -> None:
    """Take one parameter and do nothing: for round-trip tests."""


@zt.step
def counted(data: Any, *, lr: float = 0.01) -> int:
    """Count its runs, to show that fingerprinting never runs a step."""
    CALLS["counted"] += 1
    return CALLS["counted"]


@zt.step
def square(x: int) -> int:
    """Square ``x``; used from process-pool workers."""
    return x * x


@zt.step
def mixed(data: Any, *, config: Any = None, tags: Any = (), lr: float = 0.1) -> int:
    """Take an input and container parameters, for cross-process fingerprints."""
    return 0


@zt.step
def tick(i: int = 0) -> int:
    """A step cheap to fingerprint many times over, for fingerprint-prefix lookups."""
    return i


def shared_prefix_pair() -> tuple[int, int]:
    """Two args whose ``tick`` fingerprints share their first 8 hex characters.

    A birthday search over computed fingerprints (nothing runs): about 80,000
    tries, well under a second.
    """
    seen: dict[str, int] = {}
    for i in range(2_000_000):
        head = tick.fingerprint(i)[:8]
        if head in seen:
            return seen[head], i
        seen[head] = i
    raise AssertionError("no two fingerprints share 8 hex characters")
