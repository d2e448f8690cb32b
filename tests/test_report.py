"""Tests for zentrack._report: the HTML comparison report, checked in a real Chromium.

Runs are made through the public API (``@zt.pipeline``, ``@zt.step``,
``zt.log_metrics``) into the test's SQLite store, compared with
``zt.compare_runs`` and rendered; the page is opened from a ``file://`` URL in
headless Chromium (:mod:`tests.browser`), where the DOM, the clicks and the
screenshots are checked.  Browser tests skip where Chromium is missing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import zentrack as zt
from tests.browser import Browser, browser_for_tests
from tests.strategies import tracked_values
from zentrack._report.html import render_comparison_html, write_comparison_html
from zentrack._report.table import format_duration, format_number, higher_is_better, truncate
from zentrack._step.values import MISSING

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"


@zt.step
def load(n_rows: int = 100, *, seed: int = 0) -> int:
    """A first step with constant params."""
    return n_rows + seed


@zt.step(params=["lr", "depth", "optimizer", "note"])
def train(data: int, *, lr: float, depth: int, optimizer: str, note: str = "") -> float:
    """A second step logging accuracy and loss that follow its params."""
    shape = {"adam": 0.9, "sgd": 0.86, "rmsprop": 0.88}.get(optimizer, 0.8)
    accuracy = round(shape - 0.02 * (math.log10(lr) + 2) ** 2 + 0.005 * depth, 6)
    zt.log_metrics(accuracy=accuracy, loss=round(1.2 - accuracy, 6))
    return accuracy


@zt.pipeline
def sweep(lr: float = 0.01, depth: int = 4, optimizer: str = "adam", note: str = "") -> float:
    """A training sweep: load, then train."""
    return train(load(100, seed=0), lr=lr, depth=depth, optimizer=optimizer, note=note)


@zt.step
def score(kind: str = "a") -> float:
    """A step of another pipeline, with a metric given as is."""
    zt.log_metrics(accuracy=0.5)
    return 0.5


@zt.pipeline
def other(kind: str = "a") -> float:
    """A second pipeline with params of its own."""
    return score(kind=kind)


ODD_LOSSES = (0.5, math.nan, math.inf, 0.25)


@zt.step
def odd_metric(which: int = 0) -> float:
    """Log ``ODD_LOSSES[which]`` (NaN and inf included) as ``loss``."""
    zt.log_metrics(loss=ODD_LOSSES[which])
    return which


@zt.pipeline
def odd(which: int = 0) -> float:
    """A pipeline whose metric may be NaN or infinite."""
    return odd_metric(which=which)


@zt.step
def quiet(size: int = 1) -> int:
    """A step that logs no metric."""
    return size


@zt.pipeline
def silent(size: int = 1) -> int:
    """A pipeline whose runs have no metrics."""
    return quiet(size=size)


@zt.step(name="<img src=x onerror=\"window.__xss='step'\">")
def hostile_step(value: str = "") -> str:
    """A step whose name is HTML, logging a metric whose name is HTML."""
    zt.log_metrics(**{"<svg onload=\"window.__xss='metric'\">": 1.0, "plain": len(value)})
    return value


@zt.pipeline(name="<script>window.__xss='pipeline'</script>")
def hostile(value: str = "") -> str:
    """A pipeline whose name is HTML."""
    return hostile_step(value=value)


GRID = [
    (lr, depth, opt) for lr in (0.001, 0.01, 0.1) for depth in (2, 8) for opt in ("adam", "sgd")
]


def run_sweep() -> zt.Comparison:
    """Record the 12 runs of :data:`GRID` and compare them."""
    for lr, depth, optimizer in GRID:
        sweep(lr=lr, depth=depth, optimizer=optimizer)
    return zt.compare_runs("sweep")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module's tests (skipped where there is none)."""
    with browser_for_tests(width=1280, height=900) as instance:
        yield instance


def open_report(browser: Browser, path: Path, comparison: zt.Comparison, **options: Any) -> Path:
    """Write the report of ``comparison`` to ``path`` and load it in ``browser``."""
    write_comparison_html(comparison, path, **options)
    browser.dialogs.clear()
    browser.requests.clear()
    browser.errors.clear()
    browser.open(path.resolve().as_uri())
    assert browser.evaluate("window.ztReady === true"), browser.errors
    return path


def visible_rows(browser: Browser) -> list[str]:
    """The run ids of the table's shown rows, top to bottom."""
    rows: list[str] = browser.evaluate(
        "[...document.querySelectorAll('#zt-table tbody tr')]"
        ".filter((tr) => !tr.hidden).map((tr) => tr.cells[0].title)"
    )
    return rows


