"""A progress bar on stderr for long work, shown only to a person who is waiting.

Nothing is drawn unless stderr is a terminal and the work has already taken
:data:`DELAY` seconds, so piped output, CI logs and quick commands stay
clean.  ``tqdm`` draws the bar when it is installed (``pip install
zentrack[progress]``); without it one plain line is rewritten in place with
``\\r``, which every terminal understands.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Final, TextIO

#: Seconds of work before a bar appears.
DELAY: Final = 1.0
#: ``0`` turns the bars off; ``always`` draws them even when stderr is not a
#: terminal, without the delay (``plain``: the same, without tqdm), for tests
#: and screen recordings.
ENV_PROGRESS: Final = "ZENTRACK_PROGRESS"
_TICK: Final = 0.1


class Progress:
    """Counts work done; a ticker thread draws it once the delay has passed.

    Attributes:
        done: units of work finished so far (set by :meth:`advance`).
    """

    def __init__(self, description: str, total: int | None, stream: TextIO) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self._stream = stream
        self._stop = threading.Event()
        self._bar: Any = None
        self._drawn = False

    def advance(self, count: int = 1) -> None:
        """Record ``count`` more units done (cheap: the ticker draws)."""
        self.done += count

    def run(self, delay: float) -> None:
        """The ticker: wait out the delay, then redraw every tick until stopped."""
        if self._stop.wait(delay):
            return
        while True:
            self._draw()
            if self._stop.wait(_TICK):
                break
        self._draw()

    def _draw(self) -> None:
        tqdm = _tqdm()
        if tqdm is not None:
            if self._bar is None:
                self._bar = tqdm(
                    total=self.total, desc=self.description, file=self._stream, leave=False
                )
            self._bar.n = self.done
            self._bar.refresh()
            return
        elapsed = time.monotonic() - self._started
        count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
        self._stream.write(f"\r{self.description}: {count} ({elapsed:.0f} s)")
        self._stream.flush()
        self._drawn = True

    def start(self) -> threading.Thread:
        self._started = time.monotonic()
        ticker = threading.Thread(target=self.run, args=(_delay(),), daemon=True)
        ticker.start()
        return ticker

    def finish(self, ticker: threading.Thread) -> None:
        self._stop.set()
        ticker.join()
        if self._bar is not None:
            self._bar.close()
        elif self._drawn:  # clear the line: what the command prints next starts clean
            self._stream.write("\r\033[K")
            self._stream.flush()


@contextlib.contextmanager
def progress(
    description: str, total: int | None = None, *, stream: TextIO | None = None
) -> Iterator[Progress]:
    """Show a bar for the work in the ``with`` block; call ``.advance(n)`` as it goes.

    ``total`` None draws a count and the elapsed time instead of a bar.
    """
    out = stream if stream is not None else sys.stderr
    meter = Progress(description, total, out)
    if not _wanted(out):
        yield meter
        return
    ticker = meter.start()
    try:
        yield meter
    finally:
        meter.finish(ticker)


def _wanted(stream: TextIO) -> bool:
    setting = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("always", "plain"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _delay() -> float:
    return 0.0 if os.environ.get(ENV_PROGRESS, "").strip().lower() in ("always", "plain") else DELAY


def _tqdm() -> Any:
    """``tqdm.tqdm`` if it is installed, else None (the plain line is drawn)."""
    if os.environ.get(ENV_PROGRESS, "").strip().lower() == "plain":
        return None
    try:
        return importlib.import_module("tqdm").tqdm
    except ImportError:
        return None
