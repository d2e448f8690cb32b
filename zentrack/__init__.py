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
    from zentrack._cache import no_cache
    from zentrack._config import Config, diff_configs, load_config
    from zentrack._config import parse_value as parse_config_value
    from zentrack._context import log_metrics
    from zentrack._explain import Explanation, explain
    from zentrack._materialize import register_materializer
    from zentrack._pipeline import Run, pipeline
    from zentrack._query import Comparison, compare_runs, find, flush, get_run, lookup, runs
    from zentrack._records import Record
    from zentrack._step import Step, step
    from zentrack._step import fingerprint_call as fingerprint
    from zentrack._tracker import Tracker, init

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
    "Comparison": ("zentrack._query", "Comparison"),
    "Config": ("zentrack._config", "Config"),
    "diff_configs": ("zentrack._config", "diff_configs"),
    "load_config": ("zentrack._config", "load_config"),
    "parse_config_value": ("zentrack._config", "parse_value"),
    "Explanation": ("zentrack._explain", "Explanation"),
    "Record": ("zentrack._records", "Record"),
    "Run": ("zentrack._pipeline", "Run"),
    "Step": ("zentrack._step", "Step"),
    "Tracker": ("zentrack._tracker", "Tracker"),
    "compare_runs": ("zentrack._query", "compare_runs"),
    "exceptions": ("zentrack.exceptions", ""),
    "explain": ("zentrack._explain", "explain"),
    "find": ("zentrack._query", "find"),
    "fingerprint": ("zentrack._step", "fingerprint_call"),
    "flush": ("zentrack._query", "flush"),
    "get_run": ("zentrack._query", "get_run"),
    "init": ("zentrack._tracker", "init"),
    "log_metrics": ("zentrack._context", "log_metrics"),
    "lookup": ("zentrack._query", "lookup"),
    "no_cache": ("zentrack._cache", "no_cache"),
    "pipeline": ("zentrack._pipeline", "pipeline"),
    "register_materializer": ("zentrack._materialize", "register_materializer"),
    "runs": ("zentrack._query", "runs"),
    "step": ("zentrack._step", "step"),
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