def blob(page: str) -> dict[str, Any]:
    """The JSON data the page carries."""
    match = re.search(
        r'<script type="application/json" id="zt-data">(.*?)</script>', page, re.DOTALL
    )
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


class TestRenderComparisonHtml:
    """``render_comparison_html``/``write_comparison_html`` on their own (no browser)."""

    def test_self_contained(self, tmp_path):
        """Nothing in the file points at a network address or another file; it is ASCII."""
        page = render_comparison_html(run_sweep())
        expected = ([], [], [], 2, True)
        actual = (
            re.findall(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE),
            re.findall(r"<(?:link|img|iframe|object|embed)\b", page, re.IGNORECASE),
            re.findall(r"<script[^>]*\bsrc=", page, re.IGNORECASE),
            page.count("</script>"),
            page.isascii(),
        )
        assert expected == actual

    def test_data_blob(self):
        """One run entry per run, params that hold the same values merged, metrics directed."""
        comparison = run_sweep()
        data = blob(render_comparison_html(comparison))
        columns = {c["key"]: c for c in data["columns"]}
        expected = (
            [r.id for r in comparison.runs],
            ["pipeline.lr", "train.lr"],
            "pipeline, train",
            (1, -1),
            "train.accuracy",
            ["adam", "sgd"],
        )
        actual = (
            [r["id"] for r in data["runs"]],
            columns["pipeline.lr"]["keys"],
            columns["pipeline.lr"]["step"],
            (columns["train.accuracy"]["dir"], columns["train.loss"]["dir"]),
            data["color"],
            columns["pipeline.optimizer"]["levels"],
        )
        assert expected == actual

    def test_markup_in_values_cannot_end_the_data_script(self):
        """``</script>`` and ``<!--`` in values are written as ``\\u003c`` inside the blob."""
        sweep(lr=0.1, note="</script><script>alert(1)</script><!--")
        sweep(lr=0.2, note="plain")
        page = render_comparison_html(zt.compare_runs("sweep"))
        levels = {c["key"]: c.get("levels") for c in blob(page)["columns"]}
        expected = (2, ["</script><script>alert(1)</script><!--", "plain"], False)
        actual = (page.count("</script>"), levels["pipeline.note"], "alert(1)</script>" in page)
        assert expected == actual

    def test_title_escaped(self):
        """A given title is escaped in ``<title>`` and the heading."""
        page = render_comparison_html(run_sweep(), title="<b>lr</b> & depth")
        expected = (2, 0)
        actual = (page.count("&lt;b&gt;lr&lt;/b&gt; &amp; depth"), page.count("<b>lr</b>"))
        assert expected == actual

    def test_write_returns_path(self, tmp_path):
        """The page is written as UTF-8 to the path given, and the path returned."""
        target = tmp_path / "report.html"
        comparison = run_sweep()
        written = write_comparison_html(comparison, str(target), title="sweep")
        expected = (target, render_comparison_html(comparison, title="sweep")[:200])
        actual = (written, target.read_text(encoding="utf-8")[:200])
        assert expected == actual

    def test_color_by_name_or_key(self):
        """``color_by`` takes a metric key, or its name when one step logs it."""
        comparison = run_sweep()
        expected = ("train.loss", "train.loss")
        actual = (
            blob(render_comparison_html(comparison, color_by="loss"))["color"],
            blob(render_comparison_html(comparison, color_by="train.loss"))["color"],
        )
        assert expected == actual

    @pytest.mark.parametrize("name", ["f1", "lr", "train.depth"])
    def test_color_by_unknown(self, name):
        """A ``color_by`` that is no numeric metric is a ValueError naming it and the choices."""
        with pytest.raises(ValueError, match=rf"color_by='{re.escape(name)}'.*'train\.accuracy'"):
            render_comparison_html(run_sweep(), color_by=name)

    def test_color_by_ambiguous(self):
        """A metric name logged by two steps must be given as its key."""
        sweep(lr=0.01)
        other(kind="b")
        comparison = zt.compare_runs()
        with pytest.raises(ValueError, match="logged by several steps"):
            render_comparison_html(comparison, color_by="accuracy")

    def test_any_text_can_be_written(self, tmp_path):
        """Non-ASCII text and lone surrogates (which UTF-8 cannot hold) make an ASCII page."""
        sweep(lr=0.1, note="na\u00efve \u2603 \udc80")
        sweep(lr=0.2, note="x")
        path = write_comparison_html(
            zt.compare_runs("sweep"), tmp_path / "r.html", title="\u00e9t\u00e9"
        )
        page = path.read_bytes()
        expected = (True, True, True)
        actual = (
            page.isascii(),
            b"<title>&#233;t&#233;</title>" in page,
            b"na\\u00efve \\u2603 \\udc80" in page,
        )
        assert expected == actual

    def test_long_values_capped(self):
        """A value longer than 20,000 characters is cut, saying how long it was."""
        sweep(lr=0.1, note="x" * 50_000)
        sweep(lr=0.2, note="y")
        data = blob(render_comparison_html(zt.compare_runs("sweep")))
        levels = next(c["levels"] for c in data["columns"] if c["key"] == "pipeline.note")
        expected = ["x" * 19_999 + "\u2026 (50,000 characters in all)", "y"]
        assert expected == levels


