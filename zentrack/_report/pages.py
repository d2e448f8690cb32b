"""The pages of ``zentrack ui``: the runs list, one run, and errors, as HTML.

Pages are built as text from escaped pieces: every name and value from the
store goes through :func:`h`, so it reaches the browser as text whatever it
holds; links carry values only inside percent-encoded query strings.  The
page's one stylesheet and one script (``static/viewer.css``/``viewer.js``)
are inline and allowed by digest in the page's Content-Security-Policy,
which allows nothing else.  Pages are ASCII (other characters as character
references), so any stored text, lone surrogates included, can be shown.

The compare page is the report of :mod:`zentrack._report.html` itself.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from zentrack._record.line import Record
from zentrack._report import assets
from zentrack._report.table import (
    format_duration,
    format_started,
    format_value,
    one_day,
    truncate,
)
from zentrack._report.text import key_metrics
from zentrack._runs.pipeline import Run

CSS: Final = assets.read("viewer.css")
JS: Final = assets.read("viewer.js")
#: Every viewer page's policy; the compare page has the report's (see :func:`policy_of`).
POLICY: Final = assets.policy((JS,), (CSS,))
#: Characters of a value a cell shows (the tooltip holds more, up to TITLE).
CELL: Final = 60
TITLE: Final = 4_000
STATES: Final = ("COMPLETE", "FAILED", "RUNNING", "CANCELED")
#: Runs the list shows unless asked for all (``limit=0``).
LIMIT: Final = 200
_KNOWN_STATES: Final = frozenset({*STATES, "CACHED"})


@attrs.frozen
class Page:
    """A page to send: its bytes, and the Content-Security-Policy that goes with them."""

    body: bytes
    policy: str
    status: int = 200


@attrs.frozen
class Filters:
    """The runs list's filters, as given in its query string."""

    pipeline: str = ""
    state: str = ""
    where: str = ""
    tag: str = ""
    limit: int = LIMIT

    def query(self, **changes: Any) -> str:
        """These filters (with ``changes``) as a query string, empty values left out."""
        values = {**attrs.asdict(self), **changes}
        if values["limit"] == LIMIT:
            del values["limit"]
        return urllib.parse.urlencode({k: v for k, v in values.items() if v not in ("", None)})


def h(text: object) -> str:
    """``text`` as HTML text or attribute value: ``& < > " '`` escaped."""
    return html.escape(str(text), quote=True)


def policy_of(page_policy: str) -> str:
    """A page's policy as sent in the header: also forbids framing (a ``<meta>`` cannot)."""
    return page_policy + "; frame-ancestors 'none'"


def shell(title: str, body: str, *, store: str, status: int = 200) -> Page:
    """A whole viewer page around ``body`` (already HTML), as ASCII bytes."""
    text = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} \u00b7 zentrack</title><style>{CSS}</style></head><body>"
        '<header class="v-top"><a class="v-brand" href="/">zentrack</a>'
        f'<span class="v-store" title="{h(store)}">{h(store)}</span>'
        '<nav><a href="/">Runs</a></nav></header>'
        f"<main>{body}"
        '<p class="v-foot">zentrack ui: a read-only view of the store; nothing here changes '
        "it and nothing is loaded from the network.</p></main>"
        f"<script>{JS}</script></body></html>"
    )
    return Page(text.encode("ascii", "xmlcharrefreplace"), policy_of(POLICY), status)


def error_page(status: int, message: str, *, store: str) -> Page:
    """A page saying what went wrong, with a way back."""
    body = (
        '<p class="v-crumbs"><a href="/">Runs</a></p>'
        f'<h1>{h(_REASONS.get(status, "Error"))}</h1>'
        f'<p class="v-error">{h(message)}</p>'
    )
    return shell(_REASONS.get(status, "Error"), body, store=store, status=status)


_REASONS: Final = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    500: "The viewer failed",
}


def _link(path: str, **query: str) -> str:
    return path + ("?" + urllib.parse.urlencode(query) if query else "")


