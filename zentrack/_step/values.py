"""Tracked values: what a parameter may hold, and its two text forms.

* The *canonical* form is what the fingerprint hashes: compact JSON with
  sorted keys, ASCII only, floats spelled by ``repr`` (shortest round trip),
  tuples spelled like lists.  ``1``, ``1.0`` and ``true`` stay distinct.
* The *exact* form is what the journal and the store keep: the canonical form,
  except that tuples are tagged so that they read back as tuples.

Both are documented in ``docs/fingerprint.md`` and ``docs/mlmd.md``.
"""

from __future__ import annotations

import enum
import json
import reprlib
import sys
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Final

#: Keys the exact form uses as tags; a mapping with one of them alone is wrapped.
TAG_KEYS: Final = frozenset({"__tuple__", "__dict__"})
#: The scalar types a parameter may hold, checked with ``type(v) in``.
SCALAR_TYPES: Final = frozenset({int, float, str, bool, type(None)})
#: Human-readable list of the tracked types, used in error messages.
TRACKED_TYPES_TEXT: Final = (
    "int, float, str, bool, None, or lists, tuples and str-keyed dicts of these"
)
_TUPLE_TAG: Final = "__tuple__"
_DICT_TAG: Final = "__dict__"
_MAX_DEPTH: Final = 100

class Missing(enum.Enum):
    """The type of :data:`MISSING` (an enum, so it pickles and compares by identity)."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


#: The one "absent" sentinel: a param a call did not give, the side of a
#: ``diff_configs`` row or a ``compare_runs`` column where a value is absent.
MISSING: Final = Missing.MISSING

_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
)


float_repr: Final = float.__repr__
int_repr: Final = int.__repr__
#: ``repr`` of the non-finite floats -> their JSON spelling (Python's ``json``).
NONFINITE_JSON: Final = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _float_json(value: float) -> str:
    text = float_repr(value)
    return NONFINITE_JSON.get(text, text) if text[-1] in "nf" else text


_SCALAR_JSON: Final[dict[type, Callable[[Any], str]]] = {
    int: int.__repr__,
    float: _float_json,
    str: encode_basestring_ascii,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
}


def is_tracked(value: object, _depth: int = 0) -> bool:
    """Tell whether ``value`` is of a tracked type, containers checked deeply."""
    kind = type(value)
    if kind in SCALAR_TYPES:
        return True
    if _depth > _MAX_DEPTH:
        return False
    if kind is list or kind is tuple:
        return all(is_tracked(item, _depth + 1) for item in value)  # type: ignore[attr-defined]
    if kind is dict:
        return all(
            type(key) is str and is_tracked(item, _depth + 1)
            for key, item in value.items()  # type: ignore[attr-defined]
        )
    return False


class _NotTracked:
    def __repr__(self) -> str:
        return "NOT_TRACKED"


#: What :func:`as_tracked` returns for a value that is not of a tracked type.
NOT_TRACKED: Final = _NotTracked()


def _numpy_scalar(value: Any) -> Any:
    """The Python ``bool``/``int``/``float`` of a NumPy scalar, else ``NOT_TRACKED``.

    Only called for types whose module is ``numpy``, so NumPy is already
    imported when we look it up.  ``float32`` and ``float16`` widen exactly;
    a ``longdouble`` is taken only when a Python float holds it exactly.
    """
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return NOT_TRACKED
    if isinstance(value, numpy.bool_):
        return bool(value)
    if isinstance(value, numpy.integer):
        return int(value)
    if isinstance(value, numpy.floating):
        widened = float(value)
        if value.dtype.itemsize <= 8 or widened == value or widened != widened:
            return widened
    return NOT_TRACKED


def as_tracked(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` as a tracked value, or ``NOT_TRACKED``.

    Tracked values come back as they are (the same object); NumPy scalars
    (``np.floating``, ``np.integer``, ``np.bool_``), also inside lists,
    tuples and dicts, come back as the Python value of the same number, so
    a sweep over ``np.linspace`` records, fingerprints and reruns exactly
    like one over Python floats.  NumPy is never imported here: a NumPy
    scalar is recognised by its type's module first.
    """
    kind = type(value)
    if kind in SCALAR_TYPES:
        return value
    if kind.__module__ == "numpy":
        return _numpy_scalar(value)
    if _depth > _MAX_DEPTH or kind not in (list, tuple, dict):
        return NOT_TRACKED
    if is_tracked(value):
        return value
    if kind is dict:
        converted: dict[str, Any] = {}
        for key, item in value.items():
            plain = as_tracked(item, _depth + 1)
            if type(key) is not str or plain is NOT_TRACKED:
                return NOT_TRACKED
            converted[key] = plain
        return converted
    items = []
    for item in value:
        plain = as_tracked(item, _depth + 1)
        if plain is NOT_TRACKED:
            return NOT_TRACKED
        items.append(plain)
    return items if kind is list else tuple(items)


