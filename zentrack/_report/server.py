"""``zentrack ui``: a local, read-only web viewer of one store, on the standard library.

Three pages, all generated (nothing is ever read from the disk and served,
so there is no path to traverse): ``/`` the runs list with its filters,
``/run?id=RUN`` one run, ``/compare?run=A&run=B`` (or the runs list's
filters) the comparison report of :mod:`zentrack._report.html`.

What keeps it safe to leave running:

* It binds to 127.0.0.1 unless told otherwise, and answers only requests
  whose ``Host`` names the address it listens on (``localhost``,
  ``127.0.0.1``, ``[::1]`` with its port): a web page elsewhere cannot reach
  it through DNS rebinding.
* It only reads: GET and HEAD; any other method is 405 with ``Allow``.
* Every page escapes what it shows and carries a Content-Security-Policy
  allowing only its own inline script and stylesheet (by digest), no
  request anywhere, no framing; ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store`` too.
* A run's config file is shown only if it is a regular file (not a link)
  of at most 1 MiB, named like the configs zentrack writes and holding that
  run's id: the store names the path, and the store may be someone else's.

Reads go through one lock (one MLMD connection, used by one request at a
time); before reading, records waiting in journals are written, at most once
a second and without waiting for another writer's lock.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import shlex
import stat
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from zentrack._record.drain import drain
from zentrack._record.tracker import Tracker
from zentrack._report import assets, pages
from zentrack._report.html import render_comparison_html
from zentrack._runs.pipeline import Run, config_file_stem
from zentrack._runs.query import Comparison, compare_runs, read_run, read_runs, run_matcher
from zentrack.exceptions import StoreError

#: Largest config file shown on a run's page.
MAX_CONFIG: Final = 1 << 20
#: Seconds between two flushes of waiting records before a read.
REFRESH: Final = 1.0
#: Seconds between two looks for runs whose process died (every run is read).
RECONCILE: Final = 30.0
#: Seconds a connection may stay idle (a stalled client does not hold a thread forever).
IDLE: Final = 30
_LOOPBACK: Final = ("127.0.0.1", "localhost", "[::1]")
_ANY_ADDRESS: Final = ("0.0.0.0", "::", "")
_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

ParseValue = Callable[[str], Any]


class Viewer:
    """What the pages show, read from one store, one request at a time.

    Args:
        tracker: the store's tracker (``zt.init(store)``).
        parse_value: reads a ``where`` condition's value (the command line's grammar).
    """

    def __init__(self, tracker: Tracker, *, parse_value: ParseValue) -> None:
        self.tracker = tracker
        self.parse_value = parse_value
        self.name = tracker.location.display
        self._lock = threading.Lock()
        self._refreshed = -REFRESH
        self._reconciled = -RECONCILE

    def _refresh(self) -> None:
        """Write what waits in the journals (so new runs show), never waiting for the lock.

        Runs whose process died are marked FAILED at most every
        :data:`RECONCILE` seconds: that looks at every run, so not on every page.
        """
        now = time.monotonic()
        if now - self._refreshed < REFRESH:
            return
        self._refreshed = now
        reconcile = now - self._reconciled >= RECONCILE
        location = self.tracker.location
        if location.journal_dir is None:
            return
        with contextlib.suppress(StoreError):  # busy or read-only: show what is stored
            drain(location, self.tracker.store, reconcile=reconcile, timeout=0.0)
            if reconcile:
                self._reconciled = now

    # -- pages -----------------------------------------------------------------------------

    def runs_page(self, query: dict[str, list[str]]) -> pages.Page:
        filters = _filters(query)
        try:
            test = self._conditions(filters)
        except ValueError as exc:
            return pages.runs_page(
                [], total=0, filters=filters, pipelines=self._pipelines(), store=self.name,
                error=str(exc),
            )
        with self._lock:
            self._refresh()
            found = self._matching(filters, test)
            shown = found if not filters.limit else found[: filters.limit]
            for run in shown:
                run.steps  # noqa: B018 - read them now, under the lock
            pipelines = self._pipelines_locked()
        return pages.runs_page(
            shown, total=len(found), filters=filters, pipelines=pipelines, store=self.name
        )

    def run_page(self, query: dict[str, list[str]]) -> pages.Page:
        run_id = _one(query, "id")
        if not run_id:
            return pages.error_page(400, "Name a run: /run?id=RUN_ID.", store=self.name)
        with self._lock:
            self._refresh()
            try:
                run = read_run(self.tracker.store, run_id)
            except LookupError as exc:
                return pages.error_page(404, str(exc), store=self.name)
            cached = [r.cached_execution_id for r in run.steps if r.cached_execution_id]
            originals = {
                r.execution_id: r
                for r in self.tracker.store.records_by_ids(cached)
                if r.execution_id is not None
            }
        return pages.run_page(
            run, originals=originals, config=config_text(run), store=self.name
        )

    def compare_page(self, query: dict[str, list[str]]) -> pages.Page:
        ids = [i for i in query.get("run", []) if i]
        filters = _filters(query)
        try:
            test = self._conditions(filters)
        except ValueError as exc:
            return pages.error_page(400, str(exc), store=self.name)
        with self._lock:
            self._refresh()
            try:
                chosen = (
                    [read_run(self.tracker.store, i) for i in dict.fromkeys(ids)]
                    if ids
                    else self._matching(filters, test)
                )
            except LookupError as exc:
                return pages.error_page(404, str(exc), store=self.name)
            for run in chosen:
                run.steps  # noqa: B018 - read them now, under the lock
        comparison: Comparison = compare_runs(runs=chosen)
        text = render_comparison_html(comparison, home="/", run_link="/run?id=")
        return pages.Page(text.encode("ascii"), pages.policy_of(assets.REPORT_POLICY))

    # -- reading ---------------------------------------------------------------------------

    def _conditions(self, filters: pages.Filters) -> Callable[[Run[Any]], bool]:
        """The ``where`` and ``tag`` filters as one test of a run (ValueError if malformed)."""
        try:
            words = shlex.split(filters.where)
        except ValueError as exc:
            raise ValueError(f"The param or metric filter cannot be read ({exc}).") from None
        # a word without "=" belongs to the value before it: lr__in=[0.1, 0.2]
        merged: list[str] = []
        for word in words:
            if merged and "=" not in word:
                merged[-1] += " " + word
            else:
                merged.append(word)
        conditions: dict[str, Any] = {}
        for word in merged:
            key, sep, text = word.partition("=")
            if not sep or not key:
                raise ValueError(
                    f"Filter {word!r} is not name[__op]=value; write e.g. lr__lt=0.05 or "
                    "accuracy__ge=0.9 (ops: eq ne lt le gt ge in contains)."
                )
            try:
                conditions[key] = self.parse_value(text)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"Filter {word!r}: {exc}") from None
        test = run_matcher(conditions)
        tags = {}
        for word in filters.tag.split():
            key, sep, value = word.partition("=")
            if not sep or not key:
                raise ValueError(f"Tag filter {word!r} is not key=value; write e.g. team=vision.")
            tags[key] = value
        return lambda run: all(run.tags.get(k) == v for k, v in tags.items()) and test(run)

    def _matching(
        self, filters: pages.Filters, test: Callable[[Run[Any]], bool]
    ) -> list[Run[Any]]:
        runs = read_runs(
            self.tracker.store, filters.pipeline or None, state=filters.state or None
        )
        return [run for run in runs if test(run)]

    def _pipelines(self) -> list[str]:
        with self._lock:
            return self._pipelines_locked()

    def _pipelines_locked(self) -> list[str]:
        from zentrack._store.schema import PIPELINE_CONTEXT

        contexts = self.tracker.store.mlmd.get_contexts_by_type(PIPELINE_CONTEXT)
        return sorted(c.name for c in contexts)


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0].strip()


def _filters(query: dict[str, list[str]]) -> pages.Filters:
    limit_text = _one(query, "limit")
    limit = int(limit_text) if limit_text.isdigit() else pages.LIMIT
    return pages.Filters(
        pipeline=_one(query, "pipeline"),
        state=_one(query, "state").upper(),
        where=_one(query, "where"),
        tag=_one(query, "tag"),
        limit=limit,
    )


def config_text(run: Run[Any]) -> tuple[str | None, str]:
    """The run's config file's text, or ``None`` and why it is not shown.

    The path comes from the store: only a regular file (not followed
    through a link) of at most :data:`MAX_CONFIG` bytes, with the name
    zentrack gives a run's config and a ``run_id:`` line naming this run,
    is read.
    """
    path = run.config_path
    if path is None:
        return None, "This run wrote no config."
    expected = f"{config_file_stem(run.pipeline)}-{run.id}.yaml"
    if Path(path).name != expected:
        return None, f"Not shown: {str(path)!r} is not named like this run's config ({expected})."
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return None, f"Not shown: {str(path)!r} cannot be opened ({exc.strerror or exc})."
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CONFIG:
            return None, f"Not shown: {str(path)!r} is not a regular file of at most 1 MiB."
        data = stream.read(MAX_CONFIG + 1)
    text = data.decode("utf-8", errors="replace")
    if not re.search(rf"^\s*run_id:\s*['\"]?{re.escape(run.id)}['\"]?\s*$", text, re.MULTILINE):
        return None, f"Not shown: {str(path)!r} does not name this run in its run_id."
    return text, ""


# -- HTTP -----------------------------------------------------------------------------------------


class ViewerServer(http.server.ThreadingHTTPServer):
    """The HTTP server: one thread per request, threads that never keep the process alive."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], viewer: Viewer) -> None:
        self.viewer = viewer
        super().__init__(address, Handler)
        host, port = self.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        names = {*_LOOPBACK, shown} if host not in _ANY_ADDRESS else set()
        #: ``Host`` headers accepted (empty: any, when listening on every address).
        self.allowed_hosts = {f"{name}:{self.port}" for name in names}
        self.url = f"http://{'127.0.0.1' if self.host in _ANY_ADDRESS else shown}:{self.port}/"


