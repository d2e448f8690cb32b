"""Tests for notebook display: zentrack._report.notebook and the lists of zentrack._runs.lists.

What a notebook shows is ``_repr_html_`` (checked by parsing the HTML with
the standard library: rows, cells, escaping) and what IPython prints is
``_repr_pretty_`` (checked through IPython's own ``pretty``); a plain
``repr`` must stay short whatever the size of what it describes.
"""

from __future__ import annotations

import pickle
from html.parser import HTMLParser
from typing import Any

import pytest

import zentrack as zt
from zentrack._report.text import comparison_text, run_text
from zentrack._runs.lists import RecordList, RunList

HOSTILE = "<script>alert(1)</script>"


@zt.step
def fit(lr: float = 0.1, note: str = "") -> float:
    """A step logging two metrics."""
    zt.log_metrics(accuracy=round(0.9 - abs(lr - 0.05), 6), loss=round(lr, 6))
    return lr


@zt.pipeline(tags={"team": "vision"})
def sweep(lr: float = 0.1, note: str = "") -> float:
    """One call of :func:`fit` per run."""
    return fit(lr=lr, note=note)


class Table(HTMLParser):
    """The cells of every table in an HTML fragment, and any tag that is not a table's."""

    TABLE_TAGS = frozenset(
        {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td", "b", "code", "p"}
    )

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.bold: list[str] = []
        self.other_tags: list[str] = []
        self._section = ""
        self._in_bold = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.TABLE_TAGS:
            self.other_tags.append(tag)
        if tag in ("thead", "tbody", "tfoot"):
            self._section = tag
        elif tag == "tr" and self._section == "tbody":
            self.rows.append([])
        elif tag in ("td", "th") and self._section == "tbody" and self.rows:
            self.rows[-1].append("")
        elif tag == "b":
            self._in_bold = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "b":
            self._in_bold = False

    def handle_data(self, data: str) -> None:
        if self._section == "tbody" and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data
            if self._in_bold:
                self.bold.append(data)


def pretty(value: Any) -> str:
    """What IPython prints for ``value``."""
    lib = pytest.importorskip("IPython.lib.pretty")
    return str(lib.pretty(value))


class TestLists:
    """``zt.runs()`` and ``zt.find()`` return lists that display as tables."""

    def test_still_lists(self):
        """A RunList is a list: equal to one, sliced into its own kind, pickled back."""
        sweep(lr=0.1)
        sweep(lr=0.2)
        runs = zt.runs()
        records = zt.find("fit")
        expected = (True, True, True, "RunList", "RecordList", 2, "RunList")
        actual = (
            isinstance(runs, list),
            runs == list(runs),
            records == list(records),
            type(runs[:1]).__name__,
            type(records[1:]).__name__,
            len(pickle.loads(pickle.dumps(runs))),
            type(pickle.loads(pickle.dumps(runs))).__name__,
        )
        assert expected == actual

    def test_repr_stays_short(self):
        """The repr of 14 runs shows 10 and says how many more; a short list is a list repr."""
        runs = RunList(
            zt.Run(id=f"r{i}", pipeline="p", state="COMPLETE", steps=[], params={},
                   config_path=None)
            for i in range(14)
        )
        text = repr(runs)
        expected = (11, "... and 4 more runs]", repr(list(runs[:2])))
        assert expected == (len(text.splitlines()), text.splitlines()[-1].strip(), repr(runs[:2]))

    def test_html_table_of_runs(self):
        """One row per run, escaped: a tag value of HTML is text (cut at 40), not markup."""
        first = sweep(lr=0.1)
        sweep(lr=0.2)
        first.tag(owner=HOSTILE)
        table = Table(zt.runs()._repr_html_())
        expected = (2, [], f"team=vision owner={HOSTILE}"[:39] + "\u2026", "sweep")
        actual = (len(table.rows), table.other_tags, table.rows[1][7], table.rows[0][1])
        assert expected == actual

    def test_at_most_fifty_rows(self):
        """A long list shows 50 rows and "and N more"."""
        runs = RunList(
            zt.Run(id=f"r{i}", pipeline="p", state="COMPLETE", steps=[], params={},
                   config_path=None)
            for i in range(60)
        )
        html = runs._repr_html_()
        expected = (50, True)
        assert expected == (len(Table(html).rows), "&hellip; and 10 more" in html)

    def test_records(self):
        """``find`` results: execution, step, state, fingerprint, params, metrics."""
        sweep(lr=0.1, note=HOSTILE)
        records = zt.find("fit")
        (row,) = Table(records._repr_html_()).rows
        expected = (str(records[0].execution_id), "fit", records[0].fingerprint[:12], True)
        assert expected == (row[0], row[1], row[3], f"note={HOSTILE}" in row[6])

    def test_pretty(self):
        """IPython prints the text table, 20 rows at most."""
        for i in range(3):
            sweep(lr=0.1 * (i + 1))
        text = pretty(zt.runs())
        expected = (4, "run", True)
        assert expected == (len(text.splitlines()), text.split()[0], "accuracy=" in text)

    def test_empty(self):
        """Nothing found: the table says so."""
        assert (
            RunList()._repr_html_(),
            RecordList()._repr_html_(),
        ) == ("<p>No runs.</p>", "<p>No records.</p>")


class TestRunAndRecord:
    """One run, one record."""

    def test_run_html(self):
        """The run's fields (tags, note, metrics) then a table of its steps."""
        run = sweep(lr=0.1)
        run.note(f"tried {HOSTILE}")
        html = zt.get_run(run.id)._repr_html_()
        table = Table(html)
        fields = {row[0]: row[1] for row in table.rows if len(row) == 2}
        expected = ("vision", f"tried {HOSTILE}", [], 1)
        actual = (
            fields["tags"].partition("=")[2],
            fields["note"],
            table.other_tags,
            sum(1 for row in table.rows if len(row) == 8),
        )
        assert expected == actual

    def test_run_pretty_is_show(self):
        """IPython prints a run as ``zentrack show`` does."""
        run = zt.get_run(sweep(lr=0.1).id)
        assert run_text(run) == pretty(run)

    def test_record_repr_bounded(self):
        """A record with a 10,000-character param and 12 params has a short repr."""
        record = zt.Record(
            step="s",
            fingerprint="f" * 64,
            params={"long": "x" * 10_000, **{f"p{i}": i for i in range(11)}},
            state="COMPLETE",
        )
        text = repr(record)
        expected = (True, True)
        assert expected == (len(text) < 300, text.endswith(", ... 4 more})"))

    def test_record_html(self):
        """A record's params and metrics, one per row, escaped."""
        sweep(lr=0.1, note=HOSTILE)
        (record,) = zt.find("fit")
        table = Table(record._repr_html_())
        fields = {row[0]: row[1] for row in table.rows}
        expected = (HOSTILE, "0.1", "0.85", [])
        actual = (
            fields["param note"],
            fields["param lr"],
            fields["metric accuracy"],
            table.other_tags,
        )
        assert expected == actual


class TestComparison:
    """A comparison in a notebook: a compact table, not the report."""

    def test_html_rows_and_best(self):
        """One row per run; the best accuracy and the lowest loss are bold."""
        for lr in (0.01, 0.05, 0.2):
            sweep(lr=lr)
        comparison = zt.compare_runs("sweep")
        table = Table(comparison._repr_html_())
        expected = (3, ["0.9", "0.01"], [])
        assert expected == (len(table.rows), sorted(table.bold, reverse=True), table.other_tags)

    def test_repr_one_line(self):
        """The repr is one line naming the runs, the params that differ and the metrics."""
        for lr in (0.01, 0.05):
            sweep(lr=lr)
        text = repr(zt.compare_runs("sweep"))
        expected = (
            "<Comparison of 2 runs of sweep; params that differ: fit.lr, pipeline.lr; "
            "metrics: fit.accuracy, fit.loss>"
        )
        assert expected == text

    def test_pretty_is_the_leaderboard_capped(self):
        """IPython prints the leaderboard, 20 runs at most."""
        runs = [
            zt.Run(id=f"r{i}", pipeline="p", state="COMPLETE", steps=[], params={},
                   config_path=None)
            for i in range(25)
        ]
        comparison = zt.Comparison(
            runs=runs, params={"p.x": list(range(25))}, metrics={"p.m": [i / 7 for i in range(25)]}
        )
        text = pretty(comparison)
        expected = (comparison_text(comparison, limit=20), "... and 5 more runs")
        assert expected == (text, text.splitlines()[-1])
