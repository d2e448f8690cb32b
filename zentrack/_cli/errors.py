"""How the command line reports a failure: zentrack's own as one line, the user's code as theirs.

An error zentrack raises on purpose (a bad config, an unknown run, a step
given a value it cannot track) is one line, ending with the user's line it
came from when there is one.  An exception from the user's code (a step that raised while
``zentrack config run`` ran their pipeline) is shown as Python would show
it, with the step and config key it came from, but with zentrack's own
frames left out: they say nothing about the user's bug.  ``--traceback`` or
``ZENTRACK_DEBUG=1`` shows every frame.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType
from typing import Final, TextIO

from zentrack._runs.context import TRACKING_CODES
from zentrack.exceptions import ZentrackError

#: ``ZENTRACK_DEBUG=1``: every failure with its full traceback, zentrack's frames included.
ENV_DEBUG: Final = "ZENTRACK_DEBUG"
#: The exit code of a command stopped by Ctrl-C: 128 + SIGINT, as a shell reports it.
EXIT_INTERRUPTED: Final = 130

_PACKAGE: Final = str(Path(__file__).resolve().parent.parent) + os.sep
_STDLIB: Final = tuple(
    str(Path(p).resolve()) + os.sep
    for p in {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    if p
)


def debug_requested(flag: bool) -> bool:
    """``--traceback`` was given, or ``$ZENTRACK_DEBUG`` is set to something true."""
    return flag or os.environ.get(ENV_DEBUG, "").strip().lower() not in ("", "0", "false", "no")


def is_users(filename: str) -> bool:
    """Whether a frame of this file is the user's: not zentrack's, the standard library's
    or the import machinery's (their code and the libraries it calls are)."""
    if filename.startswith("<"):
        return False
    path = os.path.realpath(filename) if os.path.isabs(filename) else filename
    if path.startswith(_PACKAGE):
        return False
    return not (path.startswith(_STDLIB) and "site-packages" not in path)


def failing_step(tb: TracebackType | None) -> str | None:
    """``step 'x' (config key 'k')`` of the innermost tracked call the error went through."""
    found = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code in TRACKING_CODES:
            spec, key = frame.f_locals.get("spec"), frame.f_locals.get("key")
            name = getattr(spec, "name", None)
            if isinstance(name, str):
                found = f"step {name!r}"
                if isinstance(key, tuple) and len(key) == 2:
                    found += f" (config key {key[1]!r} of run {key[0]})"
        tb = tb.tb_next
    return found


def report(exc: BaseException, *, debug: bool, stream: TextIO = sys.stderr) -> int:
    """Print ``exc`` for a person; return the exit code (1, or 130 for Ctrl-C)."""
    if debug:
        traceback.print_exception(exc, file=stream)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else 1
    if isinstance(exc, KeyboardInterrupt):
        print("zentrack: interrupted (Ctrl-C); records of finished calls are kept", file=stream)
        return EXIT_INTERRUPTED
    entries = traceback.extract_tb(exc.__traceback__)
    users = [entry for entry in entries if is_users(entry.filename)]
    if isinstance(exc, ZentrackError) or (not users and isinstance(exc, _INPUT_ERRORS)):
        last = users[-1] if users else None
        where = f" (at {last.filename}:{last.lineno} in {last.name})" if last else ""
        print(f"zentrack: {_one_line(exc)}{where}", file=stream)
        return 1
    if not users:  # not the user's code, and not an error about the input: a zentrack bug
        traceback.print_exception(exc, file=stream)
        return 1
    message = "".join(traceback.format_exception_only(type(exc), exc)).rstrip("\n")
    step = failing_step(exc.__traceback__)
    print(f"zentrack: {step or 'your code'} raised {type(exc).__name__}:", file=stream)
    print(
        "Traceback (most recent call last; zentrack's frames hidden, --traceback shows them):",
        file=stream,
    )
    print("".join(traceback.format_list(users)), end="", file=stream)
    print(message, file=stream)
    return 1


#: Errors about what the command was given (an unknown run id, a bad value or call).
_INPUT_ERRORS: Final = (LookupError, TypeError, ValueError)


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
