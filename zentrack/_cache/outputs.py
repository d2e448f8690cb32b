"""The output cache: one folder per fingerprint under the artifact store.

``<artifacts>/<fp[:2]>/<fp>/`` holds the output of the COMPLETE call with
that fingerprint and a ``meta.json`` naming it (materializer, type, sha256,
the record id of the call that made it).  The folder is the cache index: a
hit needs no MLMD query, so it is as fast in a fresh process as in a warm
one, and it works while the store is busy.  Folders appear atomically (a
rename), so a reader never sees half an output.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zentrack._cache.materializers import (
    CorruptOutput,
    StaleOutput,
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


_Stamp = tuple[int, int, int]


def _stamp(path: Path) -> _Stamp:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


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


class OutputCache:
    """Cached step outputs in the folder ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        #: fingerprint -> (meta, data file, its stat stamp, JSON text or None)
        self._verified: dict[str, tuple[dict[str, Any], Path, _Stamp, str | None]] = {}

    def folder(self, fingerprint: str) -> Path:
        """Where the output of the call ``fingerprint`` lives."""
        return self.root / fingerprint[:2] / fingerprint

    def get(self, fingerprint: str) -> tuple[dict[str, Any], Any] | None:
        """Return ``(meta, output)`` of a cached call, or ``None`` on a miss.

        A folder that cannot be read back intact is a miss, with a warning.
        An entry this process has verified by sha256 is trusted again while
        its data file keeps the same inode, size and modification time (one
        ``stat``), and small JSON outputs are kept as text: a warm hit then
        reads no file at all.
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
            data = self.folder(fingerprint) / meta["file"]
            with contextlib.suppress(OSError):
                text = None
                if meta.get("materializer") == "json" and meta.get("size", 0) <= _MEMO_BYTES:
                    text = data.read_text()
                self._verified[fingerprint] = (meta, data, _stamp(data), text)
        return found

    def _read(self, fingerprint: str) -> tuple[dict[str, Any], Any] | None:
        folder = self.folder(fingerprint)
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("zentrack: bad cache entry %s (%s); rerunning.", folder, exc)
            return None
        try:
            return meta, read_output(folder, meta)
        except StaleOutput as exc:
            log.info("zentrack: cached output %s is stale (%s); rerunning.", folder, exc)
        except CorruptOutput as exc:
            log.warning("zentrack: cached output %s is corrupt (%s); rerunning.", folder, exc)
        except Exception as exc:  # a materializer's own failure
            log.warning("zentrack: could not load cached output %s (%r); rerunning.", folder, exc)
        return None

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
        only this cache write is skipped (with a warning).
        """
        self._verified.pop(fingerprint, None)
        folder = self.folder(fingerprint)
        tmp = folder.with_name(f".{fingerprint}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            make_dirs(tmp.parent)
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
            log.warning(
                "zentrack: step %r: could not cache its output of type %s (%r); the result "
                "is returned but will not be served from the cache. Register a materializer "
                "with zentrack.register_materializer() or use @step(cache=False).",
                step,
                type(value).__qualname__,
                exc,
            )
            return None
        try:
            os.rename(tmp, folder)
        except OSError:  # an older (corrupt, or concurrent) entry: replace it
            _rmtree(folder, ignore_errors=True)
            try:
                os.rename(tmp, folder)
            except OSError as exc:  # another thread or process stored it meanwhile
                _rmtree(tmp, ignore_errors=True)
                try:
                    stored: dict[str, Any] = json.loads((folder / "meta.json").read_text())
                    return stored
                except (OSError, ValueError):
                    log.warning(
                        "zentrack: step %r: could not store its output in the cache folder "
                        "%s (%r); the result is returned, the next call runs again.",
                        step,
                        folder,
                        exc,
                    )
                    return None
        return meta

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
