"""The active tracker: where records go, and when they are flushed.

A tracked call hands :meth:`Tracker.record` one journal line.  The line is
appended to this process's journal (durable at once) and counted; MLMD is
written later, in batches: when ``batch_size`` lines are waiting, when the
oldest has waited ``max_age`` seconds, at interpreter exit, on ``flush()``
and before every read.  Size and age flushes run in a short-lived child
process, because MLMD holds the GIL for the whole of each write; explicit
flushes, reads and exit drain in this process.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    import subprocess

from zentrack._cache.outputs import OutputCache
from zentrack._files import make_dirs
from zentrack._log import configure as configure_log
from zentrack._progress import progress
from zentrack._record.backlog import Backlog
from zentrack._record.drain import drain, lock_timeout, start_drainer
from zentrack._record.journal import JournalWriter, pending_chunks
from zentrack._record.past_journal import PastJournal
from zentrack._store.discovery import discover
from zentrack._store.location import (
    ENV_PASSWORD_FILE,
    ENV_STORE,
    Location,
    export_store,
    parse,
)
from zentrack._store.mlmd import MetadataStore
from zentrack._store.sqlite_file import backup, checkpoint
from zentrack.exceptions import LockBusy, StoreError

log = logging.getLogger("zentrack")
#: Seconds an exiting process waits for the writer lock (the records stay in
#: the journal if it is held longer: the holder or a later process writes them).
EXIT_LOCK_TIMEOUT: Final = 10.0

ENV_CACHE: Final = "ZENTRACK_CACHE"
#: Where records are when the store could not take them from memory.
_IN_MEMORY: Final = (
    "The records stay in this process's memory and are written by a later flush; they are "
    "lost if the process exits first."
)


def _cache_from_env(default: bool) -> bool:
    value = os.environ.get(ENV_CACHE)
    if value is None:
        return default
    return value.strip().lower() not in ("0", "false", "no", "off", "")


class Tracker:
    """Receives the records of tracked calls and moves them to MLMD.

    Args:
        location: the parsed store address.
        artifacts: the folder for step outputs (default: ``artifacts`` beside
            the store).
        cache: whether cache hits may be served at all.
        batch_size: waiting records that trigger a background flush.
        max_age: seconds the oldest waiting record may wait.
        strict: reads and :func:`init` raise when the store cannot be used,
            instead of one warning while records wait in the journal.
    """

    def __init__(
        self,
        location: Location,
        *,
        artifacts: Path | None = None,
        cache: bool = True,
        batch_size: int = 1000,
        max_age: float = 2.0,
        strict: bool = False,
    ) -> None:
        self.location = location
        #: Store errors raise (``on_store_error="raise"``) instead of a warning.
        self.strict = strict
        self.store = MetadataStore(location)
        # A server or in-memory store has no folder of its own in the project.
        project = discover().folder if location.path is None else location.path.parent
        base = location.state_dir or project
        self.artifacts = artifacts or base / "artifacts"
        #: Cached step outputs, one folder per fingerprint.
        self.outputs = OutputCache(self.artifacts, vouch=self._vouch_output)
        #: Where pipeline runs write their YAML configs: beside a SQLite store,
        #: else in the project's .zentrack/ (not in a server store's cache folder).
        self.configs = project / "configs"
        self.cache = _cache_from_env(cache)
        self.batch_size = batch_size
        self.max_age = max_age
        #: Idle seconds a background drainer waits for more records before exiting.
        self.linger = max(2.0, max_age)
        journal_dir = location.journal_dir
        self._journal = (
            JournalWriter(journal_dir, create_parents=location.path is None)
            if journal_dir is not None
            else None
        )
        self._append = self._journal.append if self._journal is not None else None
        self._backlog = Backlog(journal_dir) if journal_dir is not None else None
        self._memory_lines: list[bytes] = []
        self._waiting = 0
        self._oldest: float | None = None  # monotonic time of the oldest waiting record
        self._ager: threading.Thread | None = None
        self._stop = threading.Event()
        self._drainer: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._warned = False
        #: Set by an implicit init that could not make the store's folder (and
        #: said so): records then wait in memory instead of failing the calls.
        self.memory_only = False
        #: The file holding the store password for child processes (see export_store).
        self.password_file: Path | None = None
        self._past_journal = PastJournal(location)
        self.id_prefix, self.ids = _record_ids()

    # -- the hot path --------------------------------------------------------

    def record(self, line: str) -> None:
        """Make one journal line durable and schedule it for MLMD.

        Raises:
            StoreError: neither the journal nor the store can take the line
                (a full disk, a read-only folder): the call is not recorded.
        """
        data = line.encode()
        append = self._append
        if append is not None:
            try:
                append(data)
            except OSError as exc:
                if self._record_without_journal(exc, data):
                    return
        else:
            self._memory_lines.append(data)
        self._waiting += 1
        if self._waiting >= self.batch_size:
            self._flush_soon()
        elif self._oldest is None:
            self._oldest = time.monotonic()
            if self._ager is None:
                self._start_ager()

    def _record_without_journal(self, exc: OSError, data: bytes) -> bool:
        """The journal cannot take ``data``: write it straight to the store, or raise.

        See :mod:`.past_journal`.  The one exception is a tracker whose store
        folder could not be made at implicit init (:attr:`memory_only`,
        announced then): it keeps records in memory.

        Returns:
            True if the line is in the store; False if it waits in memory.
        """
        if self.memory_only:
            self._append = None  # tried again after the next successful flush
            self._memory_lines.append(data)
            return False
        self._past_journal.write(exc, data, self.store, self._lock)
        return True

    # -- flushing --------------------------------------------------------------

    def _vouch_output(self, fingerprint: str, refresh: bool) -> dict[str, Any] | None:
        """What the store recorded of a cached output (see :class:`OutputCache`).

        With ``refresh``, waiting records are written first: the record of
        the process that produced the output may still be in a journal.  A
        store that cannot be read vouches for nothing (the step runs again).
        """
        if refresh:
            with contextlib.suppress(StoreError):  # strict mode raises: a miss, not an error
                self.flush_for_read()
        try:
            return self.store.output_digest(fingerprint)
        except Exception as exc:
            log.warning(
                "zentrack: cannot check the cached output %s… against the store (%s); the step "
                "runs again.",
                fingerprint[:12],
                exc,
            )
            return None

    def __repr__(self) -> str:
        return f"Tracker(store={self.location.display!r}, artifacts={str(self.artifacts)!r})"

    def _start_ager(self) -> None:
        """One daemon thread per tracker enforces ``max_age``.

        Starting a thread costs about 2 ms, so it is started once and then
        sleeps; the hot path only notes when the oldest waiting record arrived.
        """
        ager = threading.Thread(target=self._age_loop, name="zentrack-flush-age", daemon=True)
        self._ager = ager
        ager.start()

    def _age_loop(self) -> None:
        while not self._closed:
            oldest = self._oldest
            delay = self.max_age if oldest is None else oldest + self.max_age - time.monotonic()
            if delay > 0:
                self._stop.wait(min(delay, self.max_age))
                continue
            self._flush_soon()

    def _flush_soon(self) -> None:
        """Start a background flush unless one is running (size or age trigger).

        Records that arrive while a drainer is busy keep their age, so the
        age trigger starts another drainer for them later.
        """
        with self._lock:
            self._waiting = 0
            if self._closed or (self._oldest is None and not self._memory_lines):
                return
            if self._journal is None or self._memory_lines:
                self._oldest = None
                self._flush_memory_quietly()
                return
            if self._drainer is not None and self._drainer.poll() is None:
                if time.monotonic() - (self._oldest or 0) >= self.max_age:
                    self._oldest = time.monotonic()  # check again after another max_age
                return
            self._oldest = None
            self._reap_drainer()
            self._drainer = start_drainer(self.location, self.linger)

    def _flush_memory_quietly(self) -> None:
        try:
            self._flush_memory()
        except StoreError as exc:
            self.store_failed(exc)

    def store_failed(self, exc: Exception) -> None:
        """Say once per process that the store cannot take records, where they wait, what to do.

        Tracked calls go on (they are journaled); every later failure of
        the same store is silent, so one unreachable server is one warning,
        not one per flush, read and exit.
        """
        if self._warned:
            return
        self._warned = True
        waiting = self.location.journal_dir
        where = f"wait in {waiting}" if waiting is not None else "wait in this process's memory"
        log.warning(
            "zentrack: %s; tracked calls still run and their records %s: run `zentrack flush` "
            "once the store is back (any later run on it also sends them), or set "
            "ZENTRACK_STRICT=1 to stop at the first call instead.",
            exc,
            where,
        )

    def _reap_drainer(self) -> None:
        """Collect the background drainer if it has exited (never waits for it)."""
        drainer = self._drainer
        if drainer is None or drainer.poll() is None:
            return
        self._drainer = None
        _, err = drainer.communicate()
        # -SIGUSR1: released (see _release_drainer) before it could set its handler
        if drainer.returncode not in (0, -signal.SIGUSR1):
            text = err.decode(errors="replace").strip().removeprefix("zentrack: ")
            code = drainer.returncode
            self.store_failed(StoreError(text or f"background flush: exit code {code}"))

    def _flush_memory(self) -> int:
        lines, self._memory_lines = self._memory_lines, []
        try:
            return self.store.write(lines, kept=_IN_MEMORY)
        except BaseException:
            self._memory_lines[:0] = lines
            raise

    def flush(
        self, timeout: float | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """Write every waiting record to MLMD now; return how many were written.

        Waits at most ``timeout`` seconds (default ``$ZENTRACK_LOCK_TIMEOUT``
        or 30) for another process's writer lock, then raises a
        :class:`~zentrack.exceptions.StoreError` naming the holder.
        ``progress(n)`` hears of each batch written (for a progress bar).
        """
        with self._lock:
            self._oldest = None
            self._waiting = 0
            if self._journal is None:
                return self._flush_memory()
            self._reap_drainer()
            pending, dead = self._backlog.scan() if self._backlog is not None else (True, [])
            written = 0 if not (pending or dead) else drain(  # nothing waits: no lock, no write
                self.location, self.store, reconcile=bool(dead), timeout=timeout, progress=progress
            )
            if self._memory_lines:  # the journal could not be written
                written += self._flush_memory()
            if self._append is None:  # try the journal again: the folder may be fixed
                self._append = self._journal.append
            return written

    def flush_for_read(self) -> None:
        """Flush before a read; if the store cannot take the records, read anyway.

        Nothing waiting costs no lock and no write (:mod:`.backlog`).  A read-only
        store, a full disk or a stuck writer must not hide what the store holds:
        the read goes on, warning how many records it cannot show yet and why.
        """
        try:  # records wait here or in any journal, or a dead run waits to be marked FAILED
            if self._memory_lines or (self._backlog is not None and any(self._backlog.scan())):
                self.flush()
        except StoreError as exc:
            if self.strict:
                raise
            waiting = self.pending()
            if waiting:
                self.store_failed(exc)
                log.info("zentrack: %d record(s) waiting are not in this read", waiting)
            else:
                log.debug("zentrack: flush before a read failed, nothing was waiting: %s", exc)
        if self.store.is_open:
            with self._lock:  # no flush uses MLMD now: the read may close it
                self.store.release()

    def has_stale_journals(self) -> bool:
        """Tell whether records of dead processes wait in this store's journals."""
        directory = self.location.journal_dir
        if directory is None or not directory.is_dir():
            return False
        return any(not c.writer_alive and c.lines for c in pending_chunks(directory))

    def close(self) -> None:
        """Flush and release the journal (at exit, or when replaced by ``init``)."""
        if self._closed:
            return
        if self._journal is not None:
            self._journal.close()
        self._release_drainer()
        waiting = 1
        try:
            # Nothing waiting: tidy the journals only if the lock is free right now.
            waiting = self.pending()
            self.flush(timeout=lock_timeout(EXIT_LOCK_TIMEOUT) if waiting else 0.0)
        except Exception as exc:  # at exit: report, never raise
            if not waiting and isinstance(exc, LockBusy):
                pass  # another process is writing; it retires what is finished
            elif self._memory_lines:
                log.error(
                    "zentrack: %d record(s) of this process are lost: the journal folder %s "
                    "could not be written and the store could not take them (%s). Make the "
                    "folder writable to keep records of later runs.",
                    len(self._memory_lines),
                    self.location.journal_dir,
                    exc,
                )
            else:
                self.store_failed(exc)
        with contextlib.suppress(Exception):
            self._checkpoint()
        if self._backlog is not None:
            self._backlog.close()
        if self.password_file is not None:
            self.password_file.unlink(missing_ok=True)
            if os.environ.get(ENV_PASSWORD_FILE) == str(self.password_file):
                del os.environ[ENV_PASSWORD_FILE]
        self._closed = True
        self._stop.set()

    def _release_drainer(self) -> None:
        """Ask a lingering background drainer to exit after its current batch.

        Nothing waits for it: this process drains what is left itself, under
        the writer lock, so exit costs no drainer linger time.
        """
        drainer = self._drainer
        if drainer is not None and drainer.poll() is None:
            with contextlib.suppress(OSError):
                drainer.send_signal(signal.SIGUSR1)
        self._reap_drainer()

    def _checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the store file (see :func:`checkpoint`)."""
        path = self.location.path
        if path is None or not path.exists():
            return
        self.store.reset()  # MLMD's connection goes; the next use reopens it
        checkpoint(path)

    def pending(self) -> int:
        """Count the records waiting in this store's journals (all processes)."""
        directory = self.location.journal_dir
        if directory is None or not directory.is_dir():
            return len(self._memory_lines)
        chunks = pending_chunks(directory)
        return sum(len([ln for ln in c.lines if ln.strip()]) for c in chunks) + len(
            self._memory_lines
        )

    def migrate(self) -> Path | None:
        """Upgrade an older MLMD schema in place, after copying the file aside.

        Returns:
            The backup's path (SQLite stores), else ``None``.
        """
        path = self.location.path
        copy = backup(path) if path is not None and path.exists() else None
        self.store.migrate()
        return copy

    def after_fork(self) -> None:
        """In a forked child: a fresh journal, id sequence and flush state."""
        if self._journal is not None:
            self._journal.forget_after_fork()
        if self._backlog is not None:
            self._backlog.forget()
        self._memory_lines = []
        self._waiting = 0
        self._oldest = None
        self._ager = None
        self._stop = threading.Event()
        self._drainer = None
        self._lock = threading.Lock()
        self.store = MetadataStore(self.location)
        self.password_file = None  # the parent's: it removes it
        self.id_prefix, self.ids = _record_ids()


