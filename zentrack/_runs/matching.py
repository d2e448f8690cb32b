"""What a query condition means: ``name__op=value`` tested on exact values.

The one definition of the operators that ``find``, ``runs`` and the viewer's
filters share; the store only narrows candidates (see
:mod:`zentrack._store.candidates`), these tests decide.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from zentrack._step.values import MISSING
from zentrack._store.candidates import Condition, value_of

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


def same_value(expected: Any, actual: Any) -> bool:
    """Equality that keeps 1, 1.0 and True apart, as the store does."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, (list, tuple)):
        return len(expected) == len(actual) and all(map(same_value, expected, actual))
    if isinstance(expected, dict):
        return expected.keys() == actual.keys() and all(
            same_value(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual)


def split_condition(key: str) -> tuple[str, str]:
    """``"lr__lt"`` -> ``("lr", "lt")``; no operator is ``eq``.

    Raises:
        ValueError: an unknown operator, naming it and the known ones.
    """
    name, _, op = key.rpartition("__") if "__" in key else (key, "", "eq")
    if op not in _OPERATORS:
        raise ValueError(
            f"unknown operator {op!r} in {key!r}; use one of "
            f"{', '.join('__' + o for o in _OPERATORS)} (or none for equality)."
        )
    return name, op


def value_matches(op: str, expected: Any, actual: Any) -> bool:
    """Whether ``actual`` satisfies ``name__op=expected`` (``eq`` keeps 1, 1.0, True apart)."""
    if op == "eq":
        return same_value(expected, actual)
    if op == "ne":
        return not same_value(expected, actual)
    try:
        return bool(_OPERATORS[op](actual, expected))
    except TypeError:
        return False


def parse_conditions(conditions: Mapping[str, Any], caller: str) -> list[Condition]:
    """``{"lr__lt": 0.1}`` -> conditions; an unknown operator is a ValueError naming ``caller``."""
    parsed = []
    for key, value in conditions.items():
        try:
            name, op = split_condition(key)
        except ValueError as exc:
            raise ValueError(f"{caller}(): {exc}") from None
        parsed.append(Condition(name, op, value))
    return parsed


def matcher(condition: Condition) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool]:
    """The exact test of one condition on a record's (or run's) params and metrics."""
    name, op, expected = condition.name, condition.op, condition.value

    def match(params: Mapping[str, Any], metrics: Mapping[str, Any]) -> bool:
        actual = value_of(params, metrics, name)
        return actual is not MISSING and value_matches(op, expected, actual)

    return match


def check_limit(limit: int | None, caller: str) -> None:
    """A ``limit=`` must be None or an int >= 0."""
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"{caller}(): limit must be None or an int >= 0 (got {limit!r}).")
