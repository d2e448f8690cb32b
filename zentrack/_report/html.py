"""The comparison report: one self-contained HTML file of a :class:`~zentrack.Comparison`.

The file holds the runs as one JSON blob (in a ``<script
type="application/json">``) and a few hundred lines of our own JavaScript
and CSS (``static/report.js`` and ``report.css``, read by
:mod:`zentrack._report.assets`) that draw the runs table, a
parallel-coordinates chart and small-multiple scatters as plain SVG.

Why our own drawing code rather than a charting library (Plotly, Vega,
ECharts, D3): the report must open offline from a single file and work with
nothing optional installed.  Inlining a library adds hundreds of kilobytes
(D3, minified) to megabytes (Plotly) to every file, before any data, and
would be one more dependency to keep up to date; the two charts the report
needs (lines through parallel axes, dots on a grid) take a few hundred lines
of SVG code.  A report of 24 runs is ~47 KB; of 1,000 runs x 10 params x 3
metrics ~0.28 MB (``benchmarks/bench_report.py``).  Nothing is ever fetched.

Safety: every name and value reaches the page only through the JSON blob
(ASCII, with ``<`` written as ``\\u003c``, so no ``</script>`` or ``<!--`` can
end it) and is put into the page with ``textContent`` and ``setAttribute``,
never parsed as HTML; the few strings written into the HTML itself (title,
summary) are escaped.  The whole page is ASCII, so any value can be written.
A Content-Security-Policy ``<meta>`` lets only the page's own script and
stylesheet run (by digest) and forbids every request, so even a value that
got past the escaping could neither run nor call out.

Only the public attributes of the comparison are read (``runs`` with their
``id``, ``pipeline``, ``state``, ``started``, ``ended``, ``tags``, ``notes``; ``params``,
``metrics`` and ``differing()``), so any object with them can be rendered.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Final

from zentrack._report import assets
from zentrack._report.table import (
    display_text,
    group_same_params,
    higher_is_better,
    is_number,
    present,
    truncate,
    varies,
)
from zentrack._report.views import ComparisonView, RunView

#: Longest text kept for one value (the table shows less and the rest on hover).
MAX_TEXT: Final = 20_000
#: Integers beyond this lose precision as JavaScript numbers: shown as text instead.
_SAFE_INTEGER: Final = 2**53
_DIGITS: Final = re.compile(r"(\d+)")


def render_comparison_html(
    comparison: ComparisonView,
    *,
    title: str | None = None,
    color_by: str | None = None,
    home: str | None = None,
    run_link: str | None = None,
) -> str:
    """The comparison as one self-contained HTML page (a ``str``).

    Args:
        comparison: what :func:`zentrack.compare_runs` returned.
        title: the page's heading (default: "N runs of PIPELINE").
        color_by: the metric that colours the chart's lines, as its column
            key (``"evaluate.accuracy"``) or, when only one step logs it, its
            name (``"accuracy"``); default: the metric with two values or more
            that most runs logged (the first of them, on a tie).
        home: a link back (``zentrack ui``'s runs list), shown above the title.
        run_link: makes each run id a link: this followed by the id, URL-encoded
            (``zentrack ui``'s ``/run?id=``).

    Raises:
        ValueError: ``color_by`` names no numeric metric of the comparison.
    """
    runs = list(comparison.runs)
    columns = _columns(comparison)
    color = _color_column(columns, color_by)
    pipeline_index = {name: i for i, name in enumerate(dict.fromkeys(r.pipeline for r in runs))}
    pipelines = list(pipeline_index)
    data = {
        "pipelines": pipelines,
        "runs": [
            {
                "id": run.id,
                "p": pipeline_index[run.pipeline],
                "s": run.state,
                "t0": run.started or None,
                "t1": run.ended,
                **({"tg": run.tags} if run.tags else {}),
                **({"n": truncate(run.notes, MAX_TEXT)} if run.notes else {}),
            }
            for run in runs
        ],
        "columns": columns,
        "color": color,
        **({"link": run_link} if run_link is not None else {}),
    }
    heading = title if title is not None else _default_title(len(runs), pipelines)
    # ASCII JSON: any text, lone surrogates included, survives as \\u escapes
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False)
    blob = blob.replace("<", "\\u003c")
    return assets.PAGE.format(
        title=_escape(heading),
        home=f'<a href="{_escape(home)}">&larr; runs</a>' if home is not None else "",
        summary=_summary(runs, pipelines),
        generated=_escape(time.strftime("%Y-%m-%d %H:%M")),
        policy=assets.REPORT_POLICY,
        css=assets.CSS,
        data=blob,
        js=assets.JS,
    )


def write_comparison_html(
    comparison: ComparisonView,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    color_by: str | None = None,
) -> Path:
    """Write :func:`render_comparison_html` to ``path`` (UTF-8) and return the path."""
    target = Path(path)
    target.write_text(
        render_comparison_html(comparison, title=title, color_by=color_by), encoding="utf-8"
    )
    return target


# -- columns -------------------------------------------------------------------------------


def _columns(comparison: ComparisonView) -> list[dict[str, Any]]:
    differing = set(comparison.differing())
    out = []
    for keys in group_same_params(comparison.params, differing):
        column = _column(keys[0], comparison.params[keys[0]], "param", keys[0] in differing)
        if len(keys) > 1:
            column["step"] = ", ".join(key.rpartition(".")[0] for key in keys)
            column["keys"] = keys
        out.append(column)
    for key, values in comparison.metrics.items():
        column = _column(key, values, "metric", varies(values))
        if column["type"] == "num":
            column["dir"] = 1 if higher_is_better(key) else -1
        out.append(column)
    return out


def _column(key: str, values: list[Any], kind: str, varies: bool) -> dict[str, Any]:
    step, _, name = key.rpartition(".")
    given = [v for v in values if present(v)]
    column: dict[str, Any] = {"key": key, "step": step, "name": name, "kind": kind}
    column["varies"] = varies
    if given and all(_plain_number(v) for v in given):
        column["type"] = "num"
        column["values"] = [_number(v) if present(v) else None for v in values]
        return column
    quote = any(type(v) is not str for v in given)
    texts = {id(v): _text(v, quote) for v in given}
    levels = sorted(set(texts.values()), key=_natural_key(given, texts))
    index = {text: i for i, text in enumerate(levels)}
    column["type"] = "cat"
    column["levels"] = levels
    column["values"] = [index[texts[id(v)]] if present(v) else None for v in values]
    return column


def _plain_number(value: object) -> bool:
    """A number JavaScript holds exactly enough (floats, and ints below 2**53)."""
    return type(value) is float or (type(value) is int and abs(value) < _SAFE_INTEGER)


def _number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _text(value: Any, quote: bool) -> str:
    text = repr(value) if quote else display_text(value)
    if len(text) > MAX_TEXT:
        text = truncate(text, MAX_TEXT) + f" ({len(text):,} characters in all)"
    return text


def _natural_key(present: list[Any], texts: dict[int, str]) -> Any:
    """Order categories as a person expects: None, False < True, numbers, then text."""
    rank: dict[str, tuple[int, float, Any]] = {}
    for value in present:
        text = texts[id(value)]
        key: tuple[int, float, Any]
        if value is None:
            key = (0, 0.0, ())
        elif type(value) is bool:
            key = (1, float(value), ())
        elif is_number(value):
            key = (2, value if not math.isnan(value) else math.inf, ())
        elif type(value) is str:
            key = (3, 0.0, _natural(value))
        else:
            key = (4, 0.0, _natural(text))
        rank.setdefault(text, key)
    return rank.__getitem__


def _usefulness(column: dict[str, Any]) -> tuple[bool, int]:
    """Rank metrics to colour by: first those with two values or more, then by how many runs."""
    numbers = [v for v in column["values"] if type(v) in (int, float)]
    return len(set(numbers)) > 1, len(numbers)


def _natural(text: str) -> tuple[tuple[str | int, ...], str]:
    """``run2`` before ``run10``: runs of digits compare as numbers, letters without case.

    The split alternates text and digits, so two keys compare text with text and
    numbers with numbers, place by place; the exact text breaks ties.
    """
    parts = _DIGITS.split(text.casefold())
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), text


def _color_column(columns: list[dict[str, Any]], color_by: str | None) -> str | None:
    numeric = [c for c in columns if c["kind"] == "metric" and c["type"] == "num"]
    if color_by is None:
        return str(max(numeric, key=_usefulness)["key"]) if numeric else None
    matches = [c for c in numeric if color_by in (c["key"], c["name"])]
    exact = [c for c in matches if c["key"] == color_by]
    if exact or len(matches) == 1:
        return str((exact or matches)[0]["key"])
    names = ", ".join(repr(c["key"]) for c in numeric) or "none: no run logged a number"
    problem = "is logged by several steps" if matches else "is not a numeric metric of these runs"
    raise ValueError(f"color_by={color_by!r} {problem}; use one of the metric keys ({names}).")


def _escape(text: str) -> str:
    """``text`` as HTML in ASCII: markup escaped, anything else as character references."""
    return html.escape(text).encode("ascii", "xmlcharrefreplace").decode("ascii")


# -- header --------------------------------------------------------------------------------


def _default_title(count: int, pipelines: list[str]) -> str:
    runs = f"{count:,} run" + ("" if count == 1 else "s")
    if len(pipelines) == 1:
        return f"{runs} of {pipelines[0]}"
    return f"{runs} of {len(pipelines)} pipelines" if pipelines else "No runs"


def _summary(runs: list[RunView], pipelines: list[str]) -> str:
    """The line under the title: pipelines, runs by state, the span of start times."""
    parts = []
    if pipelines:
        label = "pipeline" if len(pipelines) == 1 else "pipelines"
        names = ", ".join(truncate(p, 60) for p in pipelines[:4])
        names += f" and {len(pipelines) - 4} more" if len(pipelines) > 4 else ""
        parts.append(f"{label} <b>{_escape(names)}</b>")
    states = Counter(run.state for run in runs)
    counted = ", ".join(f"{n} {_escape(s.lower())}" for s, n in states.most_common())
    parts.append(
        f"<b>{len(runs):,}</b> run{'s' if len(runs) != 1 else ''}"
        + (f" ({counted})" if counted else "")
    )
    started = [run.started for run in runs if run.started]
    if started:
        parts.append(_escape(_span(min(started), max(started))))
    return " &middot; ".join(parts)


def _span(first: float, last: float) -> str:
    """``2024-05-03 14:02 - 14:40`` (an en dash), or two full dates when the days differ."""
    start = time.localtime(first)
    end = time.localtime(last)
    left = time.strftime("%Y-%m-%d %H:%M", start)
    if time.strftime("%Y-%m-%d %H:%M", end) == left:
        return left
    same_day = start[:3] == end[:3]
    right = time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", end)
    return f"{left} \u2013 {right}"
