"""Args too large to inline in a config: kept in a file beside it, named by their digest.

A config is for reading and editing; a 100 kB mapping makes it neither (and
ruamel.yaml takes seconds per 100 kB to write or read it).  An arg whose
exact JSON form is over :data:`MAX_INLINE_BYTES` is therefore written to
``<config stem>.values/<sha256>.json`` beside the config, and the config
holds a pointer instead::

    table: {$zentrack: value, sha256: 9f2c…, file: training-….values/9f2c….json}

Reading the config back (:func:`resolve_args`) replaces a pointer by the
value, only after checking that the file is exactly that name in that
folder (no link, no other path) and that its bytes have that sha256.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from zentrack._files import make_dirs, read_own, replace_file
from zentrack._step.values import decode_exact
from zentrack.exceptions import ConfigError

#: Largest exact JSON form of an arg written into a config itself.
MAX_INLINE_BYTES: Final = 64 * 1024
#: Largest value file read back.
MAX_VALUE_BYTES: Final = 1 << 30
_MARK: Final = "$zentrack"
_FILE: Final = re.compile(r"([A-Za-z0-9._-]{1,250})\.values/([0-9a-f]{64})\.json")


def pointer(stem: str, text: str) -> tuple[dict[str, str], str, bytes]:
    """The pointer an arg of exact JSON ``text`` gets, its file name and bytes.

    Args:
        stem: the config file's name without ``.yaml``.
        text: the arg's exact JSON form (:func:`~zentrack._step.values.exact_value`).
    """
    data = text.encode()
    digest = hashlib.sha256(data).hexdigest()
    name = f"{stem}.values/{digest}.json"
    return {_MARK: "value", "sha256": digest, "file": name}, name, data


def is_pointer(value: Any) -> bool:
    """Tell whether an arg (plain or as loaded) is a pointer to a value file."""
    return isinstance(value, Mapping) and set(value) == {_MARK, "sha256", "file"} and (
        value.get(_MARK) == "value"
    )


def resolve_args(args: dict[str, Any], folder: Path | None, label: str) -> dict[str, Any]:
    """``args`` (plain) with each pointer replaced by the value it names.

    Raises:
        ConfigError: a pointer names another file than its digest's, a file
            outside ``folder``, a link, or bytes of another sha256.
    """
    if not any(is_pointer(value) for value in args.values()):
        return args
    return {
        name: _load(value, folder, label, name) if is_pointer(value) else value
        for name, value in args.items()
    }


def _load(ref: Mapping[str, Any], folder: Path | None, label: str, name: str) -> Any:
    file, digest = str(ref["file"]), str(ref["sha256"])
    match = _FILE.fullmatch(file)
    if match is None or match.group(2) != digest or folder is None:
        raise ConfigError(
            f"{label}: arg {name!r} points at {file!r}, which is not the value file "
            f"'<config>.values/{digest[:12]}….json' beside this config; restore the pointer "
            "zentrack wrote, or give the value itself."
        )
    path = folder / file
    try:
        data = read_own(path, limit=MAX_VALUE_BYTES)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{label}: the value of arg {name!r} cannot be read from {str(path)!r} ({exc}); "
            "keep that file beside the config (it is not followed through a link)."
        ) from None
    if hashlib.sha256(data).hexdigest() != digest:
        raise ConfigError(
            f"{label}: the value file {str(path)!r} of arg {name!r} changed since it was "
            "written (its sha256 differs from the config's); restore it, or give the value "
            "itself in the config."
        )
    return decode_exact(data.decode())


def copy_value_files(
    refs: list[Mapping[str, Any]], source: Path, target: Path, label: str
) -> None:
    """Copy the value files ``refs`` point at from folder ``source`` to ``target``.

    For a config saved into another folder: its pointers name files beside it.
    Each file is checked (as on load) before it is copied.
    """
    for ref in refs:
        _load(ref, source, label, "(copied)")
        name = str(ref["file"])
        make_dirs((target / name).parent)
        replace_file(target / name, read_own(source / name, limit=MAX_VALUE_BYTES))
