"""zentrack's log: ``logging.getLogger("zentrack")``, warnings only unless asked for more.

zentrack configures no logging of its own by default: its warnings reach
stderr through Python's last-resort handler, and an application that sets
up logging gets them like any other library's.  ``ZENTRACK_LOG=info`` (or
``zentrack -v``) lowers the level to INFO, which adds one line per cache
hit; ``debug`` (``-vv``) shows more.  The stderr handler added for that
steps aside once the application configures the root logger, so no message
is printed twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Final

#: ``ZENTRACK_LOG=info|debug|warning|error``: the level of zentrack's log.
ENV_LOG: Final = "ZENTRACK_LOG"
LOGGER: Final = "zentrack"
_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class _UntilConfigured(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, as Python's last-resort handler, while the root logger has no handler."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def configure(verbosity: int = 0) -> None:
    """Apply ``-v`` (1: INFO, 2+: DEBUG) or ``$ZENTRACK_LOG``; without either, leave the log alone.

    Raises:
        ValueError: ``$ZENTRACK_LOG`` names no level.
    """
    text = os.environ.get(ENV_LOG, "").strip().lower()
    if text and text not in _LEVELS:
        raise ValueError(
            f"${ENV_LOG}={text!r} is not a log level; use one of {', '.join(_LEVELS)}."
        )
    level = _LEVELS.get(text)
    if verbosity:
        level = logging.DEBUG if verbosity > 1 else logging.INFO
    if level is None:
        return
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    if not any(isinstance(h, _UntilConfigured) for h in logger.handlers):
        handler = _UntilConfigured(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


@contextlib.contextmanager
def keep_root_logging() -> Iterator[None]:
    """Leave the application's logging as it was while MLMD opens a store.

    MLMD logs through absl when it opens a store, and absl calls
    ``logging.basicConfig()`` when the root logger has no handler: every
    later log line of the process, zentrack's warnings included, would then
    come out as ``WARNING:zentrack:...``.  A handler that drops everything
    stands on the root logger meanwhile, so absl finds it configured.
    """
    root = logging.getLogger()
    if root.handlers:
        yield
        return
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        yield
    finally:
        root.removeHandler(guard)
