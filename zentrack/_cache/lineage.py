"""Which objects came out of which tracked call, for lineage-aware inputs.

An object a step returned (or a cache hit loaded) is remembered by identity
with the fingerprint of the call that made it.  Passed on to another step,
it enters that step's fingerprint as ``fp:<fingerprint>`` instead of a
content hash: cheaper for large data, and identical whether the upstream
step ran or was served from the cache, in this process or another.

Scalars and empty containers are never remembered: CPython shares those
objects, so their identity says nothing about where they came from.
Mutating a step's output in place and passing it on keeps the old lineage:
copy it first, or pass what you changed as a parameter.
"""

from __future__ import annotations

import functools
import weakref
from collections import OrderedDict
from typing import Any, Final

from zentrack._step.values import SCALAR_TYPES

#: Outputs that cannot be weakly referenced (lists, dicts, tuples) are kept
#: alive in a bounded LRU instead; older ones fall back to content hashing.
STRONG_LIMIT: Final = 128
_CONTAINERS: Final = (list, tuple, dict, set, frozenset)

_weak: dict[int, tuple[weakref.ref[Any], str]] = {}
_strong: OrderedDict[int, tuple[Any, str]] = OrderedDict()


def _forget(ref: weakref.ref[Any], *, key: int) -> None:
    entry = _weak.get(key)
    if entry is not None and entry[0] is ref:
        del _weak[key]


def register(value: Any, fingerprint: str) -> None:
    """Remember that ``value`` is the output of the call ``fingerprint``.

    The items of a returned tuple or list are remembered too, as
    ``fingerprint#0``, ``fingerprint#1``, ... so ``x, y = split(data)``
    keeps the lineage of each half.
    """
    kind = type(value)
    if kind in SCALAR_TYPES or (kind in _CONTAINERS and not value):
        return
    _remember(value, fingerprint)
    if kind is tuple or kind is list:
        for index, item in enumerate(value):
            if type(item) not in SCALAR_TYPES and not (type(item) in _CONTAINERS and not item):
                _remember(item, f"{fingerprint}#{index}")


def _remember(value: Any, fingerprint: str) -> None:
    key = id(value)
    try:
        ref = weakref.ref(value, functools.partial(_forget, key=key))
    except TypeError:
        _weak.pop(key, None)
        _strong[key] = (value, fingerprint)
        _strong.move_to_end(key)
        while len(_strong) > STRONG_LIMIT:
            _strong.popitem(last=False)
        return
    _strong.pop(key, None)
    _weak[key] = (ref, fingerprint)


def lineage_of(value: Any) -> str | None:
    """The fingerprint of the call that produced ``value``, if remembered."""
    key = id(value)
    weak = _weak.get(key)
    if weak is not None and weak[0]() is value:
        return weak[1]
    strong = _strong.get(key)
    if strong is not None and strong[0] is value:
        return strong[1]
    return None


def clear() -> None:
    """Forget every remembered output (tests, and after a fork)."""
    _weak.clear()
    _strong.clear()
