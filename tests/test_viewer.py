"""Tests for zentrack._report.server and .pages: ``zentrack ui``, over real HTTP and in Chromium.

The viewer runs in a thread of the test process on a free port of
127.0.0.1, reading the test's SQLite store; requests are made with
``http.client`` (any method, any Host header) and pages are opened in
headless Chromium (:mod:`tests.browser`) for the DOM, clicks and screenshots.
Browser tests skip where Chromium is missing.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import zentrack as zt
from tests.browser import Browser, browser_for_tests
from zentrack._cli.values import parse_value
from zentrack._record import tracker as _tracker
from zentrack._report.server import ViewerServer, config_text, start

HOSTILE = "<script>alert(1)</script>"
XSS = "<img src=x onerror=\"window.__xss='{}'\">"


@zt.step
def prepare(n: int = 3) -> list[int]:
    """A first step, cached on the second run with the same ``n``."""
    return list(range(n))


@zt.step(params=["lr", "note"])
def fit(data: list[int], *, lr: float = 0.1, note: str = "") -> float:
    """A step logging accuracy from ``lr``."""
    zt.log_metrics(accuracy=round(0.95 - abs(lr - 0.05), 6), loss=round(lr, 6))
    return lr


@zt.pipeline(tags={"team": "vision"})
def sweep(lr: float = 0.1, note: str = "") -> float:
    """prepare then fit."""
    return fit(prepare(3), lr=lr, note=note)


@zt.step
def other_step(kind: str = "a") -> str:
    """The step of a second pipeline."""
    return kind


@zt.pipeline(name=XSS.format("pipeline"))
def other(kind: str = "a") -> str:
    """A pipeline whose name is HTML."""
    return other_step(kind=kind)


@pytest.fixture
def viewer() -> Iterator[ViewerServer]:
    """The viewer of the test's store, serving from a thread; shut down afterwards."""
    server = start(_tracker.active(), port=0, parse_value=parse_value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def request(
    server: ViewerServer,
    path: str,
    *,
    method: str = "GET",
    host: str | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], str]:
    """``(status, headers, text)`` of one request to the viewer."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True)
        connection.putheader("Host", f"127.0.0.1:{server.port}" if host is None else host)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("ascii")
    finally:
        connection.close()


def run_ids(page: str) -> list[str]:
    """The runs a list page shows, top to bottom (its checkboxes' values)."""
    import html

    return [html.unescape(v) for v in re.findall(r'name="run" value="([^"]*)"', page)]


def report_runs(page: str) -> list[str]:
    """The run ids in a compare page's data."""
    match = re.search(r'<script type="application/json" id="zt-data">(.*?)</script>', page, re.S)
    assert match is not None
    return [run["id"] for run in json.loads(match.group(1))["runs"]]


def q(**values: Any) -> str:
    return urllib.parse.urlencode(values, doseq=True)


class TestServing:
    """How the viewer listens and what it answers."""

    def test_loopback_and_free_port(self, viewer):
        """Bound to 127.0.0.1 on a port the system picked; the URL says so."""
        expected = ("127.0.0.1", True, f"http://127.0.0.1:{viewer.port}/")
        assert expected == (viewer.host, viewer.port > 0, viewer.url)

    def test_security_headers_on_every_answer(self, viewer):
        """Pages, errors and refusals all carry the CSP, nosniff and no-referrer."""
        sweep()
        for path, method in (("/", "GET"), ("/nothing", "GET"), ("/", "POST")):
            _, headers, _ = request(viewer, path, method=method)
            policy = headers["Content-Security-Policy"]
            expected = (True, True, True, "nosniff", "no-referrer", "text/html; charset=utf-8")
            actual = (
                policy.startswith("default-src 'none'; script-src 'sha256-"),
                "frame-ancestors 'none'" in policy,
                "unsafe-inline" not in policy,
                headers["X-Content-Type-Options"],
                headers["Referrer-Policy"],
                headers["Content-Type"],
            )
            assert expected == actual, path

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
    def test_refuses_writes(self, viewer, method):
        """Anything but GET and HEAD is 405 with ``Allow: GET, HEAD``; the store is untouched."""
        sweep()
        before = [r.id for r in zt.runs()]
        status, headers, page = request(viewer, "/", method=method, body=b"id=x")
        expected = (405, "GET, HEAD", True, before)
        after = [r.id for r in zt.runs()]
        actual = (status, headers["Allow"], "the viewer only reads" in page, after)
        assert expected == actual

    def test_head(self, viewer):
        """HEAD: the GET's status and length, no body."""
        sweep()
        _, get_headers, _ = request(viewer, "/")
        status, headers, body = request(viewer, "/", method="HEAD")
        expected = (200, get_headers["Content-Length"], "")
        assert expected == (status, headers["Content-Length"], body)

    @pytest.mark.parametrize(
        "path",
        [
            "/static/report.js",
            "/../../../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/favicon.ico",
            "/run/../compare",
            "//etc/passwd",
        ],
    )
    def test_serves_no_files(self, viewer, path):
        """Only the generated pages exist: file-like paths are 404."""
        status, _, page = request(viewer, path)
        expected = (404, False)
        assert expected == (status, "root:" in page)

    @pytest.mark.parametrize("host", ["evil.example", "evil.example:1", "127.0.0.1:1", ""])
    def test_foreign_host_refused(self, viewer, host):
        """A Host header other than the viewer's own address (DNS rebinding) is refused."""
        sweep()
        status, _, page = request(viewer, "/", host=host)
        expected = (400, [])
        assert expected == (status, run_ids(page))

    def test_localhost_names(self, viewer):
        """``localhost`` and ``[::1]`` with the port are the same viewer."""
        sweep()
        names = ("localhost", "[::1]")
        answers = [request(viewer, "/", host=f"{name}:{viewer.port}")[0] for name in names]
        assert answers == [200, 200]


class TestRunsList:
    """``/``: the runs list and its filters."""

    def test_one_row_per_run_newest_first(self, viewer):
        """Every run, newest first, with its checkbox and link."""
        first, second = sweep(lr=0.1), sweep(lr=0.01)
        status, _, page = request(viewer, "/")
        expected = (200, [second.id, first.id], True)
        link = f'href="/run?{q(id=first.id)}"'
        assert expected == (status, run_ids(page), link in page)

    def test_filters(self, viewer):
        """By pipeline, state, param or metric condition (find's grammar), and tag."""
        low, high = sweep(lr=0.01), sweep(lr=0.5)
        odd = other(kind="b")
        high.tag(stage="prod")
        pipelines = [
            run_ids(request(viewer, "/?" + q(pipeline="sweep"))[2]),
            run_ids(request(viewer, "/?" + q(pipeline=XSS.format("pipeline")))[2]),
        ]
        conditions = [
            run_ids(request(viewer, "/?" + q(where=where))[2])
            for where in (
                "lr__lt=0.05", "accuracy__ge=0.9", "fit.lr=0.5", "kind=b", "lr__in=[0.5, 9]"
            )
        ]
        tagged = run_ids(request(viewer, "/?" + q(tag="stage=prod"))[2])
        states = run_ids(request(viewer, "/?" + q(state="failed"))[2])
        expected = (
            [[high.id, low.id], [odd.id]],
            [[low.id], [low.id], [high.id], [odd.id], [high.id]],
            [high.id],
            [],
        )
        assert expected == (pipelines, conditions, tagged, states)

    @pytest.mark.parametrize(
        ("where", "message"),
        [
            ("lr__between=1", "unknown operator &#x27;between&#x27;"),
            ("=1", "is not name[__op]=value"),
            ("lr='unclosed", "cannot be read"),
            ("lr=None", "Python spelling"),
        ],
    )
    def test_bad_filter(self, viewer, where, message):
        """A malformed condition is a 400 page saying what is wrong, the form kept."""
        sweep()
        status, _, page = request(viewer, "/?" + q(where=where))
        expected = (400, True, True)
        assert expected == (status, message in page, 'name="where"' in page)

    def test_limit(self, viewer):
        """``limit`` shows the newest runs and a link to all of them."""
        runs = [sweep(lr=0.1 * i) for i in range(1, 4)]
        _, _, page = request(viewer, "/?limit=2")
        expected = ([runs[2].id, runs[1].id], True)
        assert expected == (run_ids(page), "2 of 3 runs" in page)


class TestRunPage:
    """``/run?id=``: one run."""

    def test_fields_steps_lineage_and_config(self, viewer):
        """Params, metrics, tags, note, steps; a CACHED step links to the run that made it."""
        first = sweep(lr=0.1)
        second = sweep(lr=0.2)
        second.note("second try")
        status, _, page = request(viewer, "/run?" + q(id=second.id[:-2]))
        original = next(r for r in first.steps if r.step == "prepare").execution_id
        anchor = f'href="/run?{q(id=first.id)}#exec-{original}"'.replace("&", "&amp;")
        expected = (200, True, True, True, True, True)
        actual = (
            status,
            f"<h1>{second.id}</h1>" in page,
            anchor in page,
            "second try" in page,
            f"run_id: {second.id}" in page,
            'id="v-steps"' in page and page.count("<tr id=\"exec-") == 2,
        )
        assert expected == actual

    @pytest.mark.parametrize("which", ["unknown", "ambiguous", "empty"])
    def test_not_found(self, viewer, which):
        """An unknown id or an ambiguous prefix is 404 saying so; no id is 400."""
        first, second = sweep(lr=0.1), sweep(lr=0.2)
        common = next(
            first.id[:n] for n in range(len(first.id), 0, -1) if second.id.startswith(first.id[:n])
        )
        run_id = {"unknown": "nope", "ambiguous": common, "empty": ""}[which]
        status, _, page = request(viewer, "/run?" + q(id=run_id))
        expected = {
            "unknown": (404, "No run"),
            "ambiguous": (404, "ambiguous"),
            "empty": (400, "Name a run"),
        }[which]
        assert expected == (status, expected[1] if expected[1] in page else page[-300:])


class TestConfigText:
    """A run's config is shown only when it is that run's config file."""

    def test_shown(self):
        """The config zentrack wrote for the run is shown."""
        run = zt.get_run(sweep().id)
        text, _ = config_text(run)
        assert text is not None and f"run_id: {run.id}" in text

    @pytest.mark.parametrize("case", ["symlink", "other file", "renamed", "missing", "fifo"])
    def test_refused(self, tmp_path, case):
        """A link, a file not naming the run, another name, nothing there, a FIFO: not shown."""
        import attrs

        run = zt.get_run(sweep().id)
        assert run.config_path is not None
        secret = tmp_path / "secret.txt"
        secret.write_text("root:x:0:0\n")
        path = Path(run.config_path)
        if case == "symlink":
            path.unlink()
            path.symlink_to(secret)
        elif case == "other file":
            path.write_text("pipeline:\n  run_id: someone-else\n")
        elif case == "renamed":
            path = path.with_name("elsewhere.yaml")
            Path(run.config_path).rename(path)
        elif case == "missing":
            path.unlink()
        else:
            path.unlink()
            os.mkfifo(path)
        text, why = config_text(attrs.evolve(run, config_path=path))
        expected = (None, True)
        assert expected == (text, why.startswith("Not shown") or why == "")


class TestComparePage:
    """``/compare``: the report for chosen runs."""

    def test_selected_runs(self, viewer):
        """``run=`` ids (prefixes too) pick the runs, in that order."""
        first, second, third = sweep(lr=0.1), sweep(lr=0.2), sweep(lr=0.3)
        status, headers, page = request(viewer, "/compare?" + q(run=[third.id, first.id[:-1]]))
        expected = (200, [third.id, first.id], True)
        policy = headers["Content-Security-Policy"]
        assert expected == (status, report_runs(page), "frame-ancestors 'none'" in policy)
        assert second.id not in report_runs(page)

    def test_filtered_runs(self, viewer):
        """Without ``run=``, the runs list's filters choose."""
        low, _ = sweep(lr=0.01), sweep(lr=0.5)
        other()
        _, _, page = request(viewer, "/compare?" + q(pipeline="sweep", where="lr__lt=0.1"))
        assert [low.id] == report_runs(page)

    def test_unknown_run(self, viewer):
        """An unknown run id is 404."""
        assert request(viewer, "/compare?run=nope")[0] == 404


class TestEscaping:
    """HTML in names and values reaches the pages as text."""

    def test_no_raw_markup(self, viewer):
        """Param values, tags, notes, step and pipeline names: never written as markup."""
        run = sweep(note=XSS.format("value"))
        run.tag(owner=HOSTILE)
        run.note(HOSTILE)
        odd = other(kind=HOSTILE)
        pages = [
            request(viewer, "/")[2],
            request(viewer, "/run?" + q(id=run.id))[2],
            request(viewer, "/run?" + q(id=odd.id))[2],
            request(viewer, "/?" + q(where=f"kind={HOSTILE}"))[2],
        ]
        raw = [p.count("<script>alert") + p.count("<img src=x") for p in pages]
        expected = ([0, 0, 0, 0], True)
        assert expected == (raw, "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1])


# -- in Chromium ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module's tests (skipped where there is none)."""
    with browser_for_tests(width=1400, height=900) as instance:
        yield instance


def open_page(browser: Browser, url: str) -> None:
    browser.dialogs.clear()
    browser.requests.clear()
    browser.errors.clear()
    browser.open(url)


def shown_runs(browser: Browser) -> list[str]:
    ids: list[str] = browser.evaluate(
        "[...document.querySelectorAll('#v-runs tbody tr')].map((tr) =>"
        " tr.querySelector('input[name=run]').value)"
    )
    return ids


class TestInBrowser:
    """The viewer's pages as Chromium shows them."""

    def test_list_sort_select_compare(self, browser, viewer, tmp_path):
        """One row per run; a header click sorts; two ticked runs open their comparison."""
        runs = [sweep(lr=lr) for lr in (0.3, 0.01, 0.1)]
        open_page(browser, viewer.url)
        browser.screenshot(tmp_path / "list.png")
        first = shown_runs(browser)
        browser.click('#v-runs thead button[data-col="8"]')  # metrics: accuracy=... first
        by_metrics = shown_runs(browser)
        browser.click('#v-runs thead button[data-col="4"]')  # started, oldest first
        by_start = shown_runs(browser)
        disabled = browser.evaluate("document.getElementById('v-compare-btn').disabled")
        for run in runs[:2]:
            browser.click(f'#v-runs input[value="{run.id}"]')
        label = browser.evaluate("document.getElementById('v-compare-btn').textContent")
        browser.click("#v-compare-btn")
        browser._wait_event("Page.loadEventFired")
        browser.evaluate("new Promise((r) => setTimeout(r, 200))")
        compared = browser.evaluate(
            "[...document.querySelectorAll('#zt-table tbody tr')].map((tr) => tr.cells[0].title)"
        )
        browser.screenshot(tmp_path / "compare.png")
        ids = [r.id for r in runs]
        accuracy = {r.id: r.steps[-1].metrics["accuracy"] for r in runs}
        expected = (
            ids[::-1],
            sorted(ids, key=lambda i: f"accuracy={accuracy[i]}"),
            ids,
            True,
            "Compare 2 selected",
            sorted(ids[:2]),
            [],
        )
        actual = (first, by_metrics, by_start, disabled, label, sorted(compared), browser.errors)
        assert expected == actual

    def test_run_page(self, browser, viewer, tmp_path):
        """The steps table and the lineage link of the CACHED step, which opens its run."""
        first = sweep(lr=0.1)
        second = sweep(lr=0.2)
        open_page(browser, viewer.url + "run?" + q(id=second.id))
        shot = browser.screenshot(tmp_path / "run.png", full_page=True)
        rows = browser.evaluate("document.querySelectorAll('#v-steps tbody tr').length")
        browser.click("#v-steps td.kv a")
        browser._wait_event("Page.loadEventFired")
        heading = browser.evaluate("document.querySelector('h1').textContent")
        expected = (2, first.id, True, [])
        assert expected == (rows, heading, len(shot) > 10_000, browser.errors)

    def test_hostile_values_do_not_run(self, browser, viewer):
        """Markup in values, tags, notes and names shows as text; nothing runs or loads."""
        run = sweep(note=XSS.format("value"))
        run.tag(owner=HOSTILE)
        run.note(XSS.format("note"))
        odd = other(kind=HOSTILE)
        origin = viewer.url.rstrip("/")
        seen = []
        paths = ("", "run?" + q(id=run.id), "run?" + q(id=odd.id))
        for path in (*paths, "compare?" + q(run=[run.id, odd.id])):
            open_page(browser, viewer.url + path)
            found = browser.evaluate(
                "({xss: window.__xss === undefined ? null : window.__xss,"
                " images: document.images.length, text: document.body.textContent})"
            )
            seen.append(
                (
                    found["xss"],
                    found["images"],
                    browser.dialogs,
                    browser.errors,
                    [u for u in browser.requests if not u.startswith(origin)],
                )
            )
        assert seen == [(None, 0, [], [], [])] * 4