def _record_ids() -> tuple[str, itertools.count[int]]:
    """Record ids unique across processes: a random prefix and a counter."""
    return f"{os.urandom(8).hex()}-", itertools.count()


_active: Tracker | None = None


def active() -> Tracker:
    """Return the active tracker, initialising the default store on first use."""
    return _active if _active is not None else _init(None, implicit=True)


def init(
    store: str | os.PathLike[str] | None = None,
    *,
    artifacts: str | os.PathLike[str] | None = None,
    cache: bool = True,
    on_store_error: Literal["warn", "raise"] | None = None,
) -> Tracker:
    """Choose the store (and artifact folder) that tracked calls write to.

    Optional: the first tracked call initialises ``$ZENTRACK_STORE``, else
    the project's store: the nearest ``.zentrack/`` found upward from the
    current folder, like git (see ``zentrack store info``).  Records that
    dead processes left in this store's journals are written now.

    Args:
        store: a path, ``sqlite:///abs/path.db``, ``:memory:``,
            ``postgresql://user:pw@host:port/db`` or ``mysql://…``.
        artifacts: where step outputs are kept.
        cache: ``False`` turns cache hits off for every step.
        on_store_error: ``"warn"`` (the default): a store that cannot be
            reached is one warning, tracked calls still run and their
            records wait in the journal until ``zentrack flush`` or a later
            run sends them.  ``"raise"``: the store is opened now and a
            :class:`~zentrack.exceptions.StoreError` raised if it cannot be
            (and reads raise too).  ``$ZENTRACK_STRICT=1`` means ``"raise"``.

    Returns:
        The active tracker.
    """
    return _init(store, artifacts=artifacts, cache=cache, on_store_error=on_store_error)