class TestComparisonToHtml:
    """``Comparison.to_html``: the page as a string, or written to a file."""

    def test_string(self):
        """Without a path, the page itself, as the renderer makes it."""
        comparison = run_sweep()
        page = comparison.to_html(title="sweep", color_by="loss")
        expected = render_comparison_html(comparison, title="sweep", color_by="loss")
        # the footer's minute may have turned between the two renders
        assert re.sub(r"on \d{4}-\d\d-\d\d \d\d:\d\d", "", expected) == re.sub(
            r"on \d{4}-\d\d-\d\d \d\d:\d\d", "", page
        )

    def test_path(self, tmp_path):
        """With a path (str or PathLike), the file is written and its Path returned."""
        comparison = run_sweep()
        written = comparison.to_html(str(tmp_path / "a.html"))
        expected = (tmp_path / "a.html", True, "12 runs of sweep")
        actual = (
            written,
            written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>"),
            blob_title(written.read_text(encoding="utf-8")),
        )
        assert expected == actual

    def test_bad_colour(self, tmp_path):
        """An unknown ``color_by`` is the renderer's ValueError, and no file is written."""
        with pytest.raises(ValueError, match="color_by='f1'"):
            run_sweep().to_html(tmp_path / "a.html", color_by="f1")
        assert not (tmp_path / "a.html").exists()


def blob_title(page: str) -> str:
    """The page's ``<h1>``."""
    match = re.search(r"<h1>(.*?)</h1>", page)
    assert match is not None
    return match.group(1)


class TestAnyValues:
    """Whatever a run holds, the report renders it as data, one value per run."""

    @given(
        columns=st.lists(
            st.lists(st.one_of(tracked_values, st.just(MISSING)), min_size=3, max_size=3),
            min_size=1,
            max_size=4,
        )
    )
    def test_any_tracked_values(self, columns):
        """Any tracked values (NaN, huge ints, lone surrogates, nesting) or none at all."""
        runs = [
            zt.Run(
                id=f"r{i}",
                pipeline="p",
                state="COMPLETE",
                steps=[],
                params={},
                config_path=None,
                started=1e9 + i,
                ended=1e9 + i + 1,
            )
            for i in range(3)
        ]
        params = {f"step.p{k}": values for k, values in enumerate(columns)}
        metrics = {"step.m": columns[0]}
        page = render_comparison_html(zt.Comparison(runs=runs, params=params, metrics=metrics))
        data = blob(page)

        def valid(column: dict[str, Any]) -> bool:
            if column["type"] == "num":
                return all(
                    v is None or isinstance(v, (int, float)) or v in ("NaN", "inf", "-inf")
                    for v in column["values"]
                )
            return all(v is None or 0 <= v < len(column["levels"]) for v in column["values"])

        shown = {key for c in data["columns"] for key in c.get("keys", [c["key"]])}
        expected = (True, 2, {*params, *metrics}, True, True)
        actual = (
            page.isascii(),
            page.count("</script>"),
            shown,
            all(len(c["values"]) == 3 for c in data["columns"]),
            all(valid(c) for c in data["columns"]),
        )
        assert expected == actual