class Handler(http.server.BaseHTTPRequestHandler):
    """Answers GET and HEAD with generated pages; anything else with 405."""

    server: ViewerServer
    server_version = "zentrack-ui"
    timeout = IDLE
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def __getattr__(self, name: str) -> Any:
        """Every other method (POST, PUT, DELETE, ...) is refused: the viewer only reads."""
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def _refuse(self) -> None:
        self.close_connection = True  # any body it sent is not read: end the connection
        page = pages.error_page(
            405, f"{self.command} is not allowed: the viewer only reads.", store=""
        )
        self._send(page, send_body=True, extra={"Allow": "GET, HEAD"})

    def _answer(self, *, send_body: bool) -> None:
        viewer = self.server.viewer
        allowed = self.server.allowed_hosts
        if allowed and self.headers.get("Host", "") not in allowed:
            message = "Unexpected Host header: open the URL that zentrack ui printed."
            self._send(pages.error_page(400, message, store=""), send_body=send_body)
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, max_num_fields=500)
        routes = {"/": viewer.runs_page, "/run": viewer.run_page, "/compare": viewer.compare_page}
        route = routes.get(url.path)
        if route is None:
            page = pages.error_page(404, "There is no such page here.", store=viewer.name)
        else:
            try:
                page = route(query)
            except Exception as exc:  # a page must answer, whatever the store holds
                traceback.print_exc()
                message = f"Reading the store failed: {type(exc).__name__}: {exc}"
                page = pages.error_page(500, message[:2000], store=viewer.name)
        self._send(page, send_body=send_body)

    def _send(
        self, page: pages.Page, *, send_body: bool, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(page.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page.body)))
        self.send_header("Content-Security-Policy", page.policy)
        for name, value in {**_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(page.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows the URL, not a line per request."""


def start(
    tracker: Tracker, *, host: str = "127.0.0.1", port: int = 0, parse_value: ParseValue
) -> ViewerServer:
    """Bind the viewer (``port`` 0: a free one) and return the server, not yet serving.

    Call ``serve_forever()`` on it (in a thread, for tests); ``shutdown()`` stops it.
    """
    return ViewerServer((host, port), Viewer(tracker, parse_value=parse_value))