def _init(
    store: str | os.PathLike[str] | None,
    *,
    artifacts: str | os.PathLike[str] | None = None,
    cache: bool = True,
    implicit: bool = False,
    on_store_error: str | None = None,
) -> Tracker:
    """:func:`init`; ``implicit`` when a tracked call initialises the store.

    A store path in a missing folder raises from an explicit ``init`` (more
    likely a typo than an intention); from a tracked call the folder is
    created with a warning, since tracking never breaks user code and an
    in-memory fallback would lose the records if the process then died.
    """
    global _active
    try:
        configure_log()
    except ValueError as exc:  # a typo in the environment must not stop the user's code
        log.warning("zentrack: %s", exc)
    strict = _strict(on_store_error)
    location = parse(store)
    memory_only = False
    if location.path is not None and not location.path.parent.is_dir():
        # The store's own folder (./.zentrack) is created; a missing folder above
        # it is more likely a typo than an intention, and gets a clear error.
        own_folder = location.path.parent.parent.is_dir()  # ./.zentrack is ours to make
        if own_folder and not implicit:
            make_dirs(location.path.parent, parents=False)
        elif own_folder or implicit:  # a tracked call: keep the records, never raise
            try:
                make_dirs(location.path.parent)
            except OSError as exc:  # records then wait in memory (see memory_only)
                memory_only = True
                log.warning(
                    "zentrack: cannot create the folder %r for the store named by $%s (%s); "
                    "records of this process are kept in memory until a flush can write them.",
                    str(location.path.parent),
                    ENV_STORE,
                    exc,
                )
            else:
                if not own_folder:
                    log.warning(
                        "zentrack: created the folder %r for the store named by $%s, which "
                        "did not exist; if that path is a typo, move the folder and fix $%s.",
                        str(location.path.parent),
                        ENV_STORE,
                        ENV_STORE,
                    )
        else:
            raise StoreError(
                f"Store {str(location.path)!r}: the directory {str(location.path.parent)!r} "
                "does not exist; create it first, or pass another path to zentrack.init()."
            )
    tracker = Tracker(
        location,
        artifacts=Path(artifacts).absolute() if artifacts is not None else None,
        cache=cache,
        strict=strict,
    )
    tracker.memory_only = memory_only
    if strict:
        tracker.store.mlmd  # noqa: B018  (opens the store now: raises StoreError if it cannot)
    if _active is not None:
        _active.close()
    _active = tracker
    # Spawned workers (spawn/forkserver pools, Dask) start a new interpreter:
    # they find the same store through the environment, without its password.
    tracker.password_file = export_store(location)
    if tracker.has_stale_journals():
        try:  # a busy lock means another process is draining: it writes them
            with progress("zentrack: writing records of ended processes") as bar:
                tracker.flush(timeout=0.0, progress=bar.advance)
        except LockBusy:
            log.debug("zentrack: store busy; records of ended processes are left to its writer")
        except StoreError as exc:
            tracker.store_failed(exc)
    return tracker


#: ``ZENTRACK_STRICT=1``: ``on_store_error="raise"`` for every ``init``, implicit ones too.
ENV_STRICT: Final = "ZENTRACK_STRICT"


def _strict(on_store_error: str | None) -> bool:
    if on_store_error is None:
        flag = os.environ.get(ENV_STRICT, "").strip().lower()
        return flag not in ("", "0", "false", "no")
    if on_store_error not in ("warn", "raise"):
        raise ValueError(
            f"on_store_error must be 'warn' or 'raise' (got {on_store_error!r}); 'raise' stops "
            "at the first call when the store cannot be reached."
        )
    return on_store_error == "raise"


def _at_exit() -> None:
    if _active is not None:
        _active.close()


def _after_fork_in_child() -> None:
    if _active is not None:
        _active.after_fork()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
