"""The output cache: one folder per fingerprint under the artifact store.

``<artifacts>/<fp[:2]>/<fp>/`` holds the output of the COMPLETE call with
that fingerprint and a ``meta.json`` naming it (materializer, type, sha256,
the record id of the call that made it).  Folders appear atomically (a
rename), so a reader never sees half an output.

The folder may be writable by others (a shared project folder), and a
pickle runs code when loaded, so nothing in it is trusted: before an entry
is used, its bytes are checked against what the store recorded of it (the
``zentrack.Output/<fp>`` artifact, written by the process that produced the
output), asked through ``vouch``.  The first hit of an entry in a process
costs that one indexed MLMD read; later hits of it, and entries this
process wrote, are trusted while the data file keeps its inode, size and
times (two ``lstat``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from zentrack._cache.materializers import (
    CorruptOutput,
    StaleOutput,
    checked_bytes,
    materializer_named,
    read_output,
    write_output,
)
from zentrack._files import PRIVATE_DIR, make_dirs, make_private, read_own, shared_with_group
from zentrack._step.values import decode_exact, exact_value

log = logging.getLogger("zentrack")
#: Names of the cache's own folders: shards ``<fp[:2]>`` and entries ``<fp>``.
_SHARD = re.compile(r"[0-9a-f]{2}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
#: What a hit's record says of the output (the journal line's ``out``).
_OUTPUT_KEYS = ("materializer", "type", "sha256", "size")


def _rmtree(path: Path, ignore_errors: bool = True) -> None:
    import shutil  # imported on use: keeps `import zentrack` light

    shutil.rmtree(path, ignore_errors=ignore_errors)

_disabled: contextvars.ContextVar[bool] = contextvars.ContextVar("zentrack_no_cache", default=False)
cache_disabled = _disabled.get


@contextlib.contextmanager
def no_cache() -> Iterator[None]:
    """Run the step calls inside this block without serving them from the cache.

    They still run, are recorded and refresh the cached output.
    """
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


#: JSON outputs up to this size are kept in memory once verified.
_MEMO_BYTES = 1 << 16


_Stamp = tuple[int, int, int, int, int, int]
#: ``vouch(fingerprint, refresh)``: what the store recorded of the cached output of
#: ``fingerprint`` (``materializer``, ``type``, ``sha256``, ``size``), or None;
#: ``refresh`` writes waiting records first (the producer's may not be in yet).
Vouch = Callable[[str, bool], "Mapping[str, Any] | None"]


def _stamp(data: Path) -> _Stamp:
    """The data file's inode, size and times, and its ``meta.json``'s inode and time."""
    st = os.lstat(data)
    meta = os.lstat(data.with_name("meta.json"))
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, meta.st_ino, meta.st_ctime_ns


def _make_own(folder: Path) -> None:
    """Give a new entry and the files its materializer wrote zentrack's modes.

    Materializers write with the umask's mode (0644 under umask 022); an
    output is the user's data, private unless ``ZENTRACK_SHARE=group``.
    """
    if shared_with_group():
        os.chmod(folder, 0o2770)
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False):
            make_private(entry.path)


def _load(meta: dict[str, Any], data: Path) -> Any:
    return materializer_named(meta["materializer"]).load(data)


def _real_dir(path: Path) -> bool:
    """Tell whether ``path`` is a folder itself, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _hit_meta(folder: Path, meta: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, Any]:
    """The meta a hit is recorded with: the output as the store knows it.

    ``meta.json`` only adds the original's record id (checked by the caller) and metrics.
    """
    metrics = meta.get("metrics")
    hit: dict[str, Any] = {k: expected[k] for k in _OUTPUT_KEYS if k in expected}
    hit.update(
        uri=str(folder), record=meta["record"], metrics=metrics if isinstance(metrics, dict) else {}
    )
    return hit