def run_link(run_id: str, anchor: str = "") -> str:
    """The URL of a run's page (``anchor``: a step row on it)."""
    return _link("/run", id=run_id) + (f"#{anchor}" if anchor else "")


def _cell(
    text: str, *, sort: object = None, cls: str = "", limit: int = CELL, inner: str | None = None
) -> str:
    """A ``<td>``: ``text`` cut to ``limit`` (all of it in the tooltip), sort value in data-v."""
    shown = inner if inner is not None else h(truncate(text, limit))
    title = f' title="{h(truncate(text, TITLE))}"' if len(text) > limit else ""
    value = "" if sort is None else f' data-v="{h(sort)}"'
    kind = f' class="{cls}"' if cls else ""
    return f"<td{kind}{value}{title}>{shown}</td>"


def _pill(state: str) -> str:
    known = state if state in _KNOWN_STATES else "OTHER"
    return f'<span class="pill {known}">{h(state)}</span>'


def _pairs(values: Mapping[str, Any]) -> tuple[str, str]:
    """``(html, text)`` of ``name=value`` pairs: names in grey, values cut, the whole as text."""
    parts, texts = [], []
    for name, value in values.items():
        shown = format_value(value)
        texts.append(f"{name}={shown}")
        parts.append(f"<span><i>{h(truncate(name, 40))}=</i>{h(truncate(shown, 40))}</span>")
    return "".join(parts), ", ".join(texts)


def _kv_cell(values: Mapping[str, Any]) -> str:
    inner, text = _pairs(values)
    title = f' title="{h(truncate(text, TITLE))}"' if text else ""
    return f'<td class="kv" data-v="{h(truncate(text, 200))}"{title}>{inner}</td>'


def _tags_html(tags: Mapping[str, str], note: str | None) -> tuple[str, str]:
    chips = "".join(
        f'<span class="tag">{h(truncate(f"{k}={v}", 40))}</span>' for k, v in tags.items()
    )
    text = " ".join(f"{k}={v}" for k, v in tags.items())
    if note:
        first = note.splitlines()[0] if note.strip() else note
        chips += f'<span class="note">\u270e {h(truncate(first, 40))}</span>'
        text += ("\n" if text else "") + note
    return chips, text


def _took(started: float, ended: float | None) -> tuple[str, float | None]:
    if not (started and ended):
        return "", None
    return format_duration(ended - started), ended - started


def _header(columns: Sequence[tuple[str, str]]) -> str:
    """``<thead>`` of sortable columns: ``(label, "num" | "text" | "")``; "" is not sortable."""
    cells = []
    for index, (label, kind) in enumerate(columns):
        cls = ' class="num"' if kind == "num" else ""
        if kind:
            button = f'<button type="button" data-col="{index}" data-type="{kind}">'
            cells.append(f'<th{cls} aria-sort="none">{button}{h(label)}</button></th>')
        else:
            cells.append(f"<th{cls}>{label}</th>")
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


# -- the runs list --------------------------------------------------------------------------------