def huge_int(value: Any) -> int | None:
    """The first int in ``value`` (containers walked) too long to write as text, else None.

    Python refuses ``str()`` of an int over ``sys.get_int_max_str_digits()``
    digits (4,300 by default): such a value cannot be fingerprinted, stored
    or written to a config.  Off the hot path (called once an error is known,
    or at a class step's construction).
    """
    limit = sys.get_int_max_str_digits()
    if not limit:
        return None
    bits = int(limit * 3.3219280948873626) - 4  # a little under `limit` digits
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is int and item.bit_length() > bits:
            try:
                str(item)
            except ValueError:
                return int(item)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is dict:
            stack.extend(item.values())
    return None


def _too_deep(value: object) -> bool:
    """Tell whether containers in ``value`` nest deeper than :data:`_MAX_DEPTH` (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is list or kind is tuple or kind is dict:
            if depth > _MAX_DEPTH:
                return True
            items = item.values() if kind is dict else item
            stack.extend((child, depth + 1) for child in items)
    return False


def short_repr(value: object) -> str:
    """``repr(value)`` cut to about 80 characters, safe for huge or very deep containers."""
    try:
        if type(value) in (list, tuple, dict, set, frozenset):
            return _SHORT.repr(value)
        return f"{value!r:.80}"
    except (RecursionError, ValueError):  # a deep custom container; an int over the limit
        return f"<{type(value).__qualname__} object>"


_SHORT: Final = reprlib.Repr()
_SHORT.maxlevel = 3
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlong = 60


def describe_type(value: object, _depth: int = 0) -> str:
    """Name the offending type, or the offending element inside a container."""
    kind = type(value)
    if _depth > _MAX_DEPTH or (_depth == 0 and _too_deep(value)):
        return f"{kind.__name__} nested deeper than {_MAX_DEPTH} levels or containing itself"
    if kind is list or kind is tuple:
        for item in value:  # type: ignore[attr-defined]
            if as_tracked(item) is NOT_TRACKED:
                return f"{kind.__name__} containing {describe_type(item, _depth + 1)}"
    if kind is dict:
        for key, item in value.items():  # type: ignore[attr-defined]
            if type(key) is not str:
                return f"dict with a {type(key).__name__} key {key!r}"
            if as_tracked(item) is NOT_TRACKED:
                return f"dict containing {describe_type(item, _depth + 1)} at key {key!r}"
    return f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins" else (
        kind.__qualname__
    )


def a_described(value: object) -> str:
    """``describe_type`` with its article: "an object", "a list containing ..."."""
    text = describe_type(value)
    return f"{'an' if text[:1].lower() in 'aeiou' else 'a'} {text}"


def canonical_json(value: Any) -> str:
    """Return the canonical text of a tracked value (the fingerprint's form)."""
    encode = _SCALAR_JSON.get(type(value))
    if encode is not None:
        return encode(value)
    return _ENCODER.encode(value)


def _needs_tags(value: Any) -> bool:
    kind = type(value)
    if kind is tuple:
        return True
    if kind is list:
        return any(_needs_tags(item) for item in value)
    if kind is dict:
        return (
            (len(value) == 1 and (_TUPLE_TAG in value or _DICT_TAG in value))
            or any(_needs_tags(item) for item in value.values())
        )
    return False


def tag(value: Any) -> Any:
    """Tag tuples (and tag-like dicts) so that JSON keeps them apart."""
    kind = type(value)
    if kind is tuple:
        return {_TUPLE_TAG: [tag(item) for item in value]}
    if kind is list:
        return [tag(item) for item in value]
    if kind is dict:
        inner = {key: tag(item) for key, item in value.items()}
        if len(value) == 1 and (_TUPLE_TAG in value or _DICT_TAG in value):
            return {_DICT_TAG: inner}
        return inner
    return value


def exact_params(params: Mapping[str, Any], canonical: str) -> str:
    """Return the exact (storage) text of ``params``, reusing ``canonical``.

    The two forms only differ when a tuple, or a dict that looks like a tag,
    occurs somewhere; flat parameters take the first return.
    """
    if _needs_tags(dict(params)):
        return _ENCODER.encode(tag(dict(params)))
    return canonical


def untag(value: Any) -> Any:
    """Undo the tuple tags of the exact form on an already parsed JSON value."""
    if type(value) is list:
        return [untag(item) for item in value]
    if type(value) is dict:
        if len(value) == 1:
            if _TUPLE_TAG in value:
                return tuple(untag(item) for item in value[_TUPLE_TAG])
            if _DICT_TAG in value:
                return {key: untag(item) for key, item in value[_DICT_TAG].items()}
        return {key: untag(item) for key, item in value.items()}
    return value


def decode_exact(text: str) -> Any:
    """Read a value written by :func:`exact_params` or :func:`exact_value`."""
    return untag(json.loads(text))


def exact_value(value: Any) -> str:
    """Return the exact (storage) text of a single tracked value."""
    return _ENCODER.encode(tag(value)) if _needs_tags(value) else canonical_json(value)


def copy_value(value: Any) -> Any:
    """Copy containers so later mutation by the caller cannot change a record."""
    kind = type(value)
    if kind is list:
        return [copy_value(item) for item in value]
    if kind is tuple:
        return tuple(copy_value(item) for item in value)
    if kind is dict:
        return {key: copy_value(item) for key, item in value.items()}
    return value
