"""Commands about the store itself: ``store``, ``cache``, ``flush``, and opening it to read."""

from __future__ import annotations

import argparse
import os

import zentrack as zt
from zentrack._progress import progress
from zentrack._record.journal import pending_chunks
from zentrack._store.discovery import discover
from zentrack._store.location import ENV_STORE, parse


def store_exists(store: str | None) -> bool:
    """Whether the store is there to read: a server, or a SQLite file or its waiting journals."""
    location = parse(store)
    path, journals = location.path, location.journal_dir
    if location.kind != "sqlite" or path is None or path.exists():
        return True
    return journals is not None and journals.is_dir() and any(journals.iterdir())


def why_this_store(store: str | None, named_by: str = "--store") -> str:
    """Why the command uses this store: the option, the environment, or the search upward."""
    if store:
        return f"named by {named_by}"
    if os.environ.get(ENV_STORE):
        return f"named by ${ENV_STORE}"
    return discover().reason


def init_for_read(store: str | None) -> zt.Tracker:
    """Open the store for a command that only reads it; refuse one that does not exist.

    Opening a SQLite path creates the file, so ``--store typo.sqlite runs``
    would make an empty store and print "no runs".  A path with no file (and
    no journals of calls waiting to be written there) is refused before
    anything is created.  Server stores and ``:memory:`` are opened as usual.
    """
    if not store_exists(store):
        path = parse(store).path
        if store or os.environ.get(ENV_STORE):
            raise SystemExit(f"zentrack: no store at {path}; check --store / ${ENV_STORE}")
        raise SystemExit(
            f"zentrack: no store at {path}; {discover().reason}; run from the project's "
            f"folder, or name the store with --store or ${ENV_STORE}"
        )
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
    """``zentrack cache clear [--step S]``: a folder with no store has nothing to clear."""
    tracker = init_for_read(args.store)
    with progress("zentrack cache clear") as bar:
        removed = tracker.outputs.clear(args.step, progress=bar.advance)
    print(f"removed {removed} cached outputs" + (f" of step {args.step!r}" if args.step else ""))
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    """``zentrack flush``: writes what waits; never creates a store."""
    journals = parse(args.store).journal_dir
    waiting = 0
    if journals is not None and journals.is_dir():
        waiting = sum(len([ln for ln in c.lines if ln.strip()]) for c in pending_chunks(journals))
    tracker = init_for_read(args.store)  # writes what ended processes left, if anything
    with progress("zentrack flush", tracker.pending()) as bar:
        tracker.flush(progress=bar.advance)
    print(f"flushed {max(0, waiting - tracker.pending())} records")
    return 0


def cmd_store_info(args: argparse.Namespace) -> int:
    """``zentrack store [info] [PATH]``."""
    store = args.path or args.store
    why = why_this_store(store, "the command line" if args.path else "--store")
    tracker = init_for_read(store)
    print(f"store:    {tracker.location.display}")
    print(f"why:      {why}")
    print(f"journals: {tracker.location.journal_dir}")
    print(f"waiting:  {tracker.pending()} records not yet in MLMD")
    tracker.flush_for_read()
    counts = {name: len(zt.find(name)) for name in tracker.store.step_names()}
    for name, count in counts.items():
        print(f"step {name}: {count} executions")
    return 0


def cmd_store_migrate(args: argparse.Namespace) -> int:
    """``zentrack store migrate [PATH]``."""
    tracker = init_for_read(args.path or args.store)
    with progress("zentrack store migrate"):
        backup = tracker.migrate()
    print(f"migrated {tracker.location.display}" + (f" (backup: {backup})" if backup else ""))
    return 0
