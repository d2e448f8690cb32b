"""Content digests of step inputs (data), never through pickle.

Each value is fed to sha256 as a typed, length-prefixed byte form, so that
``b"1"``, ``"1"`` and ``1`` differ and concatenations cannot collide.  NumPy
and pandas are recognised through ``sys.modules`` so that neither is
imported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import sys
from pathlib import PurePath
from typing import Any

import attrs

from zentrack._cache.lineage import lineage_of
from zentrack._step.source_names import importable_module
from zentrack._step.values import SCALAR_TYPES, canonical_json, is_tracked
from zentrack.exceptions import UnhashableInputError

_SCHEME = b"zentrack-content-v1\0"
_PATH_SCHEME = b"zentrack-path-v1\0"
_MAX_DEPTH = 50
_CHUNK = 1 << 20
#: (path, device, inode, size, mtime, ctime) -> sha256 of a file's bytes, so a
#: large data file is read once per process while it stays unchanged.
_file_digests: dict[tuple[str, int, int, int, int, int], str] = {}


class _Unhashable(Exception):
    def __init__(self, value: object) -> None:
        self.value = value


def _feed(h: Any, tag: bytes, payload: bytes) -> None:
    h.update(tag + len(payload).to_bytes(8, "little") + payload)


def _file_digest(path: str, st: os.stat_result) -> str:
    key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    found = _file_digests.get(key)
    if found is not None:
        return found
    h = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    if len(_file_digests) > 4096:
        _file_digests.clear()
    _file_digests[key] = digest
    return digest


def path_digest(path: str | os.PathLike[str]) -> str:
    """Digest the content a path names: a file's bytes, a folder's files, or its absence.

    A folder is its files' relative names and contents, in sorted order, so
    a copy of a data set elsewhere is the same input; symbolic links inside
    it count by their target text and are not followed (no loops, nothing
    outside the folder).  The path's own name is not part of the digest.
    """
    h = hashlib.sha256(_PATH_SCHEME)
    top = os.fspath(path)
    try:
        st = os.stat(top)
    except FileNotFoundError:
        _feed(h, b"0", b"missing")
        return h.hexdigest()
    if not stat.S_ISDIR(st.st_mode):
        _feed(h, b"f", _file_digest(top, st).encode())
        return h.hexdigest()
    for folder, dirs, files in os.walk(top, followlinks=False):
        dirs.sort()
        relative = os.path.relpath(folder, top).replace(os.sep, "/")
        _feed(h, b"d", relative.encode("utf-8", "surrogateescape"))
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            full = os.path.join(folder, name)
            _feed(h, b"n", name.encode("utf-8", "surrogateescape"))
            entry = os.lstat(full)
            if stat.S_ISLNK(entry.st_mode):
                _feed(h, b"l", os.readlink(full).encode("utf-8", "surrogateescape"))
            elif stat.S_ISREG(entry.st_mode):
                _feed(h, b"f", _file_digest(full, entry).encode())
            else:
                _feed(h, b"o", str(stat.S_IFMT(entry.st_mode)).encode())
    return h.hexdigest()


def _update(h: Any, value: Any, depth: int, seen: set[int]) -> None:
    kind = type(value)
    if kind in SCALAR_TYPES or (kind in (list, tuple, dict) and is_tracked(value)):
        _feed(h, b"J", canonical_json(value).encode())
        return
    if isinstance(value, PurePath):  # by content, even when a step returned it
        _feed(h, b"P", path_digest(value).encode())
        return
    upstream = lineage_of(value)
    if upstream is not None:
        _feed(h, b"F", upstream.encode())
        return
    if depth > _MAX_DEPTH or id(value) in seen:
        raise _Unhashable(value)
    if kind in (bytes, bytearray, memoryview):
        _feed(h, b"B", bytes(value))
        return
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            seen.add(id(value))
            _feed(h, b"O", repr(value.shape).encode())
            for item in value.flat:
                _update(h, item, depth + 1, seen)
            seen.discard(id(value))
            return
        _feed(h, b"N", f"{value.dtype.str}|{value.shape}".encode())
        _feed(h, b"D", numpy.ascontiguousarray(value).tobytes())
        return
    if numpy is not None and isinstance(value, numpy.generic):
        _feed(h, b"S", f"{value.dtype.str}".encode() + value.tobytes())
        return
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, (pandas.DataFrame, pandas.Series)):
        dtypes = value.dtypes if isinstance(value, pandas.DataFrame) else [value.dtype]
        _feed(h, b"P", f"{kind.__name__}|{[str(d) for d in dtypes]}".encode())
        if kind is pandas.DataFrame:
            _feed(h, b"C", repr(list(value.columns)).encode())
        hashed = pandas.util.hash_pandas_object(value, index=True)
        _feed(h, b"D", hashed.to_numpy().tobytes())
        return
    seen.add(id(value))
    try:
        if kind in (list, tuple):
            _feed(h, b"L" if kind is list else b"T", str(len(value)).encode())
            for item in value:
                _update(h, item, depth + 1, seen)
        elif kind is dict:
            _feed(h, b"M", str(len(value)).encode())
            for key in sorted(value, key=repr):
                _update(h, key, depth + 1, seen)
                _update(h, value[key], depth + 1, seen)
        elif kind in (set, frozenset):
            digests = sorted(content_digest(item) for item in value)
            _feed(h, b"E", "|".join(digests).encode())
        elif dataclasses.is_dataclass(value) or hasattr(value, "__attrs_attrs__"):
            _feed(h, b"R", f"{importable_module(kind.__module__)}.{kind.__qualname__}".encode())
            _update(h, dict(sorted(_fields(value).items())), depth + 1, seen)
        else:
            raise _Unhashable(value)
    finally:
        seen.discard(id(value))


def _fields(value: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return {a.name: getattr(value, a.name) for a in value.__attrs_attrs__}


def content_digest(value: Any) -> str:
    """Digest a value by content, or raise the private ``_Unhashable``."""
    h = hashlib.sha256(_SCHEME)
    _update(h, value, 0, set())
    return h.hexdigest()


@attrs.frozen
class RecordedInput:
    """An input known only by the digest a recorded call stored.

    The command line cannot pass a data frame: ``zentrack why`` stands one
    of these in for each input it was not given, so the call is explained
    with the inputs of the step's latest recorded call.
    """

    digest: str


def input_digest(step: str, name: str, value: Any) -> str:
    """Digest one input of a step call, with an error that says how to fix it.

    Scalars (and strings of up to 64 characters) stand for themselves, as
    ``=<canonical text>``; an output of a tracked call is ``fp:<its
    fingerprint>`` (lineage); anything else its content digest.
    """
    kind = type(value)
    if kind is int or kind is float or kind is bool or value is None:
        return "=" + canonical_json(value)  # small plain values are their own digest
    if kind is RecordedInput:
        return value.digest  # type: ignore[no-any-return]
    if kind is str and len(value) <= 64:
        return "=" + canonical_json(value)
    if isinstance(value, PurePath):  # what the file holds now, wherever it came from
        return "path:" + path_digest(value)
    upstream = lineage_of(value)
    if upstream is not None:
        return "fp:" + upstream
    try:
        return content_digest(value)
    except (_Unhashable, RecursionError) as exc:
        culprit = exc.value if isinstance(exc, _Unhashable) else value
        kind = type(culprit)
        raise UnhashableInputError(
            f"Step {step!r}: input {name!r} cannot be fingerprinted by content (got a "
            f"{kind.__module__}.{kind.__qualname__}); exclude it with "
            f"@step(ignore=[{name!r}]) or pass what defines it as a parameter instead."
        ) from None
