"""What is running right now: the step call (for metrics) and the pipeline run."""

from __future__ import annotations

import contextvars
import sys
import types
from collections.abc import Mapping
from typing import Any

from zentrack._values import TRACKED_TYPES_TEXT, is_tracked

#: Code objects of the functions whose local ``metrics`` collects a call's metrics.
TRACKING_CODES: set[types.CodeType] = set()


class RunState:
    """The pipeline run in progress: its id, config overrides and step keys."""

    def __init__(
        self,
        *,
        id: str,
        pipeline: str,
        source: str,
        overrides: dict[str, Mapping[str, Any]],
        alive_file: str,
    ) -> None:
        self.id = id
        self.pipeline = pipeline
        self.source = source
        self.overrides = overrides
        self.alive_file = alive_file
        self._counts: dict[str, int] = {}
        #: config key -> (step source, exact params text), in call order.
        self.entries: dict[str, tuple[str, str]] = {}

    def next_key(self, step: str) -> str:
        """The config key of a step's next call: ``trainer``, ``trainer#2``, ..."""
        count = self._counts.get(step, 0) + 1
        self._counts[step] = count
        return step if count == 1 else f"{step}#{count}"


#: The pipeline run that step calls belong to, if any.
current_run: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "zentrack_run", default=None
)


def log_metrics(**metrics: Any) -> None:
    """Attach metrics to the step call that is running.

    Stored with the call's record (MLMD custom properties
    ``zentrack.metric.<name>``); a later call with the same name overwrites.

    Raises:
        RuntimeError: outside a tracked step call.
        TypeError: a value that is not of a tracked type.
    """
    target = _running_call_metrics()
    if target is None:
        raise RuntimeError(
            "zentrack.log_metrics() was called outside a tracked step; call it from inside "
            "a function or class entry point decorated with @zentrack.step."
        )
    for name, value in metrics.items():
        if not is_tracked(value):
            raise TypeError(
                f"Metric {name!r} must be of a tracked type ({TRACKED_TYPES_TEXT}) "
                f"(got {value!r:.80} that is a {type(value).__qualname__}); convert it, "
                "e.g. with float(value)."
            )
    target.update(metrics)


def _running_call_metrics() -> dict[str, Any] | None:
    """Find the metrics dict of the innermost tracked call on this thread's stack.

    Walking frames costs a few microseconds here, in the rare metric call,
    instead of a context-variable set and reset on every tracked call.
    """
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code in TRACKING_CODES:
            metrics = frame.f_locals.get("metrics")
            return metrics if isinstance(metrics, dict) else None
        frame = frame.f_back  # type: ignore[assignment]
    return None
