"""The ``zentrack`` command line: the parser and :func:`main`; commands live in ``zentrack._cli``.

Every command takes the shared options (``--store``) before or after its
name, ``--json`` only where it prints JSON, and values in one grammar
(:data:`zentrack._cli.values.VALUE_SYNTAX`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

from zentrack._cli import configs, reads, runs, stores
from zentrack._cli.errors import debug_requested, report
from zentrack._cli.values import VALUE_SYNTAX
from zentrack._log import configure as configure_log

Handler = Callable[[argparse.Namespace], int]

#: A token that starts with one '-' and is not an option of its command is a VALUE
#: (``config set FILE trainer.lr -1e-3``, ``-.inf``, ``-x``): argparse alone takes
#: only ``-5``-like numbers for positionals.
_DASH_VALUE: Final = re.compile(r"^-(?!-).")


def _shared(default: Any = argparse.SUPPRESS) -> argparse.ArgumentParser:
    """The parent parser of every command: the options it takes before or after its name.

    Below the top level their default is ``SUPPRESS``, so that a subcommand
    not given an option leaves the value given before its name (or the
    top-level default) in place.  argparse shares a parent's option objects
    with its children, so the top level gets an instance of its own.
    """
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--store",
        default=default,
        help="store path or URL (default: $ZENTRACK_STORE, else the project's .zentrack/ "
        "found upward from here, like git; `zentrack store info` says which and why)",
    )
    shared.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if default is argparse.SUPPRESS else 0,
        help="log more: -v one line per cache hit, -vv debugging (also: ZENTRACK_LOG=info)",
    )
    shared.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS if default is argparse.SUPPRESS else False,
        help="on an error, show every frame, zentrack's too (also: ZENTRACK_DEBUG=1)",
    )
    return shared


def _json_flag() -> argparse.ArgumentParser:
    flag = argparse.ArgumentParser(add_help=False)
    flag.add_argument("--json", action="store_true", help="print JSON")
    return flag


class _Commands:
    """Adds commands to a subparsers group, each with the shared options."""

    def __init__(self, group: Any, shared: argparse.ArgumentParser) -> None:
        self.group, self.shared, self.json = group, shared, _json_flag()

    def add(
        self,
        name: str,
        handler: Handler | None,
        help: str,
        *,
        json: bool = False,
        values: bool = False,
    ) -> argparse.ArgumentParser:
        parents = [self.shared, self.json] if json else [self.shared]
        parser: argparse.ArgumentParser = self.group.add_parser(
            name,
            help=help,
            description=help,
            parents=parents,
            epilog=VALUE_SYNTAX if values else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if handler is not None:
            parser.set_defaults(handler=handler)
        return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zentrack",
        description="Track and query ML step parameters in ML Metadata.",
        parents=[_shared(default=None)],
        epilog=VALUE_SYNTAX,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(step=None, path=None)
    commands = _Commands(parser.add_subparsers(dest="command", required=True), _shared())
    add = commands.add

    add("demo", reads.cmd_demo, "run the seed example on the embedded SQLite store")
    p = add("lookup", reads.cmd_lookup, "records of the executions with a fingerprint", json=True)
    p.add_argument("fingerprint", help="all 64 hex characters, or a unique prefix of 8 or more")
    p = add(
        "find", reads.cmd_find, "records whose parameters or metrics match, e.g. lr__lt=0.05",
        json=True, values=True,
    )
    p.add_argument("--step", help="only this step's records")
    p.add_argument("--state", help="only records in this state: COMPLETE, FAILED, CACHED, ...")
    p.add_argument("--limit", type=_count, metavar="N", help="only the first N in the order")
    p.add_argument(
        "--order-by", metavar="KEY",
        help="started (default), -started (newest first), or a param or metric (-acc: largest "
        "first)",
    )
    p.add_argument(
        "where", nargs="*", metavar="param[__op]=VALUE",
        help="ops: eq ne lt le gt ge in contains (lr__in=[0.1, 0.2]); metrics too (acc__gt=0.9)",
    )
    call_args = (
        "arguments of the call; for a class step, its constructor's params and its entry "
        "point's inputs together"
    )
    p = add(
        "fingerprint", reads.cmd_fingerprint, "fingerprint of a step call, without running it",
        values=True,
    )
    p.add_argument("step", metavar="module:step")
    p.add_argument("args", nargs="*", metavar="name=VALUE", help=call_args)
    p = add("why", reads.cmd_why, "why a step call would miss the cache", json=True, values=True)
    p.add_argument("step", metavar="module:step")
    p.add_argument("args", nargs="*", metavar="name=VALUE", help=call_args)
    _add_runs(commands)
    _add_cache(commands)
    _add_config(commands)
    p = add(
        "rerun", configs.cmd_rerun, "run a recorded run again, optionally with edited args",
        json=True, values=True,
    )
    p.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    p.add_argument("--set", action="append", metavar="step.arg=VALUE")
    add("flush", stores.cmd_flush, "write waiting records to the store now")
    _add_store(commands)
    return parser


def _count(text: str) -> int:
    """A ``--limit`` value: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more (got {text!r})")
    return value


