"""Commands on YAML configs: ``config show|set|diff|plan|run`` and ``rerun``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import zentrack as zt
from zentrack._cli.output import print_json, print_run_result
from zentrack._cli.stores import init_for_read, store_exists
from zentrack._cli.values import parse_value
from zentrack._store.discovery import STATE_FOLDER, STORE_FILE
from zentrack._store.location import ENV_STORE, MEMORY


def store_of_config(store: str | None, path: Path) -> str | None:
    """The store a config is planned or run against.

    ``--store``, else ``$ZENTRACK_STORE``, else the store of the project the
    config belongs to when it lies in a project's ``.zentrack/configs/``
    (so ``config run`` from outside the project records into the project),
    else the store found upward from the current folder.
    """
    if store or os.environ.get(ENV_STORE):
        return store
    folder = path.absolute().parent
    beside = folder.parent / STORE_FILE
    if folder.name == "configs" and folder.parent.name == STATE_FOLDER and beside.is_file():
        return str(beside)
    return None


def checked_config(args: argparse.Namespace) -> tuple[zt.Config, str | None]:
    """Load and validate ``args.file`` against its code before any store is opened.

    A config that does not match its code (or whose pipeline does not import)
    fails here, so a failed command leaves no store behind.  A run that wrote
    the config can only be in an existing store, so without one there is
    nothing more to check against.
    """
    from zentrack._config.model import validate_against
    from zentrack._config.rerun import pipeline_spec

    config = zt.load_config(args.file)
    store = store_of_config(args.store, Path(args.file))
    if not store_exists(store):
        check = lambda resolve, recorded: validate_against(config, resolve)  # noqa: E731
        pipeline_spec(config, check, recorded=False)
    return config, store


def cmd_config_show(args: argparse.Namespace) -> int:
    """``zentrack config show FILE``: the file as it is, comments included."""
    print(zt.load_config(args.file).to_text(), end="")
    return 0


def cmd_config_set(args: argparse.Namespace) -> int:
    """``zentrack config set FILE KEY VALUE [-o NEW]``: edit one value, keeping the rest."""
    from zentrack._config.model import recorded_run_of

    config = zt.load_config(args.file)
    config.set(args.key, parse_value(args.value))
    target = Path(args.output) if args.output else Path(args.file)
    if args.output is None and (recorded := recorded_run_of(target)) is not None:
        raise SystemExit(
            f"zentrack: {target} is the config run {recorded} wrote: it records what ran, "
            "so it is never overwritten; add -o NEW.yaml to write the edited config to a "
            "new file, and run that one."
        )
    config.save(target)
    print(f"set {args.key} = {args.value} in {target}")
    return 0


def cmd_config_diff(args: argparse.Namespace) -> int:
    """``zentrack config diff A B``: one line per differing arg; exit 1 when any differ."""
    rows = zt.diff_configs(zt.load_config(args.file), zt.load_config(args.other))
    if args.json:
        print_json([{"key": k, "a": a, "b": b} for k, a, b in rows])
    else:
        for key, a, b in rows:
            print(f"{key}: {a!r} -> {b!r}")
    return 0 if not rows else 1


def cmd_config_plan(args: argparse.Namespace) -> int:
    """``zentrack config plan FILE``: which steps would hit the cache, and why the others miss."""
    config, store = checked_config(args)
    # Without a store, plan against an empty one in memory: nothing is created.
    zt.init(store if store_exists(store) else MEMORY)
    plan = config.plan()
    if args.json:
        print_json([plan_row(step) for step in plan.steps])
    else:
        print(plan)
    return 0


def plan_row(step: Any) -> dict[str, Any]:
    """One planned step as a JSON object."""
    return {
        "key": step.key,
        "step": step.step,
        "hit": step.hit,
        "fingerprint": step.fingerprint,
        "reasons": step.reasons,
    }


def cmd_config_run(args: argparse.Namespace) -> int:
    """``zentrack config run FILE``: run the pipeline with the config's args."""
    config, store = checked_config(args)
    zt.init(store)
    print_run_result(config.run(), args.json)
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    """``zentrack rerun RUN_ID [--set KEY=VALUE...]``."""
    edits = []
    for item in args.set or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"zentrack: --set takes step.arg=value, got {item!r}")
        edits.append((key, parse_value(text)))
    from zentrack._config.model import load_recorded_config

    tracker = init_for_read(args.store)
    run = zt.get_run(args.run_id)
    config = load_recorded_config(run.id, run.config_path, run.config_sha256, tracker.configs)
    for key, value in edits:
        config.set(key, value)
    print_run_result(config.run(), args.json)
    return 0
