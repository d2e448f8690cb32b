"""Commands about runs beyond reading them: ``tag`` (tags and the note) and ``ui`` (the viewer)."""

from __future__ import annotations

import argparse
import signal
import sys

import zentrack as zt
from zentrack._cli.stores import init_for_read
from zentrack._cli.values import parse_value
from zentrack.exceptions import LockBusy, StoreError


def cmd_tag(args: argparse.Namespace) -> int:
    """``zentrack tag RUN [key=value...] [--remove KEY]... [--note TEXT | --clear-note]``.

    The change is journaled at once, then written; if another process holds
    the store's writer lock, it waits in the journal for the next flush and
    nothing is lost.
    """
    tags: dict[str, str | None] = {}
    for item in args.tags:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"zentrack: tags are key=value (got {item!r}), e.g. data=v2")
        tags[key] = value
    for key in args.remove or []:
        tags[key] = None
    if not tags and args.note is None and not args.clear_note:
        raise SystemExit(
            "zentrack: nothing to do: give key=value tags, --remove KEY, --note TEXT or "
            "--clear-note"
        )
    zt.init(args.store)
    run = zt.get_run(args.run_id)
    if tags:
        run.tag(**tags)
    if args.note is not None or args.clear_note:
        run.note(None if args.clear_note else args.note)
    try:
        zt.flush()
        where = "written"
    except (LockBusy, StoreError) as exc:
        where = f"journaled; written by the next flush ({exc})"
    shown = " ".join(f"{k}={v}" for k, v in run.tags.items()) or "(no tags)"
    note = "" if args.note is None and not args.clear_note else (
        "; note removed" if args.clear_note else "; note set"
    )
    print(f"run {run.id}: {shown}{note} ({where})")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """``zentrack ui [--host H] [--port N]``: serve the viewer until Ctrl-C."""
    from zentrack._report.server import start

    tracker = init_for_read(args.store)
    try:
        server = start(tracker, host=args.host, port=args.port, parse_value=parse_value)
    except OSError as exc:
        raise SystemExit(
            f"zentrack: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
            "pick another --port (0 picks a free one)"
        ) from None
    print(f"zentrack ui: {tracker.location.display} at {server.url}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"zentrack ui: listening on {args.host}: anyone who can reach it can read the "
            "store (there is no login); use --host 127.0.0.1 to keep it local",
            file=sys.stderr,
            flush=True,
        )
    print("(read-only; Ctrl-C stops it)", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM ends it as Ctrl-C does: quietly, exit 0

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
