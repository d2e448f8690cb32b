"""The ``zentrack`` command line, built on the public API only."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, Final

import zentrack as zt
from zentrack.exceptions import ZentrackError


def _value(text: str) -> Any:
    """Parse ``key=value`` values the way a user means them: JSON, else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _assignments(items: Sequence[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"zentrack: expected key=value, got {item!r}")
        out[key] = _value(text)
    return out


def _record_row(record: zt.Record) -> dict[str, Any]:
    return {
        "execution_id": record.execution_id,
        "step": record.step,
        "state": record.state,
        "fingerprint": record.fingerprint,
        "run_id": record.run_id,
        "params": record.params,
        "metrics": record.metrics,
    }


def _print_records(records: Sequence[zt.Record], as_json: bool) -> None:
    if as_json:
        print(json.dumps([_record_row(r) for r in records], indent=2, default=repr))
        return
    if not records:
        print("no records")
        return
    for r in records:
        params = " ".join(f"{k}={v!r}" for k, v in r.params.items())
        metrics = " ".join(f"{k}={v!r}" for k, v in r.metrics.items())
        line = f"{r.execution_id:>6}  {r.step:<16} {r.state:<9} {r.fingerprint[:12]}  {params}"
        print(line + (f"  | {metrics}" if metrics else ""))


def _resolve(target: str) -> Any:
    module_name, sep, attribute = target.partition(":")
    if not sep:
        module_name, _, attribute = target.rpartition(".")
    if not module_name or not attribute:
        raise SystemExit(f"zentrack: name a step as module:name (got {target!r})")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def cmd_demo(args: argparse.Namespace) -> int:
    from zentrack._demo import main as demo

    return demo(args.store)


def _init_for_read(store: str | None) -> zt.Tracker:
    """Open the store for a command that only reads it; refuse one that does not exist.

    Opening a SQLite path creates the file, so ``--store typo.sqlite runs``
    would make an empty store and print "no runs".  A path with no file (and
    no journals of calls waiting to be written there) is refused before
    anything is created.  Server stores and ``:memory:`` are opened as usual.
    """
    from zentrack._store.location import ENV_STORE, parse

    location = parse(store)
    path, journals = location.path, location.journal_dir
    if location.kind == "sqlite" and path is not None and not path.exists():
        waiting = journals is not None and journals.is_dir() and any(journals.iterdir())
        if not waiting:
            raise SystemExit(f"zentrack: no store at {path}; check --store / ${ENV_STORE}")
    return zt.init(store)


def cmd_lookup(args: argparse.Namespace) -> int:
    _init_for_read(args.store)
    _print_records(zt.lookup(args.fingerprint), args.json)
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    _init_for_read(args.store)
    _print_records(zt.find(args.step, state=args.state, **_assignments(args.where)), args.json)
    return 0


def _call_target(target: Any, values: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """What to fingerprint for ``name=value`` arguments: ``(step or instance, its kwargs)``.

    For a class step, the constructor's named parameters build the instance
    and every other value is an input of its entry point, as in
    ``zt.fingerprint(Step(lr=0.5), data)``.
    """
    if not isinstance(target, type):
        return target, values
    from zentrack._step.spec import spec_of

    spec = spec_of(target)
    if spec is None:
        raise TypeError(
            f"{target.__qualname__} is a class that is not decorated with @zentrack.step; "
            "name a step function or step class."
        )
    names = set(spec.signature.names)
    params = {k: v for k, v in values.items() if k in names}
    inputs = {k: v for k, v in values.items() if k not in names}
    return target(**params), inputs


def cmd_fingerprint(args: argparse.Namespace) -> int:
    zt.init(args.store)
    target, values = _call_target(_resolve(args.step), _assignments(args.args))
    print(zt.fingerprint(target, **values))
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    _init_for_read(args.store)
    from zentrack._runs.explain import explain_with_recorded_inputs

    target, values = _call_target(_resolve(args.step), _assignments(args.args))
    explanation = explain_with_recorded_inputs(target, **values)
    if args.json:
        print(
            json.dumps(
                {
                    "hit": explanation.hit,
                    "reasons": explanation.reasons,
                    "fingerprint": explanation.fingerprint,
                    **({"notes": explanation.notes} if explanation.notes else {}),
                },
                indent=2,
            )
        )
    else:
        print(explanation)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    _init_for_read(args.store)
    found = zt.runs(args.pipeline, state=args.state)[: args.limit]
    if args.json:
        print(json.dumps([_run_row(r) for r in found], indent=2, default=repr))
        return 0
    if not found:
        print("no runs")
    for run in found:
        print(
            f"{run.id}  {run.pipeline:<16} {run.state:<9} {len(run.steps):>3} steps  "
            f"{run.config_path or ''}"
        )
    return 0


def _run_row(run: zt.Run[Any]) -> dict[str, Any]:
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "state": run.state,
        "params": run.params,
        "config_path": str(run.config_path) if run.config_path else None,
        "error": run.error,
        "steps": [_record_row(r) | {"key": r.key} for r in run.steps],
    }


def cmd_show(args: argparse.Namespace) -> int:
    _init_for_read(args.store)
    run = zt.get_run(args.run_id)
    if args.json:
        print(json.dumps(_run_row(run), indent=2, default=repr))
        return 0
    print(f"run       {run.id}")
    print(f"pipeline  {run.pipeline} ({run.source})")
    print(f"state     {run.state}" + (f": {run.error}" if run.error else ""))
    print(f"params    {run.params}")
    print(f"config    {run.config_path}")
    print("steps:")
    _print_records(run.steps, False)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    _init_for_read(args.store)
    comparison = zt.compare_runs(args.pipeline, runs=args.run_ids or None, last=args.last)
    if args.json:
        print(
            json.dumps(
                {
                    "runs": [r.id for r in comparison.runs],
                    "params": comparison.params,
                    "metrics": comparison.metrics,
                    "differing": comparison.differing(),
                },
                indent=2,
                default=repr,
            )
        )
    else:
        print(comparison.to_text(only_differing=args.differing))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    tracker = zt.init(args.store) if args.action == "clear" else _init_for_read(args.store)
    if args.action == "clear":
        removed = tracker.outputs.clear(args.step)
        print(
            f"removed {removed} cached outputs" + (f" of step {args.step!r}" if args.step else "")
        )
        return 0
    entries = [e for e in tracker.outputs.entries() if args.step in (None, e.get("step"))]
    print(f"{len(entries)} cached outputs in {tracker.artifacts}")
    for entry in entries:
        print(
            f"  {entry.get('step', '?'):<16} {str(entry.get('fingerprint'))[:12]}  "
            f"{entry.get('materializer'):<8} {entry.get('size', 0):>10} bytes  {entry.get('type')}"
        )
    return 0


def _print_run_result(run: zt.Run[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(_run_row(run), indent=2, default=repr))
    else:
        print(f"run {run.id}: {run.state}; config {run.config_path}")


def cmd_config(args: argparse.Namespace) -> int:
    zt.init(args.store)
    if args.action == "diff":
        if len(args.rest) != 1:
            raise SystemExit("zentrack: usage: zentrack config diff A.yaml B.yaml")
        rows = zt.diff_configs(zt.load_config(args.file), zt.load_config(args.rest[0]))
        if args.json:
            print(json.dumps([{"key": k, "a": a, "b": b} for k, a, b in rows], default=repr))
        for key, a, b in [] if args.json else rows:
            print(f"{key}: {a!r} -> {b!r}")
        return 0 if not rows else 1
    config = zt.load_config(args.file)
    if args.action == "show":
        print(config.to_text(), end="")
    elif args.action == "set":
        if len(args.rest) != 2:
            raise SystemExit("zentrack: usage: zentrack config set FILE step.arg VALUE")
        config.set(args.rest[0], zt.parse_config_value(args.rest[1]))
        from pathlib import Path

        from zentrack._config.model import recorded_run_of

        target = Path(args.output) if args.output else Path(args.file)
        if args.output is None and (recorded := recorded_run_of(target)) is not None:
            raise SystemExit(
                f"zentrack: {target} is the config run {recorded} wrote: it records what ran, "
                "so it is never overwritten; add -o NEW.yaml to write the edited config to a "
                "new file, and run that one."
            )
        config.save(target)
        print(f"set {args.rest[0]} = {args.rest[1]} in {target}")
    elif args.action == "plan":
        plan = config.plan()
        if args.json:
            print(json.dumps([attrs_row(step) for step in plan.steps], indent=2))
        else:
            print(plan)
    else:
        _print_run_result(config.run(), args.json)
    return 0


def attrs_row(step: Any) -> dict[str, Any]:
    return {"key": step.key, "step": step.step, "hit": step.hit,
            "fingerprint": step.fingerprint, "reasons": step.reasons}


def cmd_rerun(args: argparse.Namespace) -> int:
    zt.init(args.store)
    run = zt.get_run(args.run_id)
    if run.config_path is None:
        raise SystemExit(f"zentrack: run {run.id} has no config to rerun from")
    config = zt.load_config(run.config_path)
    for item in args.set or []:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"zentrack: --set takes step.arg=value, got {item!r}")
        config.set(key, zt.parse_config_value(text))
    _print_run_result(config.run(), args.json)
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    zt.init(args.store)
    print(f"flushed {zt.flush()} records")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    store = args.path or args.store
    tracker = zt.init(store) if args.action == "migrate" else _init_for_read(store)
    if args.action == "migrate":
        backup = tracker.migrate()
        print(f"migrated {tracker.location.display}" + (f" (backup: {backup})" if backup else ""))
        return 0
    print(f"store:    {tracker.location.display}")
    print(f"journals: {tracker.location.journal_dir}")
    print(f"waiting:  {tracker.pending()} records not yet in MLMD")
    tracker.flush_for_read()
    counts = {name: len(zt.find(name)) for name in tracker.store.step_names()}
    for name, count in counts.items():
        print(f"step {name}: {count} executions")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zentrack", description="Track and query ML step parameters in ML Metadata."
    )
    parser.add_argument(
        "--store",
        help="store path or URL (default: $ZENTRACK_STORE, else ./.zentrack/metadata.sqlite)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> Any:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        p.add_argument("--json", action="store_true", help="print JSON")
        return p

    add("demo", cmd_demo, "run the seed example on the embedded SQLite store")
    p = add("lookup", cmd_lookup, "records of the executions with a fingerprint")
    p.add_argument(
        "fingerprint", help="all 64 hex characters, or a unique prefix of 8 or more"
    )
    p = add("find", cmd_find, "records whose parameters match, e.g. lr__lt=0.05")
    p.add_argument("--step")
    p.add_argument("--state")
    p.add_argument("where", nargs="*", metavar="param[__op]=value")
    call_args = (
        "arguments of the call, values as JSON; for a class step, its constructor's "
        "params and its entry point's inputs together"
    )
    p = add("fingerprint", cmd_fingerprint, "fingerprint of a step call, without running it")
    p.add_argument("step", metavar="module:step")
    p.add_argument("args", nargs="*", metavar="name=value", help=call_args)
    p = add("why", cmd_why, "why a step call would miss the cache")
    p.add_argument("step", metavar="module:step")
    p.add_argument("args", nargs="*", metavar="name=value", help=call_args)
    p = add("runs", cmd_runs, "pipeline runs, newest first")
    p.add_argument("--pipeline")
    p.add_argument("--state")
    p.add_argument("--limit", type=int, default=50)
    p = add("show", cmd_show, "one run: its params, config and step calls")
    p.add_argument("run_id")
    p = add("compare", cmd_compare, "params and metrics of runs side by side")
    p.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    p.add_argument("--pipeline")
    p.add_argument("--last", type=int)
    p.add_argument(
        "--differing",
        action="store_true",
        help="only params that differ (metrics, labelled metric:, are always shown)",
    )
    p = add("cache", cmd_cache, "list cached outputs, or clear them")
    p.add_argument("action", nargs="?", choices=["info", "clear"], default="info")
    p.add_argument("--step")
    p = add("config", cmd_config, "show, edit, compare, plan or run a run's YAML config")
    p.add_argument("action", choices=["show", "set", "diff", "plan", "run"])
    p.add_argument("file")
    p.add_argument("rest", nargs="*", metavar="ARG")
    p.add_argument(
        "-o", "--output", metavar="NEW", help="set: write the edited config to NEW (a run's "
        "own config is never overwritten)"
    )
    p = add("rerun", cmd_rerun, "run a recorded run again, optionally with edited args")
    p.add_argument("run_id")
    p.add_argument("--set", action="append", metavar="step.arg=value")
    add("flush", cmd_flush, "write waiting records to the store now")
    p = add("store", cmd_store, "show the store, or migrate an older MLMD schema")
    p.add_argument("action", nargs="?", choices=["info", "migrate"], default="info")
    p.add_argument("path", nargs="?", help="the store (default: --store, $ZENTRACK_STORE)")
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    Errors zentrack raises on purpose (and bad lookups, values or calls) are
    one line on stderr and exit 1.  Output piped into a reader that stops
    early (``| head``) ends the command quietly with exit 141, as ``cat``.
    """
    args = _parser().parse_args(argv)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the user's modules are here
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a reader that left shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except (ZentrackError, LookupError, TypeError, ValueError) as exc:
        print(f"zentrack: {exc}", file=sys.stderr)
        return 1
