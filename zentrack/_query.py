"""Reading records back: lookups by fingerprint and typed parameter queries.

Every read first flushes what is waiting, so it sees every call that has
returned, in this process or in any other that wrote to the store.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from zentrack import _tracker
from zentrack._records import Record

_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "in": lambda value, options: value in options,
    "contains": lambda value, item: item in value,
}
_MISSING: Final = object()


def flush() -> int:
    """Write every buffered record to the store now; return how many were written."""
    return _tracker.active().flush()


def lookup(fingerprint: str) -> list[Record]:
    """Return the records of every execution with ``fingerprint``, oldest first."""
    if not isinstance(fingerprint, str):
        raise TypeError(f"lookup() takes a fingerprint string (got {fingerprint!r}).")
    tracker = _tracker.active()
    tracker.flush()
    return tracker.store.lookup(fingerprint)


def _same(expected: Any, actual: Any) -> bool:
    """Equality that keeps 1, 1.0 and True apart, as the store does."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, (list, tuple)):
        return len(expected) == len(actual) and all(map(_same, expected, actual))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(
            _same(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual)


def _matcher(key: str, expected: Any) -> Callable[[Record], bool]:
    name, _, op = key.partition("__")
    if not op:
        op = "eq"
    if op not in _OPERATORS:
        raise ValueError(
            f"find(): unknown operator {op!r} in {key!r}; use one of "
            f"{', '.join('__' + o for o in _OPERATORS)} (or none for equality)."
        )
    compare = _OPERATORS[op]

    def match(record: Record) -> bool:
        actual = record.params.get(name, _MISSING)
        if actual is _MISSING:
            return False
        if op == "eq":
            return _same(expected, actual)
        if op == "ne":
            return not _same(expected, actual)
        try:
            return bool(compare(actual, expected))
        except TypeError:
            return False

    return match


def find(step: str | None = None, *, state: str | None = None, **conditions: Any) -> list[Record]:
    """Return the records whose parameters match, oldest first.

    Conditions are ``name=value`` (exact, type included: ``lr=1`` does not
    match ``lr=1.0``) or ``name__op=value`` with ``op`` one of ``ne``,
    ``lt``, ``le``, ``gt``, ``ge``, ``in``, ``contains``.

    Args:
        step: only this step's records (default: every step).
        state: only records in this state (``"COMPLETE"``, ``"FAILED"``, ...).
    """
    matchers = [_matcher(key, value) for key, value in conditions.items()]
    tracker = _tracker.active()
    tracker.flush()
    store = tracker.store
    names = [step] if step is not None else store.step_names()
    found = [
        record
        for name in names
        for record in store.step_records(name)
        if (state is None or record.state == state) and all(m(record) for m in matchers)
    ]
    found.sort(key=lambda r: (r.started, r.execution_id or 0))
    return found
