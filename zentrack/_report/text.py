"""Runs as plain text: the compare leaderboard, the runs list and one run, for terminals.

The leaderboard puts one run per row (its state, start, duration and tags,
the params that differ, then the metrics), best first when asked, so a sweep
of any size reads top-down; when there are more columns than runs it turns
the table around (one row per param or metric, one column per run), which is
what reads best for two or three runs of a big pipeline.  Numbers are
rounded for reading (:func:`~zentrack._report.table.format_number`);
``--json`` keeps the exact values.

Only public attributes are read (see the protocols), so any object with them
can be shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, Protocol

import attrs

from zentrack._report.table import (
    DIGITS,
    format_duration,
    format_started,
    format_value,
    group_same_params,
    higher_is_better,
    is_number,
    one_day,
    present,
    truncate,
    varies,
)
from zentrack._report.views import ComparisonView, RecordView, RunView

#: Characters a text cell shows before an ellipsis; a header, a tags cell.
CELL: Final = 24
HEADER: Final = 20
TAGS: Final = 30
#: Columns that are not params or metrics, accepted by ``sort``.
_RUN_KEYS: Final = ("run", "state", "started", "duration")

RunsAs = Literal["auto", "rows", "columns"]


@attrs.frozen
class Column:
    """One param (or group of same-valued params) or metric of a comparison."""

    keys: list[str]
    kind: str  # "param" or "metric"
    values: list[Any]
    varies: bool

    @property
    def key(self) -> str:
        return self.keys[0]

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]

    @property
    def quote(self) -> bool:
        """Values read as Python writes them where a column mixes types (``'1'`` and ``1``,
        ``1`` and ``1.0``), so that values that differ look different."""
        kinds = {type(v) for v in self.values if present(v)}
        return (str in kinds and len(kinds) > 1) or {int, float} <= kinds


def columns_of(comparison: ComparisonView, *, group: bool) -> list[Column]:
    """The comparison's params (grouped when ``group``: see ``group_same_params``), then metrics."""
    differing = set(comparison.differing())
    params = comparison.params
    groups = (
        group_same_params(params, differing) if group else [[key] for key in params]
    )
    out = [Column(keys, "param", params[keys[0]], keys[0] in differing) for keys in groups]
    out += [Column([k], "metric", v, varies(v)) for k, v in comparison.metrics.items()]
    return out


def labels(columns: Sequence[Column]) -> dict[str, str]:
    """Short headers: a column's name, or ``step.name`` where two of one kind share the name."""
    seen: dict[tuple[str, str], int] = {}
    for c in columns:
        seen[(c.kind, c.name)] = seen.get((c.kind, c.name), 0) + 1
    return {c.key: c.name if seen[(c.kind, c.name)] == 1 else c.key for c in columns}


def find_column(columns: Sequence[Column], name: str, *, option: str, metrics: bool) -> Column:
    """The column a user named by key (``train.lr``) or, when unambiguous, by name (``lr``).

    Raises:
        ValueError: nothing or several columns answer to ``name``; the message lists the keys.
    """
    pool = [c for c in columns if c.kind == "metric" or not metrics]
    exact = [c for c in pool if name in c.keys]
    matches = exact or [c for c in pool if c.name == name]
    if len(matches) == 1:
        return matches[0]
    keys = ", ".join(repr(k) for c in pool for k in c.keys)
    kind = "metric" if metrics else "param or metric"
    if matches:
        problem = "is logged by several steps" if metrics else "names several columns"
    else:
        problem = f"is not a {kind} of these runs"
    extra = "" if metrics else f", or one of {', '.join(map(repr, _RUN_KEYS))}"
    raise ValueError(
        f"{option} {name!r} {problem}; use one of the keys ({keys or 'none'}{extra})."
    )


def _sort_key(value: Any) -> tuple[int, float, str]:
    """(group, number, text): numbers (0) by value, text (2), then NaN (1), then missing (4)."""
    if not present(value):
        return (4, 0.0, "")
    if is_number(value) or type(value) is bool:
        number = float(value)
        return (1, 0.0, "") if math.isnan(number) else (0, number, "")
    return (2, 0.0, value if type(value) is str else repr(value))


