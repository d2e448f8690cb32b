"""Moving journaled records into MLMD, one writer at a time.

Draining takes an advisory ``flock`` on the store's lock file, so writers of
one SQLite store queue up on the lock instead of hitting MLMD's
"database is locked" retries.  It runs in the tracking process (explicit
``flush()``, reads, exit) or, for size and age flushes, in a child process the
tracker starts with ``python -c`` calling :func:`main` (``STORE LINGER``):
MLMD holds the GIL for a whole write, so the user's threads keep running, and
the child lingers (:func:`drain_while_busy`) to take the next batches without
a new interpreter importing MLMD for each.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import subprocess

from zentrack._files import is_link_error, make_dirs, open_own
from zentrack._record.backlog import Backlog, retire_dead_markers
from zentrack._record.journal import (
    Chunk,
    alive_path,
    pending_chunks,
    retire,
    write_offset,
    writer_alive,
    writer_tag,
)
from zentrack._store.location import (
    ENV_PASSWORD,
    ENV_PASSWORD_FILE,
    ENV_STORE,
    Location,
    parse,
)
from zentrack._store.mlmd import MetadataStore
from zentrack._store.schema import PROP_RECORD, PROP_STATE
from zentrack.exceptions import LockBusy, StoreError

log = logging.getLogger("zentrack")

#: Records per MLMD write call: large enough to amortise each call's fixed cost.
BATCH = 1000
#: Present while a batch is being committed (see :func:`drain_journals`).
INFLIGHT = ".inflight"
#: Malformed journal lines set aside by a drain (see :class:`Quarantine`).
QUARANTINE_PREFIX = "quarantined-"
QUARANTINE_SUFFIX = ".txt"


#: Seconds a flush waits for another process's writer lock before giving up
#: (the records stay in the journal).  ``$ZENTRACK_LOCK_TIMEOUT`` overrides it.
LOCK_TIMEOUT = 30.0


def lock_timeout(default: float = LOCK_TIMEOUT) -> float:
    """The writer-lock wait in seconds: ``$ZENTRACK_LOCK_TIMEOUT`` or ``default``."""
    try:
        return float(os.environ.get("ZENTRACK_LOCK_TIMEOUT", default))
    except ValueError:
        return default


@contextlib.contextmanager
def writer_lock(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the store's writer lock for the duration of the block.

    Waits at most ``timeout`` seconds (``None``: :func:`lock_timeout`), then
    raises :class:`LockBusy` naming the holder, so a stuck process (stopped,
    hung on a network store) cannot hang every other writer.  The holder
    writes its pid into the lock file for that message.
    """
    try:
        make_dirs(path.parent)
        fd = open_own(path, os.O_RDWR)
    except OSError as exc:
        if is_link_error(exc):
            raise StoreError(
                f"Store writer lock {str(path)!r} is a symbolic link; zentrack does not follow "
                "links in its folders (someone who can write the folder made it): remove it."
            ) from None
        raise StoreError(
            f"Store writer lock {str(path)!r} cannot be created ({exc.strerror or exc}): the "
            "store's folder must be writable to record into it; make it writable or pass "
            "another store."
        ) from None
    try:
        _acquire(fd, path, lock_timeout() if timeout is None else timeout)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockBusy(_busy_message(fd, path, timeout)) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.02)


def _busy_message(fd: int, path: Path, timeout: float) -> str:
    pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    return (
        f"Store writer lock {str(path)!r} is held by process {pid} and was not released "
        f"within {timeout:g} s. The records wait in the journal and are written by a "
        f"later flush. If process {pid} is stuck (stopped, hung), end it "
        "(kill it): no record is lost, its batch is replayed. Set ZENTRACK_LOCK_TIMEOUT "
        "to wait longer."
    )