class TestTableHelpers:
    """The shared number formatting, truncation and metric direction."""

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (0, "0"),
            (-0.0, "0"),
            (2.0, "2"),
            (123456, "123456"),
            (1234567, "1.235e6"),
            (0.93456, "0.9346"),
            (0.001, "0.001"),
            (1.5e-5, "1.5e-5"),
            (12345.67, "12346"),
            (9999.6, "10000"),
            (1.0625, "1.063"),
            (-0.5, "-0.5"),
            (0.1 + 0.2, "0.3"),
            (math.nan, "NaN"),
            (-math.inf, "-inf"),
        ],
    )
    def test_format_number(self, value, text):
        """Four significant digits, whole numbers whole, tiny and huge ones scientific."""
        assert text == format_number(value)

    def test_truncate(self):
        """Cut text keeps ``limit`` characters, the last one an ellipsis."""
        expected = ("abc", "ab\u2026")
        assert expected == (truncate("abc", 3), truncate("abcd", 3))

    @pytest.mark.parametrize(
        ("metric", "higher"),
        [
            ("eval.accuracy", True),
            ("val_loss", False),
            ("rmse", False),
            ("f1", True),
            ("train.error_rate", False),
            ("fit_time", False),
            ("auc", True),
        ],
    )
    def test_direction(self, metric, higher):
        """Losses, errors and times are better low; anything else high."""
        assert higher == higher_is_better(metric)


