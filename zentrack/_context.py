"""What is running right now: the step call (for metrics) and the pipeline run."""

from __future__ import annotations

import contextvars
import sys
import types
from typing import Any

from zentrack._values import TRACKED_TYPES_TEXT, is_tracked

#: Code objects of the functions whose local ``metrics`` collects a call's metrics.
TRACKING_CODES: set[types.CodeType] = set()
#: The id of the pipeline run that step calls belong to, if any.
current_run: contextvars.ContextVar[str | None] = contextvars.ContextVar(
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
