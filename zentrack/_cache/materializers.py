"""Materializers: how a step's output is written to and read from files.

Each cached output lives in its own folder.  What it is read back with, and
the sha256 and size its bytes must have, come from the store (recorded by
the process that wrote the output), never from the folder: anyone who can
write the folder could rewrite a ``meta.json`` beside the data.  The data
file is the materializer's own file name, opened without following links,
and the built-in materializers load from the very bytes that were checked
(a pickle is never loaded unverified).  NumPy and pandas are handled when
they are installed, without being imported by zentrack itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any, Final

import attrs

from zentrack._files import read_own
from zentrack._step.content_hash import path_digest
from zentrack._step.values import decode_exact, is_tracked, tag


@attrs.frozen
class Materializer:
    """Saves and loads one kind of output.

    Attributes:
        name: stored in ``meta.json``; picks the loader when reading back.
        filename: the data file's name inside the output folder.
        accepts: whether this materializer can write a value.
        save: ``save(value, path)`` writes the data file.
        load: ``load(path)`` reads it back.
        load_bytes: reads it back from its bytes, already checked (built-ins:
            nothing can change between the check and the load).
    """

    name: str
    filename: str
    accepts: Callable[[Any], bool]
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]
    load_bytes: Callable[[bytes], Any] | None = None


def _save_json(value: Any, path: Path) -> None:
    path.write_text(json.dumps(tag(value), allow_nan=True))  # keeps dict key order


def _load_json(path: Path) -> Any:
    return decode_exact(path.read_text())


def _save_bytes(value: Any, path: Path) -> None:
    path.write_bytes(bytes(value))


def _is_ndarray(value: Any) -> bool:
    numpy = sys.modules.get("numpy")
    # exactly ndarray: subclasses (matrix, MaskedArray) keep their type through pickle
    return numpy is not None and type(value) is numpy.ndarray and not value.dtype.hasobject


def _save_npy(value: Any, path: Path) -> None:
    import numpy

    with open(path, "wb") as f:
        numpy.save(f, value, allow_pickle=False)


def _load_npy(path: Path) -> Any:
    import numpy

    return numpy.load(path, allow_pickle=False)


def _npy_from(data: bytes) -> Any:
    import numpy

    return numpy.load(io.BytesIO(data), allow_pickle=False)


def _is_parquet_frame(value: Any) -> bool:
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(value, pandas.DataFrame):
        return False
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _save_parquet(value: Any, path: Path) -> None:
    value.to_parquet(path)


def _load_parquet(path: Path) -> Any:
    import pandas

    return pandas.read_parquet(path)


def _parquet_from(data: bytes) -> Any:
    import pandas

    return pandas.read_parquet(io.BytesIO(data))


_PATH_TYPES: Final[dict[str, type[PurePath]]] = {
    cls.__name__: cls for cls in (Path, PurePath, PurePosixPath, PureWindowsPath)
}
_PATH_TYPES.update({type(Path()).__name__: type(Path())})


def _is_path(value: Any) -> bool:
    return type(value) in _PATH_TYPES.values()


def _save_path(value: PurePath, path: Path) -> None:
    """A returned path is kept with the digest of what it named when the step ended."""
    record = {"type": type(value).__name__, "path": str(value), "content": path_digest(value)}
    path.write_text(json.dumps(record))


def _load_path(path: Path) -> PurePath:
    """The returned path, only while the file or folder it names is unchanged.

    A step that writes a file and returns its path did its work through the
    file: if the file changed or is gone, serving the path alone would hand
    the next step other data than this call made, so it is a miss and the
    step runs again, rewriting it.
    """
    return _path_from(path.read_bytes())


def _path_from(data: bytes) -> PurePath:
    record = json.loads(data)
    if not isinstance(record, dict):
        raise CorruptOutput("the output does not describe a path")
    kind = _PATH_TYPES.get(str(record.get("type")))
    if kind is None or type(record.get("path")) is not str:
        raise CorruptOutput("the output does not describe a path")
    value = kind(record["path"])
    if path_digest(os.fspath(value)) != record.get("content"):
        raise StaleOutput(f"{value} changed since the step returned it")
    return value


def _save_pickle(value: Any, path: Path) -> None:
    import pickle

    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)


def _load_pickle(path: Path) -> Any:
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)  # only an entry whose bytes this process checked or wrote


def _pickle_from(data: bytes) -> Any:
    import pickle

    return pickle.loads(data)  # the bytes were checked against the store's sha256 first


BUILTIN: Final = (
    Materializer(
        "json",
        "output.json",
        is_tracked,
        _save_json,
        _load_json,
        lambda data: decode_exact(data.decode()),
    ),
    Materializer(
        "bytes",
        "output.bin",
        lambda v: type(v) is bytes,
        _save_bytes,
        lambda p: p.read_bytes(),
        lambda data: data,
    ),
    Materializer("numpy", "output.npy", _is_ndarray, _save_npy, _load_npy, _npy_from),
    Materializer("path", "output.path.json", _is_path, _save_path, _load_path, _path_from),
    Materializer(
        "parquet",
        "output.parquet",
        _is_parquet_frame,
        _save_parquet,
        _load_parquet,
        _parquet_from,
    ),
)
PICKLE: Final = Materializer(
    "pickle", "output.pkl", lambda v: True, _save_pickle, _load_pickle, _pickle_from
)

_registered: list[tuple[type, Materializer]] = []
_by_name: dict[str, Materializer] = {m.name: m for m in (*BUILTIN, PICKLE)}
_BUILTIN_NAMES: Final = frozenset(_by_name)


def register_materializer(
    kind: type,
    *,
    save: Callable[[Any, Path], None],
    load: Callable[[Path], Any],
    name: str | None = None,
    filename: str = "output.data",
) -> None:
    """Teach the cache to write outputs of type ``kind`` (and its subclasses).

    Args:
        kind: the output type.
        save: ``save(value, path)`` writes ``value`` to the file ``path``.
        load: ``load(path)`` reads it back.
        name: stored with each output so it can be read back (default: the
            type's qualified name); keep it stable across releases.
        filename: the data file's name.
    """
    if not isinstance(kind, type):
        raise TypeError(f"register_materializer() takes a type (got {kind!r}).")
    label = name or f"{kind.__module__}.{kind.__qualname__}"
    if label in _BUILTIN_NAMES:
        raise ValueError(
            f"register_materializer(name={label!r}): that name belongs to a built-in "
            "materializer, whose stored outputs would then be read by your loader; "
            "choose another name (the default is the type's qualified name)."
        )
    if filename in ("", ".", "..", "meta.json") or "/" in filename or "\\" in filename:
        raise ValueError(
            f"register_materializer(filename={filename!r}): give a plain file name such "
            "as 'output.data' (no folders, not 'meta.json', which holds the entry's metadata)."
        )
    materializer = Materializer(label, filename, lambda v: isinstance(v, kind), save, load)
    _registered.insert(0, (kind, materializer))
    _by_name[label] = materializer


def materializer_named(name: str) -> Materializer:
    """The materializer stored under ``name`` in an output's meta data."""
    found = _by_name.get(name)
    if found is None:
        raise CorruptOutput(f"no materializer named {name!r} is registered")
    return found


def choose(value: Any) -> Materializer:
    """The materializer for ``value``: user-registered first, pickle last."""
    for kind, materializer in _registered:
        if isinstance(value, kind):
            return materializer
    for materializer in BUILTIN:
        if materializer.accepts(value):
            return materializer
    return PICKLE


def file_digest(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_output(value: Any, folder: Path) -> dict[str, Any]:
    """Write ``value`` into ``folder`` (which exists); return its meta data."""
    materializer = choose(value)
    data = folder / materializer.filename
    materializer.save(value, data)
    kind = type(value)
    meta = {
        "materializer": materializer.name,
        "file": materializer.filename,
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "sha256": file_digest(data),
        "size": data.stat().st_size,
    }
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


class CorruptOutput(Exception):
    """A stored output is missing, altered, or has no known materializer."""


class StaleOutput(CorruptOutput):
    """A stored output is intact but no longer true: the file a returned path names changed."""


def checked_bytes(folder: Path, expected: Mapping[str, Any]) -> tuple[Materializer, bytes]:
    """The materializer and the bytes of the output in ``folder``, checked against ``expected``.

    ``expected`` holds ``materializer``, ``sha256`` and ``size`` as the store
    recorded them; the file is the materializer's own one in ``folder``,
    opened without following a link.

    Raises:
        CorruptOutput: no such materializer, no regular file, or bytes of
            another size or sha256.
    """
    materializer = _by_name.get(str(expected.get("materializer", "")))
    if materializer is None:
        raise CorruptOutput(f"no materializer named {expected.get('materializer')!r} is registered")
    path = folder / materializer.filename
    try:
        data = read_own(path, limit=max(int(expected.get("size", 0)), 0) + 1)
    except (OSError, ValueError) as exc:
        raise CorruptOutput(f"{path}: {exc}") from None
    if len(data) != expected.get("size") or hashlib.sha256(data).hexdigest() != expected.get(
        "sha256"
    ):
        raise CorruptOutput(f"{path} does not match the sha256 the store recorded for it")
    return materializer, data


def read_output(folder: Path, expected: Mapping[str, Any]) -> Any:
    """Read an output back, its bytes checked against ``expected`` first (:func:`checked_bytes`).

    Raises:
        CorruptOutput: see :func:`checked_bytes`.
        StaleOutput: a returned path whose file changed since.
    """
    materializer, data = checked_bytes(folder, expected)
    if materializer.load_bytes is not None:
        return materializer.load_bytes(data)
    return materializer.load(folder / materializer.filename)  # a registered loader reads it