_RUN_HELP = "a run id, or the start of one that no other run's id starts with"


def _add_runs(commands: _Commands) -> None:
    """``runs``, ``show``, ``compare``, ``tag`` and ``ui``."""
    add = commands.add
    p = add(
        "runs", reads.cmd_runs,
        "pipeline runs, newest first: start, duration, key metrics, tags", json=True,
    )
    p.add_argument("--pipeline")
    p.add_argument("--state")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="only runs with this tag")
    p.add_argument("--limit", type=_count, default=50, help="newest N runs (0: all; default 50)")
    p = add("show", reads.cmd_show, "one run: params, metrics, tags, note, config, steps",
            json=True)
    p.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    p = add(
        "compare", reads.cmd_compare,
        "runs side by side as a leaderboard (a row per run), or as an HTML report", json=True,
    )
    p.add_argument("run_ids", nargs="*", metavar="RUN", help=_RUN_HELP)
    p.add_argument("--pipeline")
    p.add_argument("--last", type=int, metavar="N", help="only the newest N runs")
    p.add_argument(
        "--differing", action="store_true", help="leave out the params every run shares"
    )
    p.add_argument("--sort", metavar="COLUMN",
                   help="order runs by a param or metric (lr, train.lr; started, duration)")
    p.add_argument("--best", metavar="METRIC",
                   help="rank runs by a metric, best first (lower first for loss, error, time)")
    order = p.add_mutually_exclusive_group()
    order.add_argument("--desc", action="store_true",
                       help="--sort descending; with --best: higher is better")
    order.add_argument("--asc", action="store_true", help="with --best: lower is better")
    p.add_argument("--precision", type=int, default=4, metavar="DIGITS",
                   help="significant digits of numbers (default 4; --json keeps exact values)")
    p.add_argument("--runs-as", choices=["auto", "rows", "columns"], default="auto",
                   help="a row per run, or a column per run (auto: rows unless fewer runs "
                        "than columns)")
    p.add_argument("--html", metavar="FILE",
                   help="write a self-contained HTML report (table, charts) to FILE instead")
    p.add_argument("--title", help="the HTML report's title")
    p.add_argument("--color-by", metavar="METRIC", help="the HTML report's colour metric")
    p = add("tag", runs.cmd_tag, "set or remove a run's tags, or its note")
    p.add_argument("run_id", metavar="RUN", help=_RUN_HELP)
    p.add_argument("tags", nargs="*", metavar="KEY=VALUE", help="tags to set (text, as typed)")
    p.add_argument("--remove", action="append", metavar="KEY", help="remove this tag")
    note = p.add_mutually_exclusive_group()
    note.add_argument("--note", metavar="TEXT", help="the run's free-text note")
    note.add_argument("--clear-note", action="store_true", help="remove the note")
    p = add("ui", runs.cmd_ui, "a local read-only web viewer of the store (runs, a run, compare)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: a free one)")


def _add_cache(commands: _Commands) -> None:
    """``cache [info|clear] [--step S]``: ``cache`` alone is ``cache info``."""
    parent = commands.add("cache", stores.cmd_cache_info, "list cached outputs, or clear them")
    parent.add_argument("--step", default=argparse.SUPPRESS, help="only this step's outputs")
    nested = _Commands(parent.add_subparsers(dest="action", metavar="ACTION"), commands.shared)
    nested.add("info", stores.cmd_cache_info, "list cached outputs").add_argument(
        "--step", default=argparse.SUPPRESS, help="only this step's outputs"
    )
    nested.add("clear", stores.cmd_cache_clear, "remove cached outputs").add_argument(
        "--step", default=argparse.SUPPRESS, help="only this step's outputs"
    )


