"""A small headless-Chromium driver for tests: the DevTools protocol over a pipe.

Chromium started with ``--remote-debugging-pipe`` reads DevTools commands
from its fd 3 and writes replies and events to its fd 4, each message one
JSON object ended by a NUL byte.  That is all a test needs to open a page,
run JavaScript in it, click and take a screenshot, with the standard library
only: no Playwright, no driver binary, no browser download, no port to pick.

The browser is spawned with :func:`os.posix_spawn`, whose file actions put
the two pipe ends exactly at fds 3 and 4 of the child.  Every JavaScript
dialog the page opens is recorded in :attr:`Browser.dialogs` and dismissed;
every request the page makes is recorded in :attr:`Browser.requests`
(and those its Content-Security-Policy stopped also in :attr:`Browser.blocked`);
uncaught exceptions in :attr:`Browser.errors`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

#: The flags every test browser gets (headless, nothing phoning home, a fresh profile).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)
#: Seconds any one DevTools command may take before the test fails.
COMMAND_TIMEOUT = 60.0


class BrowserUnavailable(RuntimeError):
    """No Chromium on this machine (tests skip; CI installs the ``chromium`` package)."""


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, died, or did not answer in time."""


def chromium_path() -> str | None:
    """The Chromium executable on ``$PATH`` (or ``$ZT_CHROMIUM``), if any."""
    explicit = os.environ.get("ZT_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium with one page, driven over the DevTools pipe.

    Use as a context manager; :meth:`close` ends the browser (by its pid) and
    removes its profile directory.
    """

    def __init__(self, *, width: int = 1280, height: int = 900) -> None:
        executable = chromium_path()
        if executable is None:
            where = os.environ.get("ZT_CHROMIUM")
            raise BrowserUnavailable(
                (f"ZT_CHROMIUM={where!r} is not an executable" if where else "No Chromium on PATH")
                + "; install the Debian package 'chromium' (or set ZT_CHROMIUM to the "
                "executable) to run the browser tests."
            )
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self._urls: dict[str, str] = {}
        self._profile = tempfile.mkdtemp(prefix="zt-chromium-")
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            self._pid = os.posix_spawn(
                executable,
                [executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0),
                    (os.POSIX_SPAWN_DUP2, devnull, 1),
                    (os.POSIX_SPAWN_DUP2, devnull, 2),
                    (os.POSIX_SPAWN_DUP2, to_child_r, 3),
                    (os.POSIX_SPAWN_DUP2, from_child_w, 4),
                ],
                setsid=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
            os.close(devnull)
        self._exited = False
        try:
            self._session = self._attach_page(width, height)
        except BaseException:
            self.close()
            raise

    # -- protocol -----------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self._session
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self._to_child, data)
            data = data[written:]
        return self._next_id

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer within the timeout.")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed its DevTools pipe (it exited or crashed).")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self._on_event(message)
        return message

    def _on_event(self, event: dict[str, Any]) -> None:
        method = event["method"]
        params = event.get("params", {})
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(str(params.get("message", "")))
            self._send("Page.handleJavaScriptDialog", {"accept": False})
        elif method == "Network.requestWillBeSent":
            url = str(params.get("request", {}).get("url", ""))
            self._urls[str(params.get("requestId"))] = url
            self.requests.append(url)
        elif method == "Network.loadingFailed" and params.get("blockedReason") == "csp":
            self.blocked.append(self._urls.get(str(params.get("requestId")), "?"))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            self.errors.append(str(exception.get("description") or details.get("text", "")))
        self._events.append(event)

    def command(
        self, method: str, params: dict[str, Any] | None = None, *, page: bool = True
    ) -> dict[str, Any]:
        """Send one DevTools command and return its result (events are recorded meanwhile)."""
        wanted = self._send(method, params, page=page)
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while True:
            message = self._read_message(deadline)
            if message.get("id") != wanted:
                continue
            if "error" in message:
                raise BrowserError(f"{method} failed: {message['error']}")
            result: dict[str, Any] = message.get("result", {})
            return result

    def _wait_event(self, method: str, timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self._events):
                if event["method"] == method:
                    del self._events[: index + 1]
                    return event
            self._events.clear()
            self._read_message(deadline)

    def _attach_page(self, width: int, height: int) -> str:
        targets = self.command("Target.getTargets", page=False)["targetInfos"]
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            target = pages[0]["targetId"]
        else:
            target = self.command("Target.createTarget", {"url": "about:blank"}, page=False)[
                "targetId"
            ]
        session: str = self.command(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, page=False
        )["sessionId"]
        self._session = session
        for domain in ("Page", "Runtime", "Network"):
            self.command(f"{domain}.enable")
        self.resize(width, height)
        return session

    # -- what tests use -----------------------------------------------------------------

    def resize(self, width: int, height: int) -> None:
        """Set the viewport size in CSS pixels (device scale 1)."""
        self.command(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def open(self, url: str, *, timeout: float = COMMAND_TIMEOUT) -> None:
        """Load ``url`` (``file://`` or ``http://``) and wait for its load event."""
        self._events.clear()
        result = self.command("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"Could not open {url!r}: {result['errorText']}.")
        self._wait_event("Page.loadEventFired", timeout)

    def evaluate(self, expression: str) -> Any:
        """Run JavaScript in the page and return its value, as JSON (promises awaited)."""
        result = self.command(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript failed: {text}")
        return result.get("result", {}).get("value")

    def click(self, selector: str) -> None:
        """Click the centre of the first element matching the CSS ``selector``."""
        box = self.evaluate(
            "(() => { const e = document.querySelector(" + json.dumps(selector) + ");"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"No element matches {selector!r}.")
        self.mouse(box[0], box[1], click=True)

    def mouse(self, x: float, y: float, *, click: bool = False) -> None:
        """Move the mouse to ``(x, y)`` (viewport pixels), and click there if asked."""
        point = {"x": x, "y": y}
        self.command("Input.dispatchMouseEvent", {"type": "mouseMoved", **point})
        if click:
            for kind in ("mousePressed", "mouseReleased"):
                self.command(
                    "Input.dispatchMouseEvent",
                    {"type": kind, "button": "left", "clickCount": 1, **point},
                )

    def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 5) -> None:
        """Press the left button at ``start``, move to ``end`` in ``steps``, release."""
        self.command(
            "Input.dispatchMouseEvent",
            {
                "type": "mousePressed",
                "button": "left",
                "clickCount": 1,
                "x": start[0],
                "y": start[1],
            },
        )
        for i in range(1, steps + 1):
            x = start[0] + (end[0] - start[0]) * i / steps
            y = start[1] + (end[1] - start[1]) * i / steps
            self.command(
                "Input.dispatchMouseEvent",
                {"type": "mouseMoved", "button": "left", "buttons": 1, "x": x, "y": y},
            )
        self.command(
            "Input.dispatchMouseEvent",
            {"type": "mouseReleased", "button": "left", "clickCount": 1, "x": end[0], "y": end[1]},
        )

    def screenshot(self, path: Path | str | None = None, *, full_page: bool = False) -> bytes:
        """A PNG of the viewport (or of the whole page); written to ``path`` if given."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        data = base64.b64decode(self.command("Page.captureScreenshot", params)["data"])
        if path is not None:
            Path(path).write_bytes(data)
        return data

    # -- lifetime -----------------------------------------------------------------------

    def close(self) -> None:
        """End the browser this object started and remove its profile."""
        if not self._exited:
            with contextlib.suppress(OSError, BrowserError):
                self._send("Browser.close", page=False)
            if not self._wait_exit(5.0):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._pid, signal.SIGKILL)
                self._wait_exit(5.0)
            for fd in (self._to_child, self._from_child):
                with contextlib.suppress(OSError):
                    os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(self._pid, os.WNOHANG)
            except ChildProcessError:
                pid = self._pid
            if pid == self._pid:
                self._exited = True
                return True
            time.sleep(0.05)
        return False

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


#: Set (to anything) where the browser tests must run: a missing Chromium then
#: fails them instead of skipping them (``.ci/run`` sets it).
REQUIRE_ENV = "ZT_REQUIRE_BROWSER"


def browser_for_tests(*, width: int = 1280, height: int = 900) -> Browser:
    """A :class:`Browser` for a test fixture; skips the tests where there is no Chromium.

    With ``$ZT_REQUIRE_BROWSER`` set, a missing Chromium is a failure instead.
    """
    import pytest

    try:
        return Browser(width=width, height=height)
    except BrowserUnavailable as error:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{error} (${REQUIRE_ENV} is set: the browser tests must run)")
        pytest.skip(str(error))
