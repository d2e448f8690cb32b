"""An error about the user's own call is shown ending at the user's line.

Python always lists the frame that raised.  For a ``ParameterTypeError``
raised by a class step's generated ``__init__`` that frame is zentrack's and
says nothing about the mistake, which is on the line that called the class.

A frame holding ``__tracebackhide__ = True`` is hidden by pytest (IPython
hides such frames too, but always shows the innermost one, so a notebook
still lists this one frame under the user's line).  For a plain
``python script.py`` the first such error
installs a ``sys.excepthook`` that drops zentrack's frames from the end of a
marked error's traceback and hands it to the hook it replaced; it is only
installed while nobody else has set one, touches only errors zentrack marked,
and ``ZENTRACK_DEBUG=1`` keeps every frame.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Final

#: Every frame of a file under this folder is zentrack's own.
_PACKAGE: Final = str(Path(__file__).resolve().parent.parent) + os.sep
#: The attribute that marks an error as being about the caller's line.
_MARK: Final = "__zentrack_callers_error__"
#: ``ZENTRACK_DEBUG=1``: tracebacks keep zentrack's frames (the CLI's switch too).
_ENV_DEBUG: Final = "ZENTRACK_DEBUG"


def about_callers_line(exc: BaseException) -> BaseException:
    """Mark ``exc`` so that its traceback, printed at exit, ends at the caller's line.

    Returns ``exc`` for ``raise about_callers_line(error) from None``.
    """
    setattr(exc, _MARK, True)
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _ExceptHook(sys.__excepthook__)
    return exc


def trim_own_frames(tb: TracebackType | None) -> TracebackType | None:
    """Cut the frames after the last one that is not zentrack's (the caller's line)."""
    last_users = None
    entry = tb
    while entry is not None:
        if not _is_own(entry.tb_frame.f_code.co_filename):
            last_users = entry
        entry = entry.tb_next
    if last_users is None:  # raised with no caller of the user's on the stack: keep all
        return tb
    last_users.tb_next = None
    return tb


class _ExceptHook:
    """``sys.excepthook`` for a script: trims marked errors, prints as ``previous`` does."""

    def __init__(self, previous: object) -> None:
        self.previous = previous

    def __call__(
        self, kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if getattr(value, _MARK, False) and not _debug():
            tb = trim_own_frames(tb)
            value.__traceback__ = tb
        self.previous(kind, value, tb)  # type: ignore[operator]


def _is_own(filename: str) -> bool:
    return os.path.realpath(filename).startswith(_PACKAGE) if os.path.isabs(filename) else False


def _debug() -> bool:
    return os.environ.get(_ENV_DEBUG, "").strip().lower() not in ("", "0", "false", "no")