def drain_journals(
    store: MetadataStore,
    journal_dir: Path,
    batch: int = BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every complete journal line not yet in the store; return the count.

    The caller holds the writer lock; ``progress(n)`` hears of each batch.
    Offsets advance only after MLMD has committed the lines before them, so
    a crash at any point replays at most one batch, which the store then
    recognises by record id.
    """
    written = 0
    lines: list[bytes] = []
    origins: list[tuple[Path, int]] = []  # where each line starts: for the quarantine
    marks: list[tuple[Path, int]] = []
    finished: list[Chunk] = []
    inflight = journal_dir / INFLIGHT
    quarantine = Quarantine(journal_dir)
    # A marker left behind means a drainer died between an MLMD commit and its
    # offsets: only then is each record looked up before it is written.
    check_existing = os.path.lexists(inflight)

    def commit() -> None:
        nonlocal written
        if lines:
            _mark(inflight)
            rejected: list[tuple[int, str]] = []
            written += store.write(lines, check_existing=check_existing, rejected=rejected)
            for index, reason in rejected:  # set aside before the offsets pass them
                quarantine.add(lines[index], *origins[index], reason)
            if progress is not None:
                progress(len(lines))
        for path, offset in marks:
            write_offset(path, offset)
        inflight.unlink(missing_ok=True)
        lines.clear()
        origins.clear()
        marks.clear()

    for chunk in pending_chunks(journal_dir):
        position = chunk.start
        for line in chunk.lines:
            if line.strip():
                lines.append(line)
                origins.append((chunk.path, position))
            position += len(line) + 1
            if len(lines) >= batch:
                marks.append((chunk.path, position))
                commit()
        if chunk.end > chunk.start:  # an offset that did not move is not rewritten
            marks.append((chunk.path, chunk.end))
        finished.append(chunk)
    commit()
    quarantine.report()
    for chunk in finished:
        retire(chunk)
    return written


def _mark(path: Path) -> None:
    """Create the marker file ``path``; a link planted there is removed, never followed."""
    try:
        fd = open_own(path, os.O_WRONLY)
    except OSError as exc:
        if not is_link_error(exc):
            raise
        path.unlink()  # removes the link itself
        fd = open_own(path, os.O_WRONLY, exclusive=True)
    os.close(fd)


class Quarantine:
    """Where one drain sets aside the journal lines that are not valid records.

    A malformed line (a disk fault, or planted by whoever can write the
    journal folder) must neither block the records around it nor vanish
    unseen: it is copied, with where it came from and why it was refused,
    into one new file in the journal folder, named in one warning.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path: Path | None = None
        self.count = 0
        self.first = ""

    def add(self, line: bytes, journal: Path, offset: int, reason: str) -> None:
        if self.path is None:
            self.path = self.directory / f"{QUARANTINE_PREFIX}{writer_tag()}{QUARANTINE_SUFFIX}"
        entry = f"# {journal.name} byte {offset}: {reason}\n".encode(errors="replace")
        fd = open_own(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, entry + line + b"\n")
        finally:
            os.close(fd)
        self.count += 1
        self.first = self.first or reason

    def report(self) -> None:
        if self.path is not None:
            log.warning(
                "zentrack: %d malformed journal line(s) were not written to the store and "
                "were moved to '%s' (first: %s); every other record was written. A disk "
                "fault, or someone who can write '%s', made them.",
                self.count,
                self.path,
                self.first,
                self.directory,
            )


def drain(
    location: Location,
    store: MetadataStore | None = None,
    *,
    reconcile: bool = False,
    timeout: float | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Drain all journals of ``location`` under its writer lock.

    With ``reconcile``, also mark FAILED the runs whose process died (the
    caller found a dead process's ``.alive`` marker: see :mod:`.backlog`).
    ``timeout`` bounds the wait for the lock (see :func:`writer_lock`);
    ``progress(n)`` hears of each batch written.
    """
    assert location.journal_dir is not None and location.lock_path is not None
    if not location.journal_dir.is_dir():
        return 0
    store = store or MetadataStore(location)
    with writer_lock(location.lock_path, timeout):
        try:
            written = drain_journals(store, location.journal_dir, progress=progress)
            if reconcile:
                reconcile_runs(store, location.journal_dir)
                retire_dead_markers(location.journal_dir)
        except OSError as exc:  # offsets and finished journals are kept in that folder
            raise StoreError(
                f"Journal folder {str(location.journal_dir)!r} cannot be written "
                f"({exc.strerror or exc}); make it writable. Nothing is lost: what is "
                "already in the store stays there and the journals are replayed safely."
            ) from None
        return written


def reconcile_runs(store: MetadataStore, journal_dir: Path) -> list[str]:
    """Mark FAILED the RUNNING runs of processes of this host that are gone.

    A running pipeline holds a lock on its ``.alive`` file (see
    :mod:`zentrack._runs.pipeline`); if the lock can be taken, the process died
    without recording the end of its run.  Returns the run ids marked.

    The run record names its ``.alive`` file, and anyone who can write the
    store or the journal folder can write a run record: a name that is not
    one zentrack makes (:func:`~zentrack._record.journal.alive_path`) is
    ignored with a warning, never opened or deleted.
    """
    host = os.uname().nodename
    marked = []
    refused = []
    for context in store.run_contexts():
        props = context.custom_properties
        if PROP_STATE not in props or props[PROP_STATE].string_value != "RUNNING":
            continue
        try:
            data = json.loads(props[PROP_RECORD].string_value or "{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            refused.append(context.name)
            continue
        alive = data.get("alive")
        if data.get("host") != host or not alive:
            continue  # another machine's run: it may well be running
        path = alive_path(journal_dir, alive)
        if path is None:
            refused.append(context.name)
            continue
        if writer_alive(path):
            continue
        store.mark_run(
            context.name,
            "FAILED",
            f"process {data.get('pid')} on {host} ended without finishing the run "
            "(killed or crashed); its completed steps are recorded",
        )
        path.unlink(missing_ok=True)
        marked.append(context.name)
    if refused:
        log.warning(
            "zentrack: %d RUNNING run record(s) name no .alive file zentrack made (run %s); "
            "they were left RUNNING and no file they name was touched. Someone who can write "
            "the store or %s wrote them: check who.",
            len(refused),
            ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else ""),
            str(journal_dir),
        )
    return marked


def drain_while_busy(location: Location, linger: float, poll: float = 0.05) -> int:
    """Drain, then keep draining new journal lines until ``linger`` idle seconds.

    A drainer that stays a little while saves the tracking process from
    starting (and Python from importing MLMD in) a new one per batch.  New
    lines are noticed by the same lock-free probe reads use (:class:`Backlog`);
    only a drain that wrote something counts as activity, so a line whose
    copy never ends (a writer stopped mid-append) cannot keep it lingering.
    """
    assert location.journal_dir is not None
    released = threading.Event()  # SIGUSR1: the tracking process is exiting
    with contextlib.suppress(ValueError):  # not the main thread: linger fully
        signal.signal(signal.SIGUSR1, lambda *_: released.set())
    store = MetadataStore(location)
    backlog = Backlog(location.journal_dir)
    try:
        written = drain(location, store)
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < linger and not released.is_set():
            time.sleep(poll)
            if backlog.pending():
                drained = drain(location, store)
                written += drained
                if drained:
                    idle_since = time.monotonic()
    finally:
        backlog.close()
    return written


#: The background drainer's program (not ``-m``: no runpy warning if the drain is imported).
_DRAINER: Final = (
    "import sys; from zentrack._record.drain import main; sys.exit(main(sys.argv[1:]))"
)
_PACKAGE_PARENT: Final = str(Path(__file__).resolve().parents[2])
#: Left out of the background drainer's environment: it gets the store through a pipe.
_SECRET_ENV: Final = frozenset({ENV_STORE, ENV_PASSWORD, ENV_PASSWORD_FILE})


def start_drainer(location: Location, linger: float) -> subprocess.Popen[bytes]:
    """Start a background drainer process for ``location`` (see :func:`drain_while_busy`).

    The store (password included) goes through a pipe: a command line is
    visible to every local user (``ps``) and an environment to the user's
    other processes, so neither holds it.
    """
    import subprocess  # only here: keeps `import zentrack` light

    env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
    env.setdefault("GLOG_minloglevel", "2")
    drainer = subprocess.Popen(
        [sys.executable, "-c", _DRAINER, "-", str(linger)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    assert drainer.stdin is not None
    with contextlib.suppress(OSError):  # a drainer that died at once is reaped later
        drainer.stdin.write(location.spec().encode() + b"\n")
    with contextlib.suppress(OSError):
        drainer.stdin.close()
    drainer.stdin = None  # communicate() must not touch the closed pipe
    return drainer


def main(argv: list[str]) -> int:
    """Entry point of the background drainer process: ``STORE [LINGER_SECONDS]``.

    ``STORE`` ``-`` reads the store from the first line of stdin: how the
    tracker passes it, since a command line is visible to every local user
    (``ps``) and the store URL may hold a password.
    """
    if len(argv) not in (1, 2):
        print("usage: python -m zentrack._record.drain STORE [LINGER_SECONDS]", file=sys.stderr)
        return 2
    store = sys.stdin.readline().rstrip("\n") if argv[0] == "-" else argv[0]
    try:
        drain_while_busy(parse(store), float(argv[1]) if len(argv) == 2 else 0.0)
    except StoreError as exc:
        print(f"zentrack: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
