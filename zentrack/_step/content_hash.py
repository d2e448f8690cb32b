"""Content digests of step inputs (data), never through pickle.

Each value is fed to sha256 as a typed, length-prefixed byte form, so that
``b"1"``, ``"1"`` and ``1`` differ and concatenations cannot collide.  NumPy
and pandas are recognised through ``sys.modules`` so that neither is
imported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from typing import Any

from zentrack._cache.lineage import lineage_of
from zentrack._step.source_names import importable_module
from zentrack._step.values import SCALAR_TYPES, canonical_json, is_tracked
from zentrack.exceptions import UnhashableInputError

_SCHEME = b"zentrack-content-v1\0"
_MAX_DEPTH = 50


class _Unhashable(Exception):
    def __init__(self, value: object) -> None:
        self.value = value


def _feed(h: Any, tag: bytes, payload: bytes) -> None:
    h.update(tag + len(payload).to_bytes(8, "little") + payload)


def _update(h: Any, value: Any, depth: int, seen: set[int]) -> None:
    kind = type(value)
    if kind in SCALAR_TYPES or (kind in (list, tuple, dict) and is_tracked(value)):
        _feed(h, b"J", canonical_json(value).encode())
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


def input_digest(step: str, name: str, value: Any) -> str:
    """Digest one input of a step call, with an error that says how to fix it.

    Scalars (and strings of up to 64 characters) stand for themselves, as
    ``=<canonical text>``; an output of a tracked call is ``fp:<its
    fingerprint>`` (lineage); anything else its content digest.
    """
    kind = type(value)
    if kind is int or kind is float or kind is bool or value is None:
        return "=" + canonical_json(value)  # small plain values are their own digest
    if kind is str and len(value) <= 64:
        return "=" + canonical_json(value)
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
