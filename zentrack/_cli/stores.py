"""Commands about the store itself: ``store``, ``cache``, ``flush``, and opening it to read."""

from __future__ import annotations

import argparse

import zentrack as zt


def init_for_read(store: str | None) -> zt.Tracker:
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


def cmd_cache_info(args: argparse.Namespace) -> int:
    """``zentrack cache [info] [--step S]``."""
    tracker = init_for_read(args.store)
    entries = [e for e in tracker.outputs.entries() if args.step in (None, e.get("step"))]
    print(f"{len(entries)} cached outputs in {tracker.artifacts}")
    for entry in entries:
        print(
            f"  {entry.get('step', '?'):<16} {str(entry.get('fingerprint'))[:12]}  "
            f"{entry.get('materializer'):<8} {entry.get('size', 0):>10} bytes  {entry.get('type')}"
        )
    return 0


def cmd_cache_clear(args: argparse.Namespace) -> int:
    """``zentrack cache clear [--step S]``."""
    tracker = zt.init(args.store)
    removed = tracker.outputs.clear(args.step)
    print(f"removed {removed} cached outputs" + (f" of step {args.step!r}" if args.step else ""))
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    """``zentrack flush``."""
    zt.init(args.store)
    print(f"flushed {zt.flush()} records")
    return 0


def cmd_store_info(args: argparse.Namespace) -> int:
    """``zentrack store [info] [PATH]``."""
    tracker = init_for_read(args.path or args.store)
    print(f"store:    {tracker.location.display}")
    print(f"journals: {tracker.location.journal_dir}")
    print(f"waiting:  {tracker.pending()} records not yet in MLMD")
    tracker.flush_for_read()
    counts = {name: len(zt.find(name)) for name in tracker.store.step_names()}
    for name, count in counts.items():
        print(f"step {name}: {count} executions")
    return 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """``zentrack store migrate [PATH]``."""
    tracker = zt.init(args.path or args.store)
    backup = tracker.migrate()
    print(f"migrated {tracker.location.display}" + (f" (backup: {backup})" if backup else ""))
    return 0