def runs_page(
    runs: Sequence[Run[Any]],
    *,
    total: int,
    filters: Filters,
    pipelines: Iterable[str],
    store: str,
    error: str | None = None,
) -> Page:
    """The runs (newest first) with the filters that chose them, to pick some to compare."""
    form = _filter_form(filters, pipelines)
    problem = f'<p class="v-error">{h(error)}</p>' if error else ""
    if not runs:
        body = "<h1>Runs</h1>" + form + problem + '<p class="muted">No runs match.</p>'
        return shell("Runs", body, store=store, status=400 if error else 200)
    with_date = not one_day(r.started for r in runs)
    rows = []
    for run in runs:
        took, seconds = _took(run.started, run.ended)
        metrics = dict(key_metrics(run, 4))
        chips, tag_text = _tags_html(run.tags, run.notes)
        rows.append(
            "<tr>"
            f'<td><input type="checkbox" name="run" value="{h(run.id)}" '
            f'aria-label="select {h(run.id)}"></td>'
            + _cell(run.id, sort=run.id, cls="id", limit=80,
                    inner=f'<a href="{h(run_link(run.id))}">{h(run.id)}</a>')
            + _cell(run.pipeline, sort=run.pipeline, limit=32)
            + _cell(run.state, sort=run.state, inner=_pill(run.state))
            + _cell(format_started(run.started, with_date=with_date), sort=run.started or "")
            + _cell(took, sort="" if seconds is None else seconds, cls="num")
            + _cell(str(len(run.steps)), sort=len(run.steps), cls="num")
            + _kv_cell(run.params)
            + _kv_cell(metrics)
            + _cell(tag_text, sort=tag_text, inner=chips, limit=10**9)
            + "</tr>"
        )
    head = _header(
        [
            ('<input type="checkbox" id="v-all" aria-label="select all">', ""),
            ("run", "text"),
            ("pipeline", "text"),
            ("state", "text"),
            ("started", "num"),
            ("took", "num"),
            ("steps", "num"),
            ("params", "text"),
            ("metrics", "text"),
            ("tags \u00b7 note", "text"),
        ]
    )
    shown = f"{len(runs):,} run" + ("" if len(runs) == 1 else "s")
    if total > len(runs):
        shown = f"{len(runs):,} of {total:,} runs (newest first) \u00b7 " + (
            f'<a href="/?{h(filters.query(limit=0))}">show all</a>'
        )
    compare_all = f'<a href="/compare?{h(filters.query())}">compare all {total:,}</a>'
    body = (
        "<h1>Runs</h1>"
        + form
        + problem
        + '<form id="v-compare" method="get" action="/compare">'
        + f'<div class="v-bar"><span>{shown}</span>'
        + '<button id="v-compare-btn" type="submit">Compare selected</button>'
        + f"{compare_all if total > 1 else ''}</div>"
        + f'<div class="v-wrap"><table class="v-table" id="v-runs">{head}'
        + f"<tbody>{''.join(rows)}</tbody></table></div></form>"
    )
    return shell("Runs", body, store=store, status=400 if error else 200)


def _filter_form(filters: Filters, pipelines: Iterable[str]) -> str:
    def options(values: Iterable[str], chosen: str) -> str:
        out = ['<option value="">any</option>']
        for value in values:
            selected = " selected" if value == chosen else ""
            out.append(f'<option value="{h(value)}"{selected}>{h(truncate(value, 60))}</option>')
        return "".join(out)

    return (
        '<form class="v-filters" method="get" action="/">'
        f'<label>pipeline<select name="pipeline">{options(pipelines, filters.pipeline)}</select>'
        f'</label><label>state<select name="state">{options(STATES, filters.state)}</select>'
        '</label><label>param or metric<input class="wide" name="where" '
        f'value="{h(filters.where)}" placeholder="lr__lt=0.05 accuracy__ge=0.9"></label>'
        f'<label>tag<input name="tag" value="{h(filters.tag)}" placeholder="team=vision">'
        '</label><button type="submit">Filter</button><a href="/">clear</a></form>'
    )


# -- one run --------------------------------------------------------------------------------------


