"""zentrack: track the parameters of every ML step in ML Metadata, with ``@step``.

The public API is what ``__all__`` lists; everything else lives in private
modules and may change without notice.  Names are imported on first use
(PEP 562), so ``import zentrack`` costs almost nothing; MLMD itself is only
imported when records are first written or read.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zentrack import exceptions
    from zentrack._cache.materializers import register_materializer
    from zentrack._cache.outputs import no_cache
    from zentrack._config.model import Config, diff_configs, load_config
    from zentrack._config.validate import parse_value as parse_config_value
    from zentrack._record.line import Record
    from zentrack._record.tracker import Tracker, init
    from zentrack._runs.context import log_metrics
    from zentrack._runs.explain import Explanation, explain
    from zentrack._runs.pipeline import Run, pipeline
    from zentrack._runs.query import Comparison, compare_runs, find, flush, get_run, lookup, runs
    from zentrack._step.decorator import Step, step
    from zentrack._step.decorator import fingerprint_call as fingerprint

__all__ = [
    "Comparison",
    "Config",
    "Explanation",
    "Record",
    "Run",
    "Step",
    "Tracker",
    "compare_runs",
    "diff_configs",
    "exceptions",
    "explain",
    "find",
    "fingerprint",
    "flush",
    "get_run",
    "init",
    "load_config",
    "log_metrics",
    "lookup",
    "no_cache",
    "parse_config_value",
    "pipeline",
    "register_materializer",
    "runs",
    "step",
]

#: public name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "Comparison": ("zentrack._runs.query", "Comparison"),
    "Config": ("zentrack._config.model", "Config"),
    "diff_configs": ("zentrack._config.model", "diff_configs"),
    "load_config": ("zentrack._config.model", "load_config"),
    "parse_config_value": ("zentrack._config.validate", "parse_value"),
    "Explanation": ("zentrack._runs.explain", "Explanation"),
    "Record": ("zentrack._record.line", "Record"),
    "Run": ("zentrack._runs.pipeline", "Run"),
    "Step": ("zentrack._step.decorator", "Step"),
    "Tracker": ("zentrack._record.tracker", "Tracker"),
    "compare_runs": ("zentrack._runs.query", "compare_runs"),
    "exceptions": ("zentrack.exceptions", ""),
    "explain": ("zentrack._runs.explain", "explain"),
    "find": ("zentrack._runs.query", "find"),
    "fingerprint": ("zentrack._step.decorator", "fingerprint_call"),
    "flush": ("zentrack._runs.query", "flush"),
    "get_run": ("zentrack._runs.query", "get_run"),
    "init": ("zentrack._record.tracker", "init"),
    "log_metrics": ("zentrack._runs.context", "log_metrics"),
    "lookup": ("zentrack._runs.query", "lookup"),
    "no_cache": ("zentrack._cache.outputs", "no_cache"),
    "pipeline": ("zentrack._runs.pipeline", "pipeline"),
    "register_materializer": ("zentrack._cache.materializers", "register_materializer"),
    "runs": ("zentrack._runs.query", "runs"),
    "step": ("zentrack._step.decorator", "step"),
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("zentrack")
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'zentrack' has no attribute {name!r}")
    module = importlib.import_module(target[0])
    value = getattr(module, target[1]) if target[1] else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
