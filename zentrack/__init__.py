"""zentrack: track the parameters of every ML step in ML Metadata, with ``@step``.

The public API is what ``__all__`` lists; everything else lives in private
modules and may change without notice.
"""

from __future__ import annotations

from typing import Any

from zentrack import exceptions
from zentrack._cache import no_cache
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
    "Explanation",
    "Record",
    "Run",
    "Step",
    "Tracker",
    "compare_runs",
    "exceptions",
    "explain",
    "find",
    "fingerprint",
    "flush",
    "get_run",
    "init",
    "log_metrics",
    "lookup",
    "no_cache",
    "pipeline",
    "register_materializer",
    "runs",
    "step",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("zentrack")
    raise AttributeError(f"module 'zentrack' has no attribute {name!r}")
