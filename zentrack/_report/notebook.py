"""Notebook display: small HTML tables for ``_repr_html_`` of runs, records and comparisons.

A notebook cell shows what it returns, so ``zt.runs()``, ``zt.find(...)``,
a run, a record and a comparison each render as a compact table: at most
:data:`ROWS` rows, numbers to four significant digits, long text cut (all
of it in the cell's tooltip).  It is a glance, not the report: a comparison
points to ``to_html()`` for the charts.

Every piece of text goes through :func:`h` (HTML-escaped, quotes included),
so a value holding markup shows as text.  No script, no style sheet: the
notebook's own table style applies.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any, Final, Protocol

from zentrack._report.table import (
    DIGITS,
    format_duration,
    format_started,
    format_value,
    higher_is_better,
    is_number,
    one_day,
    present,
    truncate,
)
from zentrack._report.text import columns_of, key_metrics, labels
from zentrack._report.views import ComparisonView, RecordView, RunView

#: Rows a table shows before "and N more".
ROWS: Final = 50
#: Characters a cell shows (the tooltip holds all, up to TITLE).
CELL: Final = 40
TITLE: Final = 2_000
_RIGHT: Final = ' style="text-align:right"'


class _Run(RunView, Protocol):
    @property
    def run_metrics(self) -> dict[str, Any]: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def steps(self) -> Sequence[RecordView]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def config_path(self) -> Any: ...


def h(text: object) -> str:
    """``text`` as HTML text: ``<``, ``>``, ``&`` and both quotes escaped."""
    return html.escape(str(text), quote=True)


def cell(text: str, *, right: bool = False, bold: bool = False, limit: int = CELL) -> str:
    """One ``<td>``: the text cut to ``limit`` characters, all of it in the tooltip if cut."""
    shown = h(truncate(text, limit))
    title = f' title="{h(truncate(text, TITLE))}"' if len(text) > limit else ""
    return f"<td{_RIGHT if right else ''}{title}>{'<b>' + shown + '</b>' if bold else shown}</td>"


def table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] = (),
    caption: str = "",
    total: int | None = None,
) -> str:
    """A ``<table>`` of pre-rendered ``<td>`` rows; "N more" when ``total`` exceeds the rows.

    ``caption`` is HTML (callers escape what they put in it).
    """
    head = ""
    if header is not None:
        aligned = list(right) + [False] * (len(header) - len(right))
        names = zip(header, aligned, strict=True)
        head = "<thead><tr>" + "".join(
            f"<th{_RIGHT if r else ''}>{h(name)}</th>" for name, r in names
        ) + "</tr></thead>"
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    more = (total or 0) - len(rows)
    width = len(header) if header is not None else 2
    foot = (
        f'<tfoot><tr><td colspan="{width}">&hellip; and {more:,} more</td></tr></tfoot>'
        if more > 0
        else ""
    )
    top = f'<caption style="text-align:left">{caption}</caption>' if caption else ""
    return f"<table>{top}{head}<tbody>{body}</tbody>{foot}</table>"


def pairs(values: dict[str, Any], digits: int = DIGITS) -> str:
    """``lr=0.01, depth=4``: a dict as one line, numbers rounded."""
    return ", ".join(f"{k}={format_value(v, digits)}" for k, v in values.items())


def _took(started: float, ended: float | None) -> str:
    return format_duration(ended - started) if ended and started else ""


def _tags(run: _Run) -> str:
    text = " ".join(f"{k}={v}" for k, v in run.tags.items())
    if run.notes:
        text += (" \u270e " if text else "\u270e ") + run.notes
    return text


# -- lists ------------------------------------------------------------------------------------


def runs_html(runs: Sequence[_Run]) -> str:
    """The runs as a table: id, pipeline, state, start, duration, steps, key metrics, tags."""
    if not runs:
        return "<p>No runs.</p>"
    with_date = not one_day(r.started for r in runs[:ROWS])
    rows = [
        [
            cell(run.id, limit=60),
            cell(run.pipeline),
            cell(run.state),
            cell(format_started(run.started, with_date=with_date)),
            cell(_took(run.started, run.ended), right=True),
            cell(str(len(run.steps)), right=True),
            cell(pairs(dict(key_metrics(run))), limit=60),
            cell(_tags(run)),
        ]
        for run in runs[:ROWS]
    ]
    header = ["run", "pipeline", "state", "started", "took", "steps", "metrics", "tags / note"]
    right = [False] * 4 + [True, True]
    count = f"{len(runs):,} run" + ("" if len(runs) == 1 else "s")
    return table(header, rows, right=right, caption=count, total=len(runs))


def records_html(records: Sequence[RecordView], *, caption: str | None = None) -> str:
    """Step records as a table: execution, step, state, fingerprint, run, params, metrics."""
    if not records:
        return "<p>No records.</p>"
    rows = [
        [
            cell("" if r.execution_id is None else str(r.execution_id), right=True),
            cell(r.key or r.step),
            cell(_state(r)),
            cell(r.fingerprint[:12]),
            cell(r.run_id or ""),
            cell(_took(r.started, r.ended), right=True),
            cell(pairs(r.params), limit=60),
            cell(pairs(r.metrics), limit=60),
        ]
        for r in records[:ROWS]
    ]
    header = ["execution", "step", "state", "fingerprint", "run", "took", "params", "metrics"]
    right = [True, False, False, False, False, True]
    count = f"{len(records):,} record" + ("" if len(records) == 1 else "s")
    return table(header, rows, right=right, caption=caption or count, total=len(records))


def _state(record: RecordView) -> str:
    if record.cached_execution_id is not None:
        return f"{record.state} (from {record.cached_execution_id})"
    return record.state


# -- one of each ---------------------------------------------------------------------------------


def _fields(rows: list[tuple[str, str]], caption: str) -> str:
    body = [[f'<th style="text-align:left">{h(k)}</th>', cell(v, limit=120)] for k, v in rows]
    return table(None, body, caption=caption)


def run_html(run: _Run) -> str:
    """One run: its fields, then its steps."""
    rows = [
        ("pipeline", run.pipeline),
        ("state", run.state + (f": {run.error}" if run.error else "")),
        ("started", format_started(run.started)),
        ("took", _took(run.started, run.ended)),
        ("params", pairs(run.params)),
    ]
    rows += [("metrics", pairs(run.run_metrics))] if run.run_metrics else []
    rows += [("tags", " ".join(f"{k}={v}" for k, v in run.tags.items()))] if run.tags else []
    rows += [("note", run.notes)] if run.notes else []
    rows += [("config", str(run.config_path))] if run.config_path else []
    steps = run.steps
    return _fields(rows, f"run <b>{h(run.id)}</b>") + records_html(
        steps, caption=f"{len(steps)} step call" + ("" if len(steps) == 1 else "s")
    )


def record_html(record: RecordView) -> str:
    """One record: step, state, fingerprint, run, params and metrics, one per row."""
    rows = [
        ("state", _state(record)),
        ("fingerprint", record.fingerprint),
        ("execution", "" if record.execution_id is None else str(record.execution_id)),
        ("run", record.run_id or ""),
        ("took", _took(record.started, record.ended)),
    ]
    rows += [(f"param {k}", format_value(v)) for k, v in record.params.items()]
    rows += [(f"metric {k}", format_value(v)) for k, v in record.metrics.items()]
    rows += [("error", record.error)] if record.error else []
    return _fields(rows, f"step <b>{h(record.step)}</b>")


def comparison_html(comparison: ComparisonView) -> str:
    """A comparison as one row per run: the params that differ, then metrics, best in bold."""
    runs = comparison.runs
    if not runs:
        return "<p>No runs to compare.</p>"
    columns = columns_of(comparison, group=True)
    names = labels(columns)
    params = [c for c in columns if c.kind == "param" and c.varies]
    metrics = [c for c in columns if c.kind == "metric"]
    best: dict[str, float] = {}
    for c in metrics:
        numbers = [v for v in c.values if is_number(v) and v == v]
        if len(set(numbers)) > 1:
            best[c.key] = max(numbers) if higher_is_better(c.key) else min(numbers)
    with_date = not one_day(r.started for r in runs[:ROWS])
    rows = []
    for i, run in enumerate(runs[:ROWS]):
        row = [
            cell(run.id, limit=60),
            cell(run.state),
            cell(format_started(run.started, with_date=with_date)),
            cell(_took(run.started, run.ended), right=True),
        ]
        for c in [*params, *metrics]:
            value = c.values[i]
            text = format_value(value, quote=c.quote) if present(value) else "\u2014"
            top = c.key in best and is_number(value) and value == best[c.key]
            row.append(cell(text, right=is_number(value), bold=top))
        rows.append(row)
    header = ["run", "state", "started", "took", *[names[c.key] for c in [*params, *metrics]]]
    right = [False, False, False, True, *[_numeric(c.values) for c in [*params, *metrics]]]
    same = [c for c in columns if c.kind == "param" and not c.varies]
    caption = (
        f"{len(runs):,} run{'s' if len(runs) != 1 else ''}: the params that differ, then the "
        "metrics (best in bold); <code>.to_html()</code> draws the charts"
    )
    out = table(header, rows, right=right, caption=caption, total=len(runs))
    if same:
        shared = ", ".join(
            f"{c.key}={format_value(next((v for v in c.values if present(v)), None))}"
            for c in same
        )
        out += f"<p>Same in every run: {h(truncate(shared, 600))}</p>"
    return out


def _numeric(values: list[Any]) -> bool:
    given = [v for v in values if present(v)]
    return bool(given) and all(is_number(v) for v in given)