def order_runs(
    comparison: ComparisonView,
    columns: Sequence[Column],
    *,
    sort: str | None,
    best: str | None,
    descending: bool | None,
) -> tuple[list[int], Column | None]:
    """The runs' order for display, and the metric ranked by ``best`` (if any).

    ``sort`` orders by any column, ascending unless ``descending``; ``best``
    orders by a metric, best first: higher first unless its name says loss,
    error or time (``descending`` says which way when the name misleads).
    Missing values and NaN go last either way; ties keep the comparison's
    order (newest first).
    """
    count = len(comparison.runs)
    order = list(range(count))
    if best is not None and sort is not None:
        raise ValueError("Give --sort or --best, not both (--best ranks by a metric, best first).")
    if best is None and sort is None:
        return order, None
    runs = comparison.runs
    values: list[Any]
    ranked = None
    if best is not None:
        ranked = find_column(columns, best, option="--best", metrics=True)
        values = ranked.values
        down = higher_is_better(ranked.key) if descending is None else descending
    elif sort in _RUN_KEYS:
        by_run: dict[str, Callable[[RunView], Any]] = {
            "run": lambda r: r.id,
            "state": lambda r: r.state,
            "started": lambda r: r.started,
            "duration": lambda r: (r.ended - r.started) if r.ended else _ABSENT,
        }
        values = [by_run[str(sort)](r) for r in runs]
        down = bool(descending)
    else:
        values = find_column(columns, str(sort), option="--sort", metrics=False).values
        down = bool(descending)
    keys = [_sort_key(v) for v in values]
    groups: dict[int, list[int]] = {0: [], 1: [], 2: [], 4: []}
    for i in order:
        groups[keys[i][0]].append(i)
    groups[0].sort(key=lambda i: keys[i][1], reverse=down)  # stable: ties stay in order
    groups[2].sort(key=lambda i: keys[i][2], reverse=down)
    return [i for group in (0, 2, 1, 4) for i in groups[group]], ranked


#: Where a run has no value to sort by (a run still going has no duration).
_ABSENT: Final = object()


def comparison_text(
    comparison: ComparisonView,
    *,
    only_differing: bool = False,
    precision: int = DIGITS,
    sort: str | None = None,
    best: str | None = None,
    descending: bool | None = None,
    runs_as: RunsAs = "auto",
    limit: int | None = None,
) -> str:
    """The comparison as a text table (see the module docstring for the layout).

    ``limit`` caps the runs shown (the first in display order), saying how
    many were left out: a repr that fits a screen.
    """
    if type(precision) is not int or not 1 <= precision <= 17:
        raise ValueError(f"precision must be an int from 1 to 17 (got {precision!r}).")
    if runs_as not in ("auto", "rows", "columns"):
        raise ValueError(f"runs_as must be 'auto', 'rows' or 'columns' (got {runs_as!r}).")
    if not comparison.runs:
        return "no runs"
    grouped = columns_of(comparison, group=True)
    shown = [c for c in grouped if c.kind == "metric" or c.varies]
    order, ranked = order_runs(comparison, grouped, sort=sort, best=best, descending=descending)
    if runs_as == "auto":
        runs_as = "rows" if len(comparison.runs) >= len(shown) else "columns"
    left = len(order) - limit if limit is not None and len(order) > limit else 0
    order = order[: len(order) - left]
    if runs_as == "rows":
        text = _rows(comparison, grouped, order, ranked, precision, only_differing)
    else:
        columns = columns_of(comparison, group=False)
        text = _columns(comparison, columns, order, precision, only_differing)
    return text + (f"\n... and {left:,} more run{'s' if left != 1 else ''}" if left else "")


def _cell(value: Any, column: Column, precision: int) -> str:
    if not present(value):
        return "-"
    return truncate(format_value(value, precision, quote=column.quote), CELL)


def _tags_text(tags: dict[str, str], limit: int = TAGS) -> str:
    return truncate(" ".join(f"{k}={v}" for k, v in tags.items()), limit)