class OutputCache:
    """Cached step outputs in the folder ``root``.

    Args:
        root: the folder.
        vouch: what the store recorded of an output (see :data:`Vouch`);
            without it no entry this process did not write is ever used.
    """

    def __init__(self, root: Path, vouch: Vouch | None = None) -> None:
        self.root = root
        self._vouch = vouch
        #: fingerprint -> (meta, data file, its stat stamp, JSON text or None)
        self._verified: dict[str, tuple[dict[str, Any], Path, _Stamp, str | None]] = {}
        self._put_warned = False

    def folder(self, fingerprint: str) -> Path:
        """Where the output of the call ``fingerprint`` lives."""
        return self.root / fingerprint[:2] / fingerprint

    def get(self, fingerprint: str) -> tuple[dict[str, Any], Any] | None:
        """Return ``(meta, output)`` of a cached call, or ``None`` on a miss.

        A folder that cannot be read back intact, or whose bytes are not the
        ones the store recorded, is a miss, with a warning.  An entry this
        process verified or wrote is trusted again while its data file keeps
        the same inode, size and times, and its meta.json too (two ``lstat``), and small JSON
        outputs are kept as text: a warm hit then reads no file at all.
        """
        memo = self._verified.get(fingerprint)
        if memo is not None:
            meta, data, stamp, text = memo
            try:
                now = _stamp(data)
            except OSError:
                now = None
            if now == stamp:
                try:
                    value = decode_exact(text) if text is not None else _load(meta, data)
                    return meta, value
                except Exception:  # fall back to the full, verifying read
                    pass
            del self._verified[fingerprint]
        found = self._read(fingerprint)
        if found is not None:
            meta = found[0]
            data = self.folder(fingerprint) / materializer_named(meta["materializer"]).filename
            self._remember(fingerprint, meta, data)
        return found

    def _remember(self, fingerprint: str, meta: dict[str, Any], data: Path) -> None:
        """Trust this entry again while its data file is unchanged (see :meth:`get`)."""
        with contextlib.suppress(OSError, CorruptOutput):
            stamp = _stamp(data)
            text = None
            if meta.get("materializer") == "json" and meta.get("size", 0) <= _MEMO_BYTES:
                text = read_own(data, limit=_MEMO_BYTES).decode()
            self._verified[fingerprint] = (meta, data, stamp, text)

    def _read(self, fingerprint: str) -> tuple[dict[str, Any], Any] | None:
        if _FINGERPRINT.fullmatch(fingerprint) is None:
            return None
        folder = self.folder(fingerprint)
        if not _real_dir(folder.parent) or not _real_dir(folder):
            if any(os.path.lexists(p) and not _real_dir(p) for p in (folder.parent, folder)):
                log.warning(
                    "zentrack: cache entry %s is not a folder zentrack made (a link?); "
                    "running the step instead.",
                    folder,
                )
            return None
        try:
            meta = json.loads(read_own(folder / "meta.json"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("zentrack: bad cache entry %s (%s); rerunning.", folder, exc)
            return None
        if not isinstance(meta, dict):
            log.warning("zentrack: bad cache entry %s (no meta data); rerunning.", folder)
            return None
        expected = self._expected(fingerprint, meta)
        if expected is None:
            log.debug("zentrack: nothing in the store vouches for %s; rerunning.", folder)
            return None
        record = meta.get("record")
        if not isinstance(record, str) or not 0 < len(record) <= 200 or not record.isprintable():
            log.warning("zentrack: bad cache entry %s (no record id); rerunning.", folder)
            return None
        if meta.get("materializer") != expected["materializer"]:
            log.warning(
                "zentrack: cache entry %s says materializer %r, the store recorded %r; "
                "rerunning.",
                folder,
                meta.get("materializer"),
                expected["materializer"],
            )
            return None
        try:
            value = read_output(folder, expected)
        except StaleOutput as exc:
            log.info("zentrack: cached output %s is stale (%s); rerunning.", folder, exc)
            return None
        except CorruptOutput as exc:
            log.warning("zentrack: cached output %s is corrupt (%s); rerunning.", folder, exc)
            return None
        except Exception as exc:  # a materializer's own failure
            log.warning("zentrack: could not load cached output %s (%r); rerunning.", folder, exc)
            return None
        return _hit_meta(folder, meta, expected), value

    def _expected(self, fingerprint: str, meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """What the store recorded of the entry; asked again after a flush if it disagrees."""
        if self._vouch is None:
            return None
        expected = self._vouch(fingerprint, False)
        if expected is None or expected.get("sha256") != meta.get("sha256"):
            expected = self._vouch(fingerprint, True)  # the producer's record may be waiting
        return expected

    def put(
        self,
        fingerprint: str,
        value: Any,
        record_id: str,
        step: str,
        metrics: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Store a call's output; return its meta, or ``None`` if it cannot be stored.

        Failing to store never fails the call: the result is still returned,
        only this cache write is skipped (with a warning; one per process for
        a disk that is full or a folder that cannot be written).
        """
        self._verified.pop(fingerprint, None)
        folder = self.folder(fingerprint)
        tmp = folder.with_name(f".{fingerprint}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            make_dirs(folder.parent)
            if not _real_dir(folder.parent):
                raise OSError(f"{folder.parent} is not a folder zentrack made (a link?)")
            os.mkdir(tmp, PRIVATE_DIR)  # new, under a random name: nothing planted is reused
            meta = write_output(value, tmp)
            meta.update(
                fingerprint=fingerprint,
                record=record_id,
                step=step,
                uri=str(folder),
                metrics=json.loads(exact_value(metrics)),
            )
            (tmp / "meta.json").write_text(json.dumps(meta))
            _make_own(tmp)
        except Exception as exc:
            _rmtree(tmp, ignore_errors=True)
            self._warn_put(step, value, exc)
            return None
        if not self._place(tmp, folder, meta):
            return None
        self._remember(fingerprint, meta, folder / meta["file"])  # our own bytes
        return meta

    def _place(self, tmp: Path, folder: Path, meta: Mapping[str, Any]) -> bool:
        """Rename the new entry ``tmp`` into place; True if ``folder`` now holds its bytes.

        An older entry (corrupt, or a stale copy) is replaced.  If another
        thread or process stores the same output meanwhile, its entry stays,
        and this call is linked to it only if it holds the same bytes: an
        entry this process did not check is never adopted.
        """
        try:
            os.rename(tmp, folder)
            return True
        except OSError:
            pass
        if _real_dir(folder):
            _rmtree(folder, ignore_errors=True)
            try:
                os.rename(tmp, folder)
                return True
            except OSError:
                pass
        _rmtree(tmp, ignore_errors=True)
        try:
            checked_bytes(folder, meta)
            same = True
        except CorruptOutput:
            same = False
        if not same:
            log.warning(
                "zentrack: could not store an output in the cache folder %s, which holds "
                "other bytes (or is not zentrack's); the result is returned, the next call "
                "runs again.",
                folder,
            )
        return same

    def _warn_put(self, step: str, value: Any, exc: Exception) -> None:
        if isinstance(exc, OSError):  # a full disk, a read-only folder: once per process
            if self._put_warned:
                log.debug("zentrack: step %r: output not cached (%s)", step, exc)
                return
            self._put_warned = True
            log.warning(
                "zentrack: step %r: could not write its output into the cache folder %s (%s); "
                "results are returned but not cached until it can be written (this warning "
                "is not repeated).",
                step,
                self.root,
                exc,
            )
            return
        log.warning(
            "zentrack: step %r: could not cache its output of type %s (%r); the result "
            "is returned but will not be served from the cache. Register a materializer "
            "with zentrack.register_materializer() or use @step(cache=False).",
            step,
            type(value).__qualname__,
            exc,
        )

    def clear(
        self, step: str | None = None, *, progress: Callable[[int], None] | None = None
    ) -> int:
        """Delete cached outputs (of one step); return how many were deleted.

        Only entries zentrack recognises as its own are removed (see
        :meth:`_own_entries`), and never through a symbolic link.
        ``progress(1)`` is called per entry looked at (for a progress bar).
        """
        import shutil  # imported on use: keeps `import zentrack` light

        self._verified.clear()
        removed = 0
        for folder, meta in list(self._own_entries()):
            if progress is not None:
                progress(1)
            if step is not None and meta.get("step") != step:
                continue
            # rmtree walks by file descriptor and refuses a linked top: links
            # inside are removed, never followed.
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
                removed += 1
        return removed

    def entries(self) -> Iterator[dict[str, Any]]:
        """The meta data of every cached output."""
        for _, meta in sorted(self._own_entries(), key=lambda e: e[0].name):
            yield meta

    def _own_entries(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Entries of this cache: ``<fp[:2]>/<fp>`` real folders whose meta.json names ``fp``.

        Anyone who can write the folder can put anything in it (a link to
        their home, a folder of notes with a ``meta.json``): what does not
        have exactly this shape is not zentrack's and is left alone.
        """
        try:
            shards = os.scandir(self.root)
        except OSError:
            return
        with shards:
            for shard in shards:
                if _SHARD.fullmatch(shard.name) is None or not shard.is_dir(follow_symlinks=False):
                    continue
                with contextlib.suppress(OSError), os.scandir(shard.path) as entries:
                    for entry in entries:
                        name = entry.name
                        if (
                            _FINGERPRINT.fullmatch(name) is None
                            or not name.startswith(shard.name)
                            or not entry.is_dir(follow_symlinks=False)
                        ):
                            continue
                        try:
                            meta = json.loads(read_own(Path(entry.path) / "meta.json"))
                        except (OSError, ValueError):
                            continue
                        if isinstance(meta, dict) and meta.get("fingerprint") == name:
                            yield Path(entry.path), meta