class TestReportInBrowser:
    """The report as Chromium shows it."""

    def test_structure_and_screenshot(self, browser, tmp_path):
        """One row per run, one line per run, a scatter per metric and varying param."""
        comparison = run_sweep()
        open_report(browser, tmp_path / "report.html", comparison)
        shot = browser.screenshot(tmp_path / "report.png", full_page=True)
        counts = browser.evaluate(
            "({rows: document.querySelectorAll('#zt-table tbody tr').length,"
            " lines: document.querySelectorAll('#zt-pc-svg path.pc-line').length,"
            " axes: [...document.querySelectorAll('#zt-pc-svg g.ax')].map((g) => g.dataset.col),"
            " scatters: document.querySelectorAll('#zt-scatter svg').length,"
            " heading: document.querySelector('h1').textContent})"
        )
        expected = {
            "rows": 12,
            "lines": 12,
            "axes": [
                "pipeline.depth",
                "pipeline.lr",
                "pipeline.optimizer",
                "train.loss",
                "train.accuracy",
            ],
            "scatters": 2 * 3,
            "heading": "12 runs of sweep",
        }
        assert expected == counts
        expected_shot = (PNG_SIGNATURE, True, [], [], [tmp_path.joinpath("report.html").as_uri()])
        actual_shot = (
            shot[:8],
            len(shot) > 20_000,
            browser.errors,
            browser.dialogs,
            browser.requests,
        )
        assert expected_shot == actual_shot

    def test_best_first_then_click_sorts(self, browser, tmp_path):
        """Rows start best accuracy first; clicking a header sorts by it, again reverses."""
        comparison = run_sweep()
        open_report(browser, tmp_path / "report.html", comparison)
        ids = [r.id for r in comparison.runs]
        accuracy = comparison.metrics["train.accuracy"]
        lr = comparison.params["train.lr"]
        first = visible_rows(browser)
        browser.click('#zt-table button[data-key="pipeline.lr"]')
        ascending = visible_rows(browser)
        browser.click('#zt-table button[data-key="pipeline.lr"]')
        descending = visible_rows(browser)
        expected = (
            [ids[i] for i in sorted(range(12), key=lambda i: (-accuracy[i], i))],
            [ids[i] for i in sorted(range(12), key=lambda i: (lr[i], i))],
            [ids[i] for i in sorted(range(12), key=lambda i: (-lr[i], i))],
        )
        assert expected == (first, ascending, descending)

    def test_text_columns_sort_naturally(self, browser, tmp_path):
        """Text sorts as a person reads it: ``run2`` before ``run10``."""
        for note in ("run10", "run2", "Run1", "run", "7"):
            sweep(lr=0.01, note=note)
        open_report(browser, tmp_path / "report.html", zt.compare_runs("sweep"))
        browser.click('#zt-table button[data-key="pipeline.note"]')
        notes = browser.evaluate(
            "[...document.querySelectorAll('#zt-table tbody tr')].map((tr) =>"
            " tr.cells[[...document.querySelectorAll('#zt-table thead tr.zt-names th')]"
            ".findIndex((th) => th.querySelector('[data-key=\"pipeline.note\"]'))].textContent)"
        )
        assert notes == ["7", "run", "Run1", "run2", "run10"]

    def test_best_values_marked(self, browser, tmp_path):
        """The best value of each metric is marked: highest accuracy, lowest loss."""
        comparison = run_sweep()
        open_report(browser, tmp_path / "report.html", comparison)
        marked = browser.evaluate(
            "[...document.querySelectorAll('#zt-table td.best')].map((td) => td.title)"
        )
        expected = best_titles(comparison, accuracy=max, loss=min)
        assert expected == sorted(marked)

    def test_direction_switch(self, browser, tmp_path):
        """The direction button makes the other end of the colour metric the best."""
        comparison = run_sweep()
        open_report(browser, tmp_path / "report.html", comparison)
        browser.click("#zt-flip")
        state = browser.evaluate(
            "({button: document.getElementById('zt-flip').textContent,"
            " best: [...document.querySelectorAll('#zt-table td.best')].map((td) => td.title)})"
        )
        expected = {
            "button": "lower is better",
            "best": best_titles(comparison, accuracy=min, loss=min),
        }
        assert expected == {"button": state["button"], "best": sorted(state["best"])}

    def test_colour_select(self, browser, tmp_path):
        """The select lists the metrics; picking one moves its axis right and sorts by it."""
        comparison = run_sweep()
        open_report(browser, tmp_path / "report.html", comparison)
        browser.evaluate(
            "(() => { const s = document.getElementById('zt-color'); s.value = 'train.loss';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        state = browser.evaluate(
            "({options: [...document.querySelectorAll('#zt-color option')].map((o) => o.value),"
            " last: [...document.querySelectorAll('#zt-pc-svg g.ax')].pop().dataset.col})"
        )
        ids, loss = [r.id for r in comparison.runs], comparison.metrics["train.loss"]
        expected = {
            "options": ["train.accuracy", "train.loss"],
            "last": "train.loss",
            "rows": [ids[i] for i in sorted(range(12), key=lambda i: (loss[i], i))],
        }
        assert expected == {**state, "rows": visible_rows(browser)}

    def test_brushing_an_axis_filters_rows(self, browser, tmp_path):
        """Dragging along the top of the accuracy axis keeps only the runs in that range."""
        comparison = run_sweep()
        open_report(browser, tmp_path / "report.html", comparison)
        box = browser.evaluate(
            "(() => { const r = document.querySelector("
            "'#zt-pc-svg g.ax[data-col=\"train.accuracy\"] rect.ax-hit')"
            ".getBoundingClientRect(); return [r.left + r.width / 2, r.top, r.height]; })()"
        )
        x, top, height = box
        browser.drag((x, top + 2), (x, top + height * 0.3))
        shown = visible_rows(browser)
        ids = [r.id for r in comparison.runs]
        accuracy = dict(zip(ids, comparison.metrics["train.accuracy"], strict=True))
        cut = min(accuracy[i] for i in shown)
        hint = browser.evaluate("document.getElementById('zt-pc-hint').textContent")
        expected = (True, True, True)
        actual = (
            0 < len(shown) < 12,
            all(a < cut for i, a in accuracy.items() if i not in shown),
            hint.startswith(f"{len(shown)} of 12 runs"),
        )
        assert expected == actual
        browser.click("#zt-clear")
        assert len(visible_rows(browser)) == 12

    def test_policy_stops_markup_that_got_past_escaping(self, browser, tmp_path):
        """Were a value ever written as markup, the page's CSP would keep it from running.

        The escaping is bypassed by hand here: an inline script, an event
        handler and an image are pasted into the page's body.
        """
        page = render_comparison_html(run_sweep())
        injected = (
            "<script>window.__xss = 'inline'</script>"
            "<img src=x onerror=\"window.__xss = 'handler'\">"
            "<img src='http://127.0.0.1:9/beacon'>"
        )
        path = tmp_path / "report.html"
        path.write_text(page.replace("<main>", injected + "<main>", 1), encoding="utf-8")
        browser.requests.clear()
        browser.blocked.clear()
        browser.open(path.resolve().as_uri())
        found = browser.evaluate(
            "({ready: window.ztReady === true,"
            " xss: window.__xss === undefined ? null : window.__xss})"
        )
        others = [url for url in browser.requests if url != path.resolve().as_uri()]
        expected = ({"ready": True, "xss": None}, 2, sorted(others))
        assert expected == (found, len(others), sorted(browser.blocked))

    def test_hostile_names_and_values_are_text(self, browser, tmp_path):
        """HTML in names and values shows as text, runs nothing and loads nothing."""
        hostile(value=HOSTILE)
        hostile(value="</script><img src=x onerror=\"window.__xss='value'\">")
        open_report(browser, tmp_path / "report.html", zt.compare_runs())
        found = browser.evaluate(
            "({xss: window.__xss === undefined ? null : window.__xss,"
            " cells: [...document.querySelectorAll('#zt-table tbody td')].map((td) =>"
            "   td.textContent),"
            " heads: [...document.querySelectorAll('#zt-table thead button')].map((b) =>"
            "   b.title),"
            " summary: document.querySelector('.zt-summary').textContent,"
            " images: document.images.length})"
        )
        expected = (None, [], [], True, True, True, True, 0)
        actual = (
            found["xss"],
            browser.dialogs,
            browser.errors,
            HOSTILE in found["cells"],
            "<svg onload=\"window.__xss='metric'\">" in "".join(found["heads"]),
            "<script>window.__xss='pipeline'</script>" in found["summary"],
            browser.requests == [tmp_path.joinpath("report.html").as_uri()],
            found["images"],
        )
        assert expected == actual

    def test_tags_and_note(self, browser, tmp_path):
        """Tags and the note have a column of their own, shown as text, HTML and all."""
        first = sweep(lr=0.01)
        second = sweep(lr=0.1)
        first.tag(data="v2", owner=HOSTILE)
        first.note(f"tried {HOSTILE}\nsecond line")
        open_report(browser, tmp_path / "report.html", zt.compare_runs("sweep"))
        found = browser.evaluate(
            "({heads: [...document.querySelectorAll('#zt-table thead tr.zt-names button')]"
            "   .map((b) => b.dataset.sort),"
            " cells: Object.fromEntries([...document.querySelectorAll('#zt-table tbody tr')]"
            "   .map((tr) => [tr.cells[0].title, [tr.querySelector('td.tags').textContent,"
            "   tr.querySelector('td.tags').title]]))})"
        )
        expected = {
            first.id: [
                f"data=v2owner={HOSTILE}\u270e " + truncate(f"tried {HOSTILE}", 28),
                f"data=v2\nowner={HOSTILE}\ntried {HOSTILE}\nsecond line",
            ],
            second.id: ["", ""],
        }
        assert ("tags" in found["heads"], expected, []) == (
            True,
            found["cells"],
            browser.dialogs,
        )

    def test_shared_tags_with_the_constants(self, browser, tmp_path):
        """A tag every run has is listed with the same-valued params, not as a column."""
        for run in (sweep(lr=0.01), sweep(lr=0.1)):
            run.tag(team="vision")
        open_report(browser, tmp_path / "report.html", zt.compare_runs("sweep"))
        found = browser.evaluate(
            "({tags: document.querySelectorAll('#zt-table td.tags').length,"
            " same: document.getElementById('zt-constants').textContent})"
        )
        assert (found["tags"], "tag team=vision" in found["same"]) == (0, True)

    def test_non_ascii_text(self, browser, tmp_path):
        """Non-ASCII values and titles reach the page as written, lone surrogates included."""
        sweep(lr=0.1, note="na\u00efve \u2603 \udc80")
        sweep(lr=0.2, note="x")
        open_report(browser, tmp_path / "r.html", zt.compare_runs("sweep"), title="\u00e9t\u00e9")
        found = browser.evaluate(
            "({title: document.querySelector('h1').textContent,"
            " cells: [...document.querySelectorAll('#zt-table tbody td')].map((td) =>"
            "   td.textContent)})"
        )
        expected = ("\u00e9t\u00e9", True)
        assert expected == (found["title"], "na\u00efve \u2603 \udc80" in found["cells"])

    def test_no_runs(self, browser, tmp_path):
        """A comparison of no runs is a page that says so."""
        open_report(browser, tmp_path / "r.html", zt.compare_runs())
        found = browser.evaluate(
            "({title: document.querySelector('h1').textContent,"
            " chart: document.getElementById('zt-pc').textContent,"
            " rows: document.querySelectorAll('#zt-table tbody tr').length})"
        )
        expected = {"title": "No runs", "chart": "No runs to compare.", "rows": 0}
        assert expected == found

    def test_pipelines_union_with_blanks(self, browser, tmp_path):
        """Runs of two pipelines: every param in the table, a dash where a run has none."""
        sweep(lr=0.01)
        sweep(lr=0.1)
        other(kind="b")
        other(kind="c")
        open_report(browser, tmp_path / "report.html", zt.compare_runs())
        table = browser.evaluate(
            "({heads: [...document.querySelectorAll('#zt-table thead tr.zt-names button')]"
            "   .map((b) => b.dataset.key || b.dataset.sort),"
            " missing: [...document.querySelectorAll('#zt-table tbody tr')].map((tr) =>"
            "   tr.querySelectorAll('td.miss').length)})"
        )
        heads = table["heads"]
        expected = (True, True, True, [True] * 4)
        actual = (
            "pipeline" in heads,
            {"pipeline.kind", "pipeline.lr", "load.n_rows"} <= set(heads),
            "score.accuracy" in heads and "train.accuracy" in heads,
            [n > 0 for n in table["missing"]],
        )
        assert expected == actual

    def test_pipelines_chart_axes_tell_runs_apart(self, browser, tmp_path):
        """Axes only for what takes two values or more; colour by the metric that varies."""
        sweep(lr=0.01)
        sweep(lr=0.1)
        other(kind="b")
        other(kind="c")
        open_report(browser, tmp_path / "report.html", zt.compare_runs())
        axes = browser.evaluate(
            "[...document.querySelectorAll('#zt-pc-svg g.ax')].map((g) => g.dataset.col)"
        )
        expected = ["pipeline.kind", "pipeline.lr", "train.loss", "train.accuracy"]
        assert expected == axes

    def test_no_metrics(self, browser, tmp_path):
        """Runs without metrics: the chart area says so, the table still lists them."""
        silent(size=1)
        silent(size=2)
        open_report(browser, tmp_path / "report.html", zt.compare_runs())
        state = browser.evaluate(
            "({chart: document.getElementById('zt-pc').textContent,"
            " svg: document.querySelectorAll('#zt-pc svg').length,"
            " rows: document.querySelectorAll('#zt-table tbody tr').length})"
        )
        expected = (True, 0, 2)
        actual = ("No numeric metrics were logged" in state["chart"], state["svg"], state["rows"])
        assert expected == actual

    def test_nan_and_inf_shown_not_plotted(self, browser, tmp_path):
        """NaN and inf metrics read as such in the table and are left out of the chart."""
        for which in range(len(ODD_LOSSES)):
            odd(which=which)
        comparison = zt.compare_runs()
        open_report(browser, tmp_path / "report.html", comparison)
        state = browser.evaluate(
            "({cells: [...document.querySelectorAll('#zt-table td.nonfinite')]"
            "   .map((td) => td.textContent).sort(),"
            " vertices: Object.fromEntries("
            "   [...document.querySelectorAll('#zt-pc-svg path.pc-line')].map((p) =>"
            "   [p.dataset.run, (p.getAttribute('d').match(/[ML]/g) || []).length])),"
            " note: document.querySelector('#zt-scatter h3 small').textContent})"
        )
        values = comparison.metrics["odd_metric.loss"]
        # a vertex on the param axis for every run, on the metric axis only for numbers
        vertices = {str(i): 2 if math.isfinite(v) else 1 for i, v in enumerate(values)}
        expected = (["NaN", "inf"], vertices, True)
        actual = (
            state["cells"],
            state["vertices"],
            "2 runs with NaN/inf not plotted" in state["note"],
        )
        assert expected == actual

    def test_long_string_truncated_with_full_title(self, browser, tmp_path):
        """A 10,000-character value is cut in its cell; its title holds all of it."""
        long = "abc" * 3333 + "d"
        sweep(lr=0.01, note=long)
        sweep(lr=0.02, note="short")
        open_report(browser, tmp_path / "report.html", zt.compare_runs("sweep"))
        cell = browser.evaluate(
            "(() => { const td = [...document.querySelectorAll('#zt-table tbody td')]"
            ".find((td) => td.title.length === 10000); return [td.textContent, td.title]; })()"
        )
        expected = (long[:47] + "\u2026", long)
        assert expected == tuple(cell)

    def test_js_formats_numbers_like_python(self, browser, tmp_path):
        """The page's number formatting and :func:`format_number` agree."""
        open_report(browser, tmp_path / "report.html", run_sweep())
        values = [
            0,
            1,
            2.0,
            12345,
            123456,
            1234567,
            0.93456,
            0.001,
            0.00099999,
            1e-5,
            1.5e-5,
            123.456,
            12345.67,
            9999.6,
            9.99996,
            -12344.5,
            1.0625,
            3.14159e10,
            0.1 + 0.2,
            1e300,
            5e-324,
            -0.5,
            0.045,
            2.5e-4,
            99999.5,
            0.3333333333,
        ]
        shown = browser.evaluate(f"{json.dumps(values)}.map((v) => window.ztFormat(v))")
        assert [format_number(v) for v in values] == shown

    def test_js_formats_durations_like_python(self, browser, tmp_path):
        """The page's durations and :func:`format_duration` agree."""
        open_report(browser, tmp_path / "report.html", run_sweep())
        values = [0, 1e-8, 2.5e-5, 0.0004, 0.057, 0.1234, 0.9995, 1, 4.25, 9.96, 12.34, 59.9]
        values += [60, 245, 3599.9, 3600, 7620, 86399, 86400, 273600, 1e7]
        shown = browser.evaluate(f"{json.dumps(values)}.map((v) => window.ztDuration(v))")
        assert [format_duration(v) for v in values] == shown

    def test_thousand_runs(self, browser, tmp_path):
        """1,000 runs x 10 params x 3 metrics: at most 2 MB; the table grows as it is scrolled.

        The comparison is made of :class:`zentrack.Run` objects directly, as
        recording 1,000 runs would take a minute; the build time is printed
        here and measured in ``benchmarks/bench_report.py``.
        """
        comparison = synthetic_comparison(1000)
        path = open_report(browser, tmp_path / "report.html", comparison)
        count_rows = "document.querySelectorAll('#zt-table tbody tr').length"
        state = browser.evaluate(
            f"({{rows: {count_rows},"
            " lines: document.querySelectorAll('#zt-pc-svg path.pc-line').length,"
            " scatters: document.querySelectorAll('#zt-scatter svg').length,"
            " ms: window.ztBuildMs})"
        )
        browser.evaluate(
            "(() => { const w = document.querySelector('.zt-table-wrap');"
            " w.scrollTop = w.scrollHeight; w.dispatchEvent(new Event('scroll')); })()"
        )
        scrolled = browser.evaluate(count_rows)
        browser.evaluate("document.getElementById('zt-show-all').click()")
        size = path.stat().st_size
        print(f"1,000 runs: {size / 1e6:.2f} MB, page built in {state['ms']:.0f} ms")
        expected = {
            "first rows": 150,
            "after a scroll": 300,
            "after show all": 1000,
            "lines": 1000,
            "scatters": 3 * 10,
            "size ok": True,
            "errors": [],
        }
        actual = {
            "first rows": state["rows"],
            "after a scroll": scrolled,
            "after show all": browser.evaluate(count_rows),
            "lines": state["lines"],
            "scatters": state["scatters"],
            "size ok": size <= 2_000_000,
            "errors": browser.errors,
        }
        assert expected == actual