def _rows(
    comparison: ComparisonView,
    columns: list[Column],
    order: list[int],
    ranked: Column | None,
    precision: int,
    only_differing: bool,
) -> str:
    runs = comparison.runs
    names = labels(columns)
    params = [c for c in columns if c.kind == "param" and c.varies]
    metrics = [c for c in columns if c.kind == "metric"]
    with_date = not one_day(r.started for r in runs)
    # tags every run has go below the table with the params every run has
    shared = dict.fromkeys(runs[0].tags.items() if runs else ())
    for run in runs[1:]:
        shared = {item: None for item in shared if item in run.tags.items()}
    own = [{k: v for k, v in r.tags.items() if (k, v) not in shared} for r in runs]
    tagged = any(own)
    header = ["run", "state", "started", "took"] + (["tags"] if tagged else [])
    right = [False, False, False, True] + ([False] if tagged else [])
    if ranked is not None:
        header, right = ["#", *header], [True, *right]
    header += [truncate(names[c.key], HEADER) for c in params]
    right += [_numeric(c) for c in params]
    split = len(header)
    header += [truncate(names[c.key], HEADER) for c in metrics]
    right += [_numeric(c) for c in metrics]
    table = [header]
    rank = 0
    for i in order:
        run = runs[i]
        row = [
            run.id,
            run.state,
            format_started(run.started, with_date=with_date),
            format_duration(run.ended - run.started) if run.ended and run.started else "",
        ] + ([_tags_text(own[i])] if tagged else [])
        if ranked is not None:
            good = present(ranked.values[i]) and not _nan(ranked.values[i])
            rank += good
            row = [str(rank) if good else "", *row]
        row += [_cell(c.values[i], c, precision) for c in params]
        row += [_cell(c.values[i], c, precision) for c in metrics]
        table.append(row)
    lines = _lay_out(table, right, split if metrics and params else None)
    same = [c for c in columns if c.kind == "param" and not c.varies]
    if (same or shared) and not only_differing:
        lines.append(_same_line(same, dict(shared.keys()), len(runs), precision))
    return "\n".join(lines)


def _nan(value: Any) -> bool:
    return type(value) is float and math.isnan(value)


def _numeric(column: Column) -> bool:
    given = [v for v in column.values if present(v)]
    return bool(given) and all(is_number(v) for v in given)


def _same_line(
    same: list[Column], tags: dict[str, str], count: int, precision: int, limit: int = 300
) -> str:
    parts = [f"tag {k}={v}" for k, v in tags.items()]
    for c in same:
        value = next((v for v in c.values if present(v)), None)
        text = _cell(value, c, precision) if value is not None else "-"
        parts.append(f"{c.key}={text}")
    every = "both runs" if count == 2 else f"all {count} runs" if count > 1 else "the run"
    return truncate(f"same in {every}: " + ", ".join(parts), limit)


def _lay_out(table: list[list[str]], right: list[bool], split: int | None) -> list[str]:
    """Pad the cells into columns (numbers right-aligned); ``|`` before column ``split``."""
    widths = [max(len(row[k]) for row in table) for k in range(len(table[0]))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(w) if align else cell.ljust(w)
            for cell, w, align in zip(row, widths, right, strict=True)
        ]
        if split is not None:
            cells.insert(split, "|")
        lines.append("  ".join(cells).rstrip())
    return lines


def _columns(
    comparison: ComparisonView,
    columns: list[Column],
    order: list[int],
    precision: int,
    only_differing: bool,
) -> str:
    """One row per param and metric (differing ones marked ``*``), one column per run."""
    runs = [comparison.runs[i] for i in order]
    rows = [["", *[r.id for r in runs]], ["  state", *[r.state for r in runs]]]
    took = [format_duration(r.ended - r.started) if r.ended and r.started else "" for r in runs]
    if any(took):
        rows.append(["  took", *took])
    if any(r.tags for r in runs):
        rows.append(["  tags", *[_tags_text(r.tags) or "-" for r in runs]])
    for c in columns:
        if c.kind == "param" and only_differing and not c.varies:
            continue
        label = ("* " if c.varies else "  ") + (f"metric:{c.key}" if c.kind == "metric" else c.key)
        rows.append([label, *[_cell(c.values[i], c, precision) for i in order]])
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# -- runs ---------------------------------------------------------------------------------


class _Step(Protocol):
    @property
    def metrics(self) -> dict[str, Any]: ...


class _FullRun(RunView, Protocol):
    @property
    def pipeline(self) -> str: ...
    @property
    def notes(self) -> str | None: ...
    @property
    def run_metrics(self) -> dict[str, Any]: ...
    @property
    def steps(self) -> Sequence[_Step]: ...