def run_page(
    run: Run[Any],
    *,
    originals: Mapping[int, Record],
    config: tuple[str | None, str],
    store: str,
) -> Page:
    """A run: its fields, its steps (CACHED ones linked to the call they reused), its config.

    Args:
        run: the run.
        originals: execution id -> record of the executions CACHED steps reused.
        config: the config's text, or None and why it is not shown.
        store: the store's name, for the header.
    """
    took, _ = _took(run.started, run.ended)
    chips, _ = _tags_html(run.tags, None)
    pipeline = f'<a href="/?{h(urllib.parse.urlencode({"pipeline": run.pipeline}))}">'
    pipeline += f"{h(run.pipeline)}</a>"
    if run.source:
        pipeline += f' <span class="muted">{h(run.source)}</span>'
    fields = [
        ("pipeline", pipeline),
        ("state", _pill(run.state) + (f"<pre>{h(run.error)}</pre>" if run.error else "")),
        ("started", h(format_started(run.started)) + (f" \u00b7 took {h(took)}" if took else "")),
        ("params", _pairs(run.params)[0] or '<span class="muted">none</span>'),
    ]
    if run.run_metrics:
        fields.append(("metrics", _pairs(run.run_metrics)[0]))
    if run.tags:
        fields.append(("tags", chips))
    if run.notes:
        fields.append(("note", f"<pre>{h(run.notes)}</pre>"))
    fields.append(("config", h(run.config_path) if run.config_path else "-"))
    listing = "".join(f"<dt>{name}</dt><dd class=\"kv\">{value}</dd>" for name, value in fields)
    text, why = config
    config_html = (
        f'<pre class="v-config">{h(text)}</pre>'
        if text is not None
        else f'<p class="muted">{h(why)}</p>'
    )
    compare = _link("/compare", pipeline=run.pipeline)
    body = (
        '<p class="v-crumbs"><a href="/">Runs</a> / run</p>'
        f"<h1>{h(run.id)}</h1>"
        f'<p class="v-sub"><a href="{h(compare)}">compare the runs of '
        f"{h(truncate(run.pipeline, 60))}</a></p>"
        f'<div class="v-card"><dl class="v-fields">{listing}</dl></div>'
        f"<h2>Steps ({len(run.steps)})</h2>"
        + _steps_table(run.steps, originals)
        + "<h2>Config</h2>"
        + config_html
    )
    return shell(f"run {run.id}", body, store=store)


def _steps_table(steps: Sequence[Record], originals: Mapping[int, Record]) -> str:
    if not steps:
        return '<p class="muted">No step calls were recorded in this run.</p>'
    with_date = not one_day(r.started for r in steps)
    rows = []
    for r in steps:
        took, seconds = _took(r.started, r.ended)
        anchor = f"exec-{r.execution_id}" if r.execution_id is not None else ""
        rows.append(
            f'<tr id="{h(anchor)}">'
            + _cell(str(r.execution_id or ""), sort=r.execution_id or "", cls="num")
            + _cell(r.key or r.step, sort=r.key or r.step)
            + _cell(r.step, sort=r.step)
            + _cell(r.state, sort=r.state, inner=_pill(r.state))
            + _cell(r.fingerprint, sort=r.fingerprint, cls="id", limit=64,
                    inner=f'<span title="{h(r.fingerprint)}">{h(r.fingerprint[:12])}</span>')
            + _cell(format_started(r.started, with_date=with_date), sort=r.started or "")
            + _cell(took, sort="" if seconds is None else seconds, cls="num")
            + _kv_cell(r.params)
            + _kv_cell(r.metrics)
            + f'<td class="kv">{_lineage(r, originals)}</td>'
            + "</tr>"
        )
    head = _header(
        [
            ("execution", "num"),
            ("key", "text"),
            ("step", "text"),
            ("state", "text"),
            ("fingerprint", "text"),
            ("started", "num"),
            ("took", "num"),
            ("params", "text"),
            ("metrics", "text"),
            ("output", ""),
        ]
    )
    return (
        f'<div class="v-wrap"><table class="v-table" id="v-steps">{head}'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _lineage(record: Record, originals: Mapping[int, Record]) -> str:
    """Where a CACHED call's output came from: the execution it reused, in its run."""
    if record.cached_execution_id is None:
        return '<span class="muted">computed</span>' if record.state == "COMPLETE" else ""
    original = originals.get(record.cached_execution_id)
    number = h(record.cached_execution_id)
    if original is None:
        return f"reused execution {number} (not found in the store)"
    if original.run_id is None:
        return f"reused execution {number} (called outside any run)"
    link = run_link(original.run_id, f"exec-{record.cached_execution_id}")
    return (
        f'reused execution {number} of run <a class="id" href="{h(link)}">'
        f"{h(truncate(original.run_id, 40))}</a>"
    )