def _add_config(commands: _Commands) -> None:
    """``config show|set|diff|plan|run``."""
    parent = commands.add(
        "config", None, "show, edit, compare, plan or run a run's YAML config", values=True
    )
    nested = _Commands(
        parent.add_subparsers(dest="action", metavar="ACTION", required=True), commands.shared
    )
    p = nested.add("show", configs.cmd_config_show, "print the config as it is")
    p.add_argument("file")
    p = nested.add(
        "set", configs.cmd_config_set,
        "set one arg, keeping comments and formatting (a run's own config is never "
        "overwritten: write the edit to NEW with -o)",
        values=True,
    )
    p.add_argument("file")
    p.add_argument("key", metavar="KEY", help="step.arg or pipeline.arg")
    p.add_argument("value", metavar="VALUE", help="YAML, e.g. 0.02, -1e-3, null, [8, 4]")
    p.add_argument("-o", "--output", metavar="NEW", help="write the edited config to NEW")
    p._negative_number_matcher = _DASH_VALUE  # after -o: it must stay an option
    p = nested.add(
        "diff", configs.cmd_config_diff, "args that differ between two configs (exit 1 if any)",
        json=True,
    )
    p.add_argument("file", metavar="A")
    p.add_argument("other", metavar="B")
    p = nested.add(
        "plan", configs.cmd_config_plan, "which steps would hit the cache, without running",
        json=True,
    )
    p.add_argument("file")
    p = nested.add("run", configs.cmd_config_run, "run the pipeline with the config's args",
                   json=True)
    p.add_argument("file")


def _add_store(commands: _Commands) -> None:
    """``store [info|migrate] [PATH]``: ``store`` alone is ``store info``."""
    parent = commands.add("store", stores.cmd_store_info, "show the store, or migrate it")
    nested = _Commands(parent.add_subparsers(dest="action", metavar="ACTION"), commands.shared)
    for name, handler, help in (
        ("info", stores.cmd_store_info, "where the store is, what waits, executions per step"),
        ("migrate", stores.cmd_store_migrate, "upgrade an older MLMD schema (with a backup)"),
    ):
        nested.add(name, handler, help).add_argument(
            "path", nargs="?", default=argparse.SUPPRESS,
            help="the store (default: --store, $ZENTRACK_STORE)",
        )


#: The exit code when the reader of stdout went away (``zentrack find | head -1``):
#: 128 + SIGPIPE, what a shell reports for ``cat`` or ``grep`` stopped the same way.
EXIT_CLOSED_STDOUT: Final = 141


def _stdout_closed() -> int:
    """Stop quietly once stdout's reader has gone; return :data:`EXIT_CLOSED_STDOUT`.

    stdout is pointed at /dev/null first, so the interpreter's last flush of
    what is still buffered cannot raise BrokenPipeError again at exit.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_CLOSED_STDOUT


def use_current_folder() -> None:
    """Make the user's modules in the current folder importable, after every other path.

    Appended, not put first as ``python -m`` does: a file in the folder the
    command runs in (``sqlite3.py``, ``subprocess.py``) must not shadow a
    module zentrack or its libraries import.
    """
    here = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    sys.path.append(here)


def _descending_orders(argv: Sequence[str]) -> list[str]:
    """``--order-by -acc`` as ``--order-by=-acc``: argparse would take ``-acc`` for an option."""
    out: list[str] = []
    items = iter(argv)
    for arg in items:
        value = next(items, None) if arg == "--order-by" and "--" not in out else None
        out.append(arg if value is None else f"{arg}={value}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    Errors zentrack raises on purpose (and bad lookups, values or calls) are
    one line on stderr and exit 1.  Output piped into a reader that stops
    early (``| head``) ends the command quietly with exit 141, as ``cat``.
    """
    args = _parser().parse_args(_descending_orders(sys.argv[1:] if argv is None else argv))
    try:
        configure_log(args.verbose)
    except ValueError as exc:
        return report(exc, debug=False)
    use_current_folder()
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a reader that left shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except (Exception, KeyboardInterrupt) as exc:
        return report(exc, debug=debug_requested(args.traceback))
