"""What is running right now: the step call (for metrics) and the pipeline run.

The run a step call belongs to is the context variable :data:`current_run`,
set by the pipeline for the thread (or task) that runs it.  Threads do not
inherit context variables (a ``ThreadPoolExecutor`` worker starts with an
empty context), so a step called on a thread that has no run in its context
joins :data:`lone_run`: the one pipeline run in progress in the process, if
there is exactly one.  While several runs are in progress at once (pipelines
running on several threads), such a call cannot tell which run it is part
of, and it belongs to no run.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import sys
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

from zentrack._runs.annotate import annotate, check_metrics
from zentrack._step.values import canonical_json

#: Code objects of the functions whose local ``metrics`` collects a call's metrics.
TRACKING_CODES: set[types.CodeType] = set()


def _same(a: Any, b: Any) -> bool:
    try:
        return canonical_json(a) == canonical_json(b)
    except (TypeError, ValueError):
        return False


class ConfigArgs(dict[str, Any]):
    """A config's args for one step call, and how they meet edited pipeline args.

    When a config's pipeline args were edited, a step arg they feed must get
    the new value, although the config still lists the old one under the
    step.  What fed what is seen in the run itself: an arg whose value in
    the code (computed from the pipeline's args) differs from what the run
    that wrote the config passed was changed by a pipeline edit.  Then:
    the step arg left as recorded takes the code's new value; a step arg
    edited too must agree with it, or ``conflict`` names both lines.

    Args:
        values: the step's args as the config has them.
        recorded: what the run that wrote the config passed to this call
            (None: unknown, so the config's args simply apply).
        conflict: builds the error for ``(arg, config value, code value)``;
            None when no pipeline arg was edited.
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        *,
        recorded: Mapping[str, Any] | None = None,
        conflict: Callable[[str, Any, Any], Exception] | None = None,
    ) -> None:
        super().__init__(values)
        self.recorded = recorded
        self.conflict = conflict

    def choose(self, name: str, code_value: Any) -> Any:
        """The value the step gets for ``name``, given what the pipeline's code passes."""
        value = self[name]
        if self.conflict is None or self.recorded is None or name not in self.recorded:
            return value
        was = self.recorded[name]
        if _same(code_value, was) or _same(value, code_value):
            return value  # no edited pipeline arg reaches it, or both edits agree
        if _same(value, was):
            return code_value  # left as recorded: the edited pipeline arg feeds it
        raise self.conflict(name, value, code_value)


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
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.id = id
        self.pipeline = pipeline
        self.source = source
        self.overrides = overrides
        self.alive_file = alive_file
        self._counts: dict[str, itertools.count[int]] = {}
        #: config key -> (step source, exact params text), in call order.
        self.entries: dict[str, tuple[str, str]] = {}
        #: The tags given to ``@pipeline`` and the metrics logged outside any step.
        self.tags = dict(tags or {})
        self.metrics: dict[str, Any] = {}
        self._metrics_lock = threading.Lock()

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Record run-level metrics: journaled at once, kept for the returned run."""
        with self._metrics_lock:
            self.metrics.update(metrics)
        annotate(self.id, metrics=metrics)

    def next_key(self, step: str) -> str:
        """The config key of a step's next call: ``trainer``, ``trainer#2``, ...

        Safe to call from several threads at once without a lock: the GIL makes
        ``dict.setdefault`` and ``next`` on a counter atomic.  Calls made
        concurrently get distinct keys in the order they reach this point.
        """
        count = next(self._counts.setdefault(step, itertools.count(1)))
        return step if count == 1 else f"{step}#{count}"


#: The pipeline run that step calls belong to, if any.
current_run: contextvars.ContextVar[RunState | None] = contextvars.ContextVar(
    "zentrack_run", default=None
)

#: The only pipeline run in progress in this process, or None when there are
#: none or several: what a step called on a thread without a run joins.
#: Read without a lock on the hot path (one attribute read); written under
#: :data:`_runs_lock` by :func:`run_started` and :func:`run_ended`.
lone_run: RunState | None = None
_active_runs: list[RunState] = []
_runs_lock = threading.Lock()


def run_started(state: RunState) -> None:
    """Count ``state`` among the runs in progress in this process."""
    global lone_run
    with _runs_lock:
        _active_runs.append(state)
        lone_run = _active_runs[0] if len(_active_runs) == 1 else None


def run_ended(state: RunState) -> None:
    """Forget a run that has ended (a no-op for one never started)."""
    global lone_run
    with _runs_lock:
        if state in _active_runs:
            _active_runs.remove(state)
        lone_run = _active_runs[0] if len(_active_runs) == 1 else None


def _new_lock_after_fork() -> None:
    """A forked child gets a fresh lock: another thread may have held it at the fork."""
    global _runs_lock
    _runs_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def log_metrics(**metrics: Any) -> None:
    """Attach metrics to the step call that is running, or else to the pipeline run.

    Inside a step call they are stored with the call's record (MLMD custom
    properties ``zentrack.metric.<name>`` of its Execution).  In a pipeline's
    body outside any step they are the run's own metrics (the same
    properties on the run's Context; ``run.run_metrics``, compared as
    ``pipeline.<name>``), journaled at once.  A later value of a name
    overwrites the earlier one.

    Raises:
        RuntimeError: outside a tracked step call and outside a pipeline run.
        TypeError: a value that is not of a tracked type.
    """
    checked = check_metrics(metrics)  # NumPy scalars become the Python number
    target = _running_call_metrics()
    if target is not None:
        target.update(checked)
        return
    run = current_run.get() or lone_run
    if run is None:
        raise RuntimeError(
            "zentrack.log_metrics() was called outside a tracked step and outside a pipeline "
            "run; call it inside a function decorated with @zentrack.step (the call's "
            "metrics) or @zentrack.pipeline (the run's metrics)."
        )
    if checked:
        run.log_metrics(checked)


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