def key_metrics(run: _FullRun, limit: int = 3) -> list[tuple[str, Any]]:
    """The metrics a list of runs shows: the run's own first, then the last steps' ones.

    The last step to log a metric is most often the evaluation; a name seen
    once is not repeated.
    """
    out: dict[str, Any] = dict(run.run_metrics)
    for step in reversed(run.steps):
        for name, value in step.metrics.items():
            out.setdefault(name, value)
    return list(out.items())[:limit]


def _metrics_text(items: list[tuple[str, Any]], precision: int) -> str:
    return "  ".join(
        f"{truncate(name, HEADER)}={truncate(format_value(v, precision), CELL)}"
        for name, v in items
    )


def runs_text(
    runs: Sequence[_FullRun],
    *,
    precision: int = DIGITS,
    metrics: int = 3,
    steps: Callable[[_FullRun], int] | None = None,
) -> str:
    """The runs list: id, pipeline, state, start, duration, step count, key metrics, tags, note.

    ``steps`` counts a run's steps (default ``len(run.steps)``).
    """
    if not runs:
        return "no runs"
    with_date = not one_day(r.started for r in runs)
    count = steps or (lambda run: len(run.steps))
    table = [["run", "pipeline", "state", "started", "took", "steps", "metrics", "tags / note"]]
    for run in runs:
        took = run.ended - run.started if run.ended and run.started else None
        note = run.notes.splitlines()[0] if run.notes else ""
        extra = _tags_text(run.tags) + (f'  "{truncate(note, TAGS)}"' if note else "")
        table.append(
            [
                run.id,
                truncate(run.pipeline, HEADER),
                run.state,
                format_started(run.started, with_date=with_date),
                format_duration(took) if took is not None else "",
                str(count(run)),
                _metrics_text(key_metrics(run, metrics), precision),
                extra.strip(),
            ]
        )
    right = [False, False, False, False, True, True, False, False]
    return "\n".join(_lay_out(table, right, None))


def _pairs(values: dict[str, Any], precision: int, limit: int) -> str:
    text = ", ".join(f"{k}={format_value(v, precision)}" for k, v in values.items())
    return truncate(text, limit)


def records_text(records: Sequence[RecordView], *, precision: int = DIGITS) -> str:
    """Step records, one per line: execution, step, state, fingerprint, duration, params, metrics.

    A CACHED call says which execution's output it reused.
    """
    if not records:
        return "no records"
    table = [["exec", "step", "state", "fingerprint", "took", "params", "metrics"]]
    for r in records:
        state = r.state
        if r.cached_execution_id is not None:
            state += f" (of {r.cached_execution_id})"
        table.append(
            [
                "" if r.execution_id is None else str(r.execution_id),
                truncate(r.key or r.step, HEADER),
                state,
                r.fingerprint[:12],
                format_duration(r.ended - r.started) if r.ended and r.started else "",
                _pairs(r.params, precision, 60),
                _pairs(r.metrics, precision, 60),
            ]
        )
    return "\n".join(_lay_out(table, [True, False, False, False, True, False, False], None))


class _ShownRun(_FullRun, Protocol):
    @property
    def source(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def config_path(self) -> Any: ...
    @property
    def steps(self) -> Sequence[RecordView]: ...


def run_text(run: _ShownRun, *, precision: int = DIGITS, steps: bool = True) -> str:
    """One run: id, pipeline, state, times, params, metrics, tags, note, config, then its steps."""
    took = run.ended - run.started if run.ended and run.started else None
    lines = [
        ("run", run.id),
        ("pipeline", run.pipeline + (f" ({run.source})" if run.source else "")),
        ("state", run.state + (f": {run.error}" if run.error else "")),
        (
            "started",
            format_started(run.started) + (f"  (took {format_duration(took)})" if took else ""),
        ),
        ("params", _pairs(run.params, precision, 400) or "-"),
    ]
    if run.run_metrics:
        lines.append(("metrics", _pairs(run.run_metrics, precision, 400)))
    if run.tags:
        lines.append(("tags", " ".join(f"{k}={v}" for k, v in run.tags.items())))
    if run.notes:
        lines.append(("note", run.notes.replace("\n", "\n" + " " * 10)))
    lines.append(("config", str(run.config_path) if run.config_path else "-"))
    text = "\n".join(f"{label:<9} {value}" for label, value in lines)
    if steps:
        records = run.steps
        text += f"\nsteps ({len(records)}):\n" + "\n".join(
            "  " + line for line in records_text(records, precision=precision).splitlines()
        )
    return text