def best_titles(comparison: zt.Comparison, **pick: Any) -> list[str]:
    """The titles of the cells marked best: ``pick`` says min or max per metric (ties all)."""
    titles = []
    for name, choose in pick.items():
        values = comparison.metrics[f"train.{name}"]
        best = choose(values)
        titles += [f"best {name}: {best}"] * values.count(best)
    return sorted(titles)


def synthetic_comparison(count: int) -> zt.Comparison:
    """``count`` runs of a 10-param sweep with 3 metrics, as a :class:`zentrack.Comparison`."""
    optimizers = ("adam", "sgd", "rmsprop", "adamw")
    runs = []
    params: dict[str, list[Any]] = {}
    metrics: dict[str, list[Any]] = {}
    for i in range(count):
        started = 1_700_000_000.0 + 60.0 * i
        runs.append(
            zt.Run(
                id=f"20231114T{i:06d}-{i * 2654435761 % 2**32:08x}",
                pipeline="sweep",
                state="COMPLETE" if i % 17 else "FAILED",
                steps=[],
                params={},
                config_path=None,
                started=started,
                ended=started + 30.0 + i % 50,
            )
        )
        row = {
            "train.lr": 10 ** -(1 + (i % 7) / 2),
            "train.depth": 2 + i % 9,
            "train.optimizer": optimizers[i % 4],
            "train.dropout": round((i % 5) * 0.1, 1),
            "train.batch_size": 2 ** (4 + i % 4),
            "train.weight_decay": 10 ** -(2 + i % 4),
            "train.warmup": i % 3 * 100,
            "train.seed": i,
            "data.augment": bool(i % 2),
            "data.fraction": round(0.5 + (i % 6) / 10, 2),
        }
        for key, value in row.items():
            params.setdefault(key, []).append(value)
        accuracy = 0.8 + ((i * 7919) % 1000) / 6000
        for key, value in {
            "evaluate.accuracy": accuracy,
            "evaluate.loss": 1.5 - accuracy,
            "train.fit_time": 10 + (i * 31) % 90 + 0.123,
        }.items():
            metrics.setdefault(key, []).append(value)
    return zt.Comparison(runs=runs, params=params, metrics=metrics)
