"""Reading records back: lookups by fingerprint and typed parameter queries.

Every read first flushes what is waiting, so it sees every call that has
returned, in this process or in any other that wrote to the store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, overload

import attrs

from zentrack._record import tracker as _tracker
from zentrack._record.line import Record
from zentrack._runs.annotate import check_tags
from zentrack._runs.listing import read_runs, run_from_context
from zentrack._runs.lists import RecordList, RunList
from zentrack._runs.matching import (
    check_limit,
    matcher,
    parse_conditions,
    same_value,
    split_condition,
    value_matches,
)
from zentrack._runs.pipeline import Run
from zentrack._step.values import MISSING
from zentrack._store.candidates import Order
from zentrack._store.schema import RUN_CONTEXT
from zentrack._store.sqlite_select import Query

#: Re-exported: the viewer, explain and reruns import them from here.
__all__ = [
    "Comparison",
    "compare_runs",
    "find",
    "flush",
    "get_run",
    "lookup",
    "read_run",
    "read_runs",
    "run_from_context",
    "run_matcher",
    "runs",
    "same_value",
    "split_condition",
    "value_matches",
]
#: Fingerprints are sha256 hex digests; :func:`lookup` takes prefixes this long or longer.
FINGERPRINT_LENGTH: Final = 64
MIN_PREFIX: Final = 8
_HEX: Final = "0123456789abcdef"
log = logging.getLogger("zentrack")


def flush() -> int:
    """Write every buffered record to the store now; return how many were written."""
    return _tracker.active().flush()


def lookup(fingerprint: str) -> RecordList:
    """Return the records of every execution with ``fingerprint``, oldest first.

    ``fingerprint`` is the full 64 hex characters, or a prefix of at least
    :data:`MIN_PREFIX` of them (``find`` and ``show`` print 12) that only one
    stored fingerprint starts with; a prefix nothing starts with finds nothing.

    Raises:
        ValueError: ``fingerprint`` is not hex, or is shorter than a prefix may be.
        LookupError: several stored fingerprints start with the prefix.
    """
    if not isinstance(fingerprint, str):
        raise TypeError(f"lookup() takes a fingerprint string (got {fingerprint!r}).")
    text = fingerprint.strip().lower()
    if not MIN_PREFIX <= len(text) <= FINGERPRINT_LENGTH or text.strip(_HEX):
        raise ValueError(
            f"lookup() takes a fingerprint, {FINGERPRINT_LENGTH} hex characters, or a prefix "
            f"of at least {MIN_PREFIX} of them (got {fingerprint!r:.80}); copy it from "
            "`zentrack find` / `zentrack show` (12 characters) or their --json output (all 64)."
        )
    tracker = _tracker.active()
    tracker.flush_for_read()
    if len(text) < FINGERPRINT_LENGTH:
        return RecordList(_lookup_prefix(tracker.store, text))
    return RecordList(tracker.store.lookup(text))


def _lookup_prefix(store: Any, prefix: str) -> list[Record]:
    """The records of the one stored fingerprint starting with ``prefix``."""
    shown = 10
    candidates = store.fingerprints_with_prefix(prefix, limit=shown + 1)
    if not candidates:
        return []
    if len(candidates) == 1:
        return list(store.lookup(candidates[0]))
    listed = ", ".join(candidates[:shown]) + (", ..." if len(candidates) > shown else "")
    raise LookupError(
        f"Fingerprint prefix {prefix!r} is ambiguous: {listed} start with it; give more of it."
    )


def run_matcher(conditions: Mapping[str, Any]) -> Callable[[Run[Any]], bool]:
    """A test of runs against ``name[__op]=value`` conditions on their params and metrics.

    ``name`` is a key as :func:`compare_runs` spells it (``train.lr``,
    ``pipeline.lr``, ``evaluate.accuracy``) or a bare name (``lr``), which
    any param or metric of that name may satisfy.  A run matches when every
    condition holds.

    Raises:
        ValueError: an unknown operator.
    """
    tests = [(*split_condition(key), value) for key, value in conditions.items()]

    def columns(run: Run[Any]) -> list[tuple[str, Any]]:
        out = [(f"pipeline.{k}", v) for k, v in (*run.params.items(), *run.run_metrics.items())]
        for step_key, record in run.keyed_steps().items():
            out += [(f"{step_key}.{k}", v) for k, v in record.params.items()]
            out += [(f"{step_key}.{k}", v) for k, v in record.metrics.items()]
        return out

    def match(run: Run[Any]) -> bool:
        values = columns(run)
        return all(
            any(
                (key == name or ("." not in name and key.rpartition(".")[2] == name))
                and value_matches(op, expected, actual)
                for key, actual in values
            )
            for name, op, expected in tests
        )

    return match


def find(
    step: str | None = None,
    *,
    state: str | None = None,
    limit: int | None = None,
    order_by: str | None = None,
    **conditions: Any,
) -> RecordList:
    """Return the records whose parameters (or metrics) match, oldest first.

    Conditions are ``name=value`` (exact, type included: ``lr=1`` does not
    match ``lr=1.0``) or ``name__op=value`` with ``op`` one of ``ne``,
    ``lt``, ``le``, ``gt``, ``ge``, ``in``, ``contains``.  ``name`` is a
    parameter or a logged metric (``accuracy__gt=0.9``); a record with both
    a parameter and a metric of that name is judged on the parameter.  A
    parameter named like an argument below is queried as ``limit__eq=5``.
    The store selects the candidates (on SQLite from MLMD's indexes, on
    PostgreSQL and MySQL with MLMD's ``filter_query``), then every candidate
    is confirmed on its exact values.

    Args:
        step: only this step's records (default: every step).
        state: only records in this state (``"COMPLETE"``, ``"FAILED"``, ...).
        limit: at most this many records (the first ones in the order).
        order_by: ``"started"`` (default: oldest first), ``"-started"``
            (newest first), or a parameter or metric name, smallest first
            (``"-accuracy"``: largest first); records without a number for
            it come after, oldest first.
    """
    parsed = parse_conditions(conditions, "find")
    matchers = [matcher(c) for c in parsed]
    order = Order.parse(order_by)
    check_limit(limit, "find")

    def accept(record: Record) -> bool:
        if state is not None and record.state != state:
            return False
        return all(m(record.params, record.metrics) for m in matchers)

    tracker = _tracker.active()
    tracker.flush_for_read()
    return RecordList(tracker.store.select(Query(step, tuple(parsed), state, accept, order, limit)))


def runs(
    pipeline: str | None = None,
    *,
    state: str | None = None,
    tags: Mapping[str, str] | None = None,
    limit: int | None = None,
    order_by: str | None = None,
    **conditions: Any,
) -> RunList:
    """Return the recorded runs, newest first (a list that a notebook shows as a table).

    Conditions on the pipeline's own params and the run's metrics work as in
    :func:`find` (``lr__lt=0.1``, ``accuracy__gt=0.9``).  A run's steps are
    read from the store when first used.

    Args:
        pipeline: only this pipeline's runs.
        state: only runs in this state (``"COMPLETE"``, ``"FAILED"``, ...).
        tags: only runs that have every one of these tags with these values.
        limit: at most this many runs (the first ones in the order).
        order_by: ``"-started"`` (default: newest first), ``"started"``, or a
            param or run metric name (``"-accuracy"``: largest first).
    """
    wanted = check_tags(tags or {}, removable=False)
    parsed = parse_conditions(conditions, "runs")
    order = Order.parse(order_by, default="-started", caller="runs")
    check_limit(limit, "runs")
    tracker = _tracker.active()
    tracker.flush_for_read()
    return read_runs(
        tracker.store,
        pipeline,
        state=state,
        tags=wanted,
        conditions=parsed,
        order=order,
        limit=limit,
    )


def get_run(run_id: str) -> Run[Any]:
    """Return one run by id, or by a prefix of its id that no other run's id starts with.

    Raises:
        LookupError: no run has that id or prefix, or several runs' ids start
            with it (the message lists them).
    """
    tracker = _tracker.active()
    tracker.flush_for_read()
    return read_run(tracker.store, run_id)


def read_run(store: Any, run_id: str) -> Run[Any]:
    """:func:`get_run` without the flush first."""
    if not isinstance(run_id, str) or not run_id.strip():
        raise LookupError(
            f"A run id must be a non-empty string (got {run_id!r:.80}); `zentrack runs` "
            "lists the runs."
        )
    context = store.mlmd.get_context_by_type_and_name(RUN_CONTEXT, run_id)
    if context is not None:
        return run_from_context(store, context)
    matches = sorted(c.name for c in store.run_contexts() if c.name.startswith(run_id))
    if len(matches) == 1:
        found = store.mlmd.get_context_by_type_and_name(RUN_CONTEXT, matches[0])
        return run_from_context(store, found)
    if not matches:
        raise LookupError(f"No run {run_id!r} in the store; `zentrack runs` lists the runs.")
    shown = 10
    more = len(matches) - shown
    listed = ", ".join(matches[:shown]) + (f" and {more} more" if more > 0 else "")
    raise LookupError(
        f"Run id prefix {run_id!r} is ambiguous: {listed} start with it; give more of it."
    )


@attrs.frozen(repr=False)
class Comparison:
    """Parameters and metrics of several runs side by side.

    A param and a metric may share a name (a ``loss`` argument and a logged
    ``loss``): they stay apart, in :attr:`params` and :attr:`metrics`, and
    where they share one table (:meth:`to_text`, :meth:`to_pandas`) metric
    columns are labelled ``metric:step_key.metric``.

    Attributes:
        runs: the runs compared, newest first.
        params: ``"step_key.param"`` -> the value in each run (``MISSING`` if absent).
        metrics: ``"step_key.metric"`` -> the value in each run.
    """

    runs: list[Run[Any]]
    params: dict[str, list[Any]]
    metrics: dict[str, list[Any]]

    def differing(self) -> list[str]:
        """The parameter columns whose value is not the same in every run."""
        return [key for key, values in self.params.items() if not _all_same(values)]

    def __repr__(self) -> str:
        pipelines = sorted({r.pipeline for r in self.runs})
        of = f" of {pipelines[0]:.60}" if len(pipelines) == 1 else f" of {len(pipelines)} pipelines"
        count = len(self.runs)
        return (
            f"<Comparison of {count} run{'s' if count != 1 else ''}{of if pipelines else ''}; "
            f"params that differ: {_names(self.differing())}; "
            f"metrics: {_names(list(self.metrics))}>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython: the leaderboard (:meth:`to_text`), 20 runs at most."""
        from zentrack._report.text import comparison_text

        printer.text(comparison_text(self, limit=20))

    def _repr_html_(self) -> str:
        """Jupyter: one row per run, the params that differ and the metrics (best in bold)."""
        from zentrack._report.notebook import comparison_html

        return comparison_html(self)

    def to_text(
        self,
        *,
        only_differing: bool = False,
        precision: int = 4,
        sort: str | None = None,
        best: str | None = None,
        descending: bool | None = None,
        runs_as: Literal["auto", "rows", "columns"] = "auto",
    ) -> str:
        """A plain-text table that reads like a leaderboard.

        One row per run (state, start, duration, tags, the params that differ,
        then the metrics; the params every run shares on a line below),
        unless there are more such columns than runs: then one row per param
        and metric (those that differ marked ``*``, metrics labelled
        ``metric:``) and one column per run.

        Args:
            only_differing: leave out the params every run shares.
            precision: significant digits of numbers (exact values: use
                :attr:`params`/:attr:`metrics` or ``zentrack compare --json``).
            sort: order the runs by this param or metric (key like
                ``train.lr`` or, if unambiguous, name like ``lr``; also
                ``run``, ``state``, ``started``, ``duration``), ascending.
            best: rank the runs by this metric, best first: highest first
                unless its name says loss, error or time.
            descending: ``sort`` descending; with ``best``, whether higher is
                better (when the name misleads).
            runs_as: ``"rows"``, ``"columns"`` or ``"auto"`` (as above).

        Raises:
            ValueError: ``sort``/``best`` names no column (or several), or a bad option.
        """
        from zentrack._report.text import comparison_text

        return comparison_text(
            self,
            only_differing=only_differing,
            precision=precision,
            sort=sort,
            best=best,
            descending=descending,
            runs_as=runs_as,
        )

    @overload
    def to_html(
        self, path: None = None, *, title: str | None = None, color_by: str | None = None
    ) -> str: ...
    @overload
    def to_html(
        self,
        path: str | os.PathLike[str],
        *,
        title: str | None = None,
        color_by: str | None = None,
    ) -> Path: ...
    def to_html(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        title: str | None = None,
        color_by: str | None = None,
    ) -> str | Path:
        """The comparison as one self-contained HTML page: a sortable runs table,
        parallel coordinates of the params that vary and the metrics, and scatters.

        Nothing in the page is fetched from a network; it opens offline in any
        browser and works without anything optional installed.

        Args:
            path: write the page there (UTF-8) and return the path; without
                it, return the page as a string.
            title: the page's heading (default: "N runs of PIPELINE").
            color_by: the metric colouring the chart, as its key
                (``"evaluate.accuracy"``) or, if only one step logs it, its name.

        Raises:
            ValueError: ``color_by`` names no numeric metric of the comparison.
        """
        from zentrack._report.html import render_comparison_html, write_comparison_html

        if path is None:
            return render_comparison_html(self, title=title, color_by=color_by)
        return write_comparison_html(self, path, title=title, color_by=color_by)

    def to_pandas(self) -> Any:
        """The comparison as a DataFrame (needs the ``pandas`` extra)."""
        try:
            import pandas
        except ImportError:
            raise ImportError(
                "Comparison.to_pandas() needs pandas: pip install 'zentrack[pandas]'."
            ) from None
        columns = {**self.params, **{metric_label(k): v for k, v in self.metrics.items()}}
        return pandas.DataFrame(columns, index=[r.id for r in self.runs])


def metric_label(key: str) -> str:
    """How a metric column is labelled beside params: ``metric:trainer.loss``."""
    return f"metric:{key}"



def _names(keys: list[str], shown: int = 6) -> str:
    """``a, b, c and 4 more`` (``none`` for no keys): a list that stays one line."""
    if not keys:
        return "none"
    text = ", ".join(key if len(key) <= 40 else key[:39] + "\u2026" for key in keys[:shown])
    return text + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _all_same(values: list[Any]) -> bool:
    first = values[0]
    return all(same_value(first, v) if v is not MISSING else first is MISSING for v in values)


def compare_runs(
    pipeline: str | None = None,
    *,
    runs: Sequence[Run[Any] | str] | None = None,
    last: int | None = None,
) -> Comparison:
    """Put the step parameters and metrics of runs side by side.

    Args:
        pipeline: compare this pipeline's runs (default: every run).
        runs: compare these runs (or run ids) instead.
        last: only the newest ``last`` runs.
    """
    if runs is None:
        chosen = globals()["runs"](pipeline, limit=last)
    else:
        chosen = [get_run(r) if isinstance(r, str) else r for r in runs]
    if last is not None:
        chosen = chosen[:last]
    params: dict[str, list[Any]] = {}
    metrics: dict[str, list[Any]] = {}
    for index, run in enumerate(chosen):
        for key, value in run.params.items():
            params.setdefault(f"pipeline.{key}", [MISSING] * len(chosen))[index] = value
        for key, value in run.run_metrics.items():
            metrics.setdefault(f"pipeline.{key}", [MISSING] * len(chosen))[index] = value
        for step_key, record in run.keyed_steps().items():
            for key, value in record.params.items():
                params.setdefault(f"{step_key}.{key}", [MISSING] * len(chosen))[index] = value
            for key, value in record.metrics.items():
                metrics.setdefault(f"{step_key}.{key}", [MISSING] * len(chosen))[index] = value
    return Comparison(runs=list(chosen), params=dict(sorted(params.items())), metrics=metrics)
