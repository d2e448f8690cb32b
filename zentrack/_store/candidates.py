"""Query conditions as SQL on MLMD's own property tables: a superset of the answer.

A condition ``name__op=value`` of ``find`` (or ``runs``) becomes *probes*:
``WHERE`` fragments on one property row (alias ``p``), each served by one of
MLMD's indexes on ``(name, is_custom_property, <typed column>)``.  The rows
they find are a **superset** of the rows whose exact value satisfies the
condition, never less; the caller confirms every candidate on the exact
value decoded from its record, so what a query returns is exactly what
Python's comparison says.  Why a superset is needed:

* MLMD keeps 6 decimals of a double: a double is searched within
  :func:`tolerance` of the bound;
* Python compares ``int``, ``float`` and ``bool`` with each other
  (``lr__lt=1`` matches ``True`` and ``0.5``), so a numeric range probes
  every numeric column, and the strings zentrack writes for numbers MLMD
  cannot hold (ints beyond 64 bits, infinities);
* strings MLMD would mangle, ``None`` and containers are stored as JSON
  text (see :func:`zentrack._store.schema.set_native`).

``1``, ``1.0``, ``True`` and ``"1"`` live in different columns, so equality
never mixes them.  A value of a type zentrack does not store (a NumPy
scalar, a custom object) gives no probes: the caller then reads every
record of the step and compares in Python, as it always did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

from zentrack._record.line import Record
from zentrack._step.values import MISSING
from zentrack._store.schema import METRIC_PREFIX, utf8_encodable  # SQLite binds UTF-8 only

T = TypeVar("T")
#: What an order reads of an item: params, metrics, start time (s) and id.
Facts = tuple[Mapping[str, Any], Mapping[str, Any], float, Any]

#: The operators of ``find``; no operator means ``eq``.
OPERATORS: Final = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains")
_INT64: Final = 2**63
#: More options than this in ``__in`` are compared in Python (a scan of the step).
MAX_OPTIONS: Final = 200
#: Index range of the strings zentrack writes for big ints and ``-inf`` (``-``, digits).
_NUMERIC_TEXT: Final = ("-", ":")
_SQL_OPERATORS: Final = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
#: Rows counted per probe when choosing which condition drives a statement.
ESTIMATE_CAP: Final = 2000
#: Ranking of the operators by how few rows they usually find (the driver is the lowest).
RANK: Final = {"eq": 0, "in": 1, "lt": 2, "le": 2, "gt": 2, "ge": 2, "contains": 3}
#: Columns of MLMD's property tables, by the index that serves a probe on them.
COLUMNS: Final = ("int", "double", "string", "bool")
#: The order by start time (the default); any other order key is a param/metric name.
STARTED: Final = "started"


@attrs.frozen
class Condition:
    """One ``name__op=value`` condition of a query."""

    name: str
    op: str
    value: Any

    @classmethod
    def parse(cls, key: str, value: Any, caller: str = "find") -> Condition:
        """Split ``lr__lt`` into name and operator (``lr`` alone means ``eq``)."""
        name, _, op = key.partition("__")
        op = op or "eq"
        if op not in OPERATORS:
            raise ValueError(
                f"{caller}(): unknown operator {op!r} in {key!r}; use one of "
                f"{', '.join('__' + o for o in OPERATORS)} (or none for equality)."
            )
        return cls(name, op, value)


@attrs.frozen
class Probe:
    """One indexed piece of a condition's candidates: property rows where ``where``.

    Attributes:
        column: the typed column whose index serves it (``int``, ``double``,
            ``string``, ``bool``).
        where: SQL on the property row aliased ``p``, with ``?`` parameters.
        args: the parameters.
    """

    column: str
    where: str
    args: tuple[Any, ...] = ()


@attrs.frozen
class PropertyTable:
    """Conditions as SQL on one of MLMD's property tables (executions' or contexts')."""

    table: str
    id_column: str
    outer: str  # the outer row's id, e.g. ``e.id``

    def names(self, condition: Condition) -> tuple[str, str]:
        """A condition reads the param and, for a record without it, the metric."""
        return condition.name, METRIC_PREFIX + condition.name

    def driver(self, condition: Condition, found: Sequence[Probe]) -> tuple[str, list[Any]]:
        """``SELECT id ... UNION ...``: the rows of every probe, from the indexes."""
        parts, args = [], []
        for probe in found:
            parts.append(
                f"SELECT p.{self.id_column} AS id FROM {self.table} p WHERE p.name IN (?, ?) "
                f"AND p.is_custom_property = 1 AND {probe.where}"
            )
            args += [*self.names(condition), *probe.args]
        return " UNION ".join(parts), args

    def exists(self, condition: Condition, found: Sequence[Probe] | None) -> tuple[str, list[Any]]:
        """``EXISTS (...)`` of a property row of the name that may satisfy the condition."""
        sql = (
            f"EXISTS (SELECT 1 FROM {self.table} p WHERE p.{self.id_column} = {self.outer} "
            "AND p.name IN (?, ?) AND p.is_custom_property = 1"
        )
        args: list[Any] = [*self.names(condition)]
        if found is not None:
            sql += " AND (" + " OR ".join(f"({probe.where})" for probe in found) + ")"
            for probe in found:
                args += probe.args
        return sql + ")", args

    def estimate(
        self, con: Any, condition: Condition, found: Sequence[Probe]
    ) -> int:
        """How many rows the probes find, counted up to :data:`ESTIMATE_CAP` each."""
        total = 0
        for probe in found:
            (count,) = con.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {self.table} p WHERE p.name IN (?, ?) "
                f"AND p.is_custom_property = 1 AND {probe.where} LIMIT ?)",
                [*self.names(condition), *probe.args, ESTIMATE_CAP],
            ).fetchone()
            total += count
        return int(total)



def tolerance(value: float) -> float:
    """How far MLMD's stored double may be from ``value`` (6 decimals kept, then parsed)."""
    return 1e-6 + 4 * math.ulp(value)


def probes(condition: Condition) -> list[Probe] | None:
    """The probes of ``condition``: their rows hold every value that satisfies it.

    Returns ``[]`` when no stored value can satisfy it (``lr__lt=None``,
    ``lr=float("nan")``), and ``None`` when no index can narrow it (``ne``,
    values of types zentrack does not store): every row of the name is a
    candidate then.
    """
    op, value = condition.op, condition.value
    if op == "eq":
        return _equal(value)
    if op in ("lt", "le", "gt", "ge"):
        return _ordered(op, value)
    if op == "in":
        return _member(value)
    if op == "contains":
        return _contains(value)
    return None  # ne: every value but one, of any type


def _prefix(first: str) -> Probe:
    """Every string starting with ``first`` (a JSON array, object or quoted string)."""
    end = chr(ord(first) + 1)
    return Probe("string", "p.string_value >= ? AND p.string_value < ?", (first, end))


def _strings(*texts: str) -> Probe:
    texts = tuple(dict.fromkeys(t for t in texts if utf8_encodable(t)))
    marks = ", ".join("?" * len(texts))
    return Probe("string", f"p.string_value IN ({marks})", texts)


def _has_zero(value: Any) -> bool:
    """Whether a container holds a float zero: ``0.0 == -0.0`` but their JSON differs."""
    if type(value) is float:
        return value == 0.0
    if type(value) in (list, tuple):
        return any(map(_has_zero, value))
    if type(value) is dict:
        return any(map(_has_zero, value.values()))
    return False


def _equal(value: Any) -> list[Probe] | None:
    """Type-exact equality (``same_value``): one column, one form."""
    kind = type(value)
    if kind is bool:
        return [Probe("bool", "p.bool_value = ?", (int(value),))]
    if kind is int:
        if -_INT64 <= value < _INT64:
            return [Probe("int", "p.int_value = ?", (value,))]
        return [_strings(str(value))]
    if kind is float:
        if math.isnan(value):
            return []  # NaN equals nothing, itself included
        if math.isinf(value):
            return [_strings(repr(value))]
        d = tolerance(value)
        return [Probe("double", "p.double_value BETWEEN ? AND ?", (value - d, value + d))]
    if kind is str:
        return [_strings(value, json.dumps(value))]
    if value is None or kind in (list, tuple, dict):
        if _has_zero(value):
            return [_prefix("[" if kind in (list, tuple) else "{")]
        try:
            return [_strings(json.dumps(value, sort_keys=True, allow_nan=True))]
        except (TypeError, ValueError):
            return None  # untracked contents: compared in Python
    return None


def _int_bound(op: str, value: float) -> int | bool:
    """The bound on ints/bools as ``column <op> bound``: an int, ``True`` (all) or ``False`` (none).

    Exact: Python compares an int with a float exactly, so ``x < 2.5`` is
    ``x < 3`` and ``x <= 2.5`` is ``x <= 2`` for every int ``x``.
    """
    upper = op in ("lt", "le")
    if type(value) is float:
        if math.isnan(value):
            return False
        if math.isinf(value):
            return (value > 0) == upper
        value = math.ceil(value) if op in ("lt", "ge") else math.floor(value)
    if value >= _INT64:
        return upper
    if value < -_INT64:
        return not upper
    return int(value)


def _ordered(op: str, value: Any) -> list[Probe] | None:
    """``lt le gt ge``: Python's ordering, which mixes int, float and bool."""
    kind = type(value)
    upper = op in ("lt", "le")
    sign = "<=" if upper else ">="
    if kind in (bool, int, float):
        number = float(value) if kind is float else value
        if kind is float and math.isnan(number):
            return []  # every comparison with NaN is false
        found: list[Probe] = []
        bound = _int_bound(op, number)
        exact = _SQL_OPERATORS[op]
        for column in ("int", "bool"):
            if bound is True:
                found.append(Probe(column, f"p.{column}_value IS NOT NULL"))
            elif bound is not False:
                found.append(Probe(column, f"p.{column}_value {exact} ?", (bound,)))
        try:
            as_float = float(number)
        except OverflowError:
            as_float = math.inf if number > 0 else -math.inf
        if math.isinf(as_float):
            if (as_float > 0) == upper:
                found.append(Probe("double", "p.double_value IS NOT NULL"))
        else:
            d = tolerance(as_float)
            found.append(
                Probe("double", f"p.double_value {sign} ?", (as_float + (d if upper else -d),))
            )
        # ints beyond 64 bits and the infinities, stored as text
        found.append(Probe("string", "p.string_value >= ? AND p.string_value < ?", _NUMERIC_TEXT))
        found.append(_strings("inf"))
        return found
    if kind is str:
        quoted = _prefix('"')  # strings stored JSON-quoted: their text order is not theirs
        if not utf8_encodable(value):
            return [Probe("string", "p.string_value IS NOT NULL")]
        return [Probe("string", f"p.string_value {sign} ?", (value,)), quoted]
    if kind in (list, tuple):
        return [_prefix("[")]
    if value is None or kind is dict:
        return []  # None and dicts are not ordered: always a TypeError, never a match
    return None


def _loose(option: Any) -> list[Probe] | None:
    """Python ``==`` (what ``in`` uses): 1 == 1.0 == True, [1] == [1.0]."""
    kind = type(option)
    if kind in (bool, int):
        number = int(option)
        found = _equal(number) or []
        if number in (0, 1):
            found.append(Probe("bool", "p.bool_value = ?", (number,)))
        if abs(number) < 2**1023:
            d = tolerance(float(number))
            found.append(
                Probe("double", "p.double_value BETWEEN ? AND ?", (number - d, number + d))
            )
        return found
    if kind is float:
        found = _equal(option) or []
        if math.isfinite(option) and option.is_integer():
            found += _equal(int(option)) or []
            if option in (0.0, 1.0):
                found.append(Probe("bool", "p.bool_value = ?", (int(option),)))
        return found
    if kind is str or option is None:
        return _equal(option)
    if kind in (list, tuple):
        return [_prefix("[")]
    if kind is dict:
        return [_prefix("{")]
    return None


def _member(options: Any) -> list[Probe] | None:
    """``value in options``."""
    kind = type(options)
    if kind is str:
        return [Probe("string", "p.string_value IS NOT NULL")]  # a substring test
    if kind not in (list, tuple, set, frozenset, dict) or len(options) > MAX_OPTIONS:
        return None
    found: list[Probe] = []
    for option in options:
        more = _loose(option)
        if more is None:
            return None
        found += more
    return _merge(found)


def _merge(found: Sequence[Probe]) -> list[Probe]:
    """Fold ``column = ?`` probes of one column into one ``IN`` list."""
    singles: dict[str, list[Any]] = {}
    rest: list[Probe] = []
    for probe in found:
        column = probe.column
        if probe.where == f"p.{column}_value = ?":
            singles.setdefault(column, []).extend(probe.args)
        elif probe.where.startswith("p.string_value IN ("):
            singles.setdefault("string", []).extend(probe.args)
        else:
            rest.append(probe)
    for column, args in singles.items():
        unique = tuple(dict.fromkeys(args))
        marks = ", ".join("?" * len(unique))
        rest.append(Probe(column, f"p.{column}_value IN ({marks})", unique))
    return rest


def _contains(item: Any) -> list[Probe]:
    """``item in value``: a substring of a str, a member of a container."""
    found = [_prefix("["), _prefix("{")]
    if type(item) is str:
        if utf8_encodable(item):
            within = "p.string_value IS NOT NULL AND instr(p.string_value, ?) > 0"
            found.append(Probe("string", within, (item,)))
            found.append(_prefix('"'))
        else:
            found.append(Probe("string", "p.string_value IS NOT NULL"))
    return found


# -- values and order of records ---------------------------------------------------------


def value_of(params: Mapping[str, Any], metrics: Mapping[str, Any], name: str) -> Any:
    """The value a condition or an order on ``name`` reads: the param, else the metric.

    A record whose step has a param ``loss`` and logged a metric ``loss`` is
    queried on the param: conditions kept their meaning when metrics became
    queryable.  ``MISSING`` when it has neither.
    """
    value = params.get(name, MISSING)
    return metrics.get(name, MISSING) if value is MISSING else value


def orderable(value: Any) -> bool:
    """Whether ``value`` has a place in a numeric order (int, float, bool; not NaN)."""
    return type(value) in (int, float, bool) and value == value


@attrs.frozen
class Order:
    """How results are ordered: by start time or by a param/metric, either way round.

    Attributes:
        key: ``"started"`` or a param/metric name.
        descending: largest (newest) first.
    """

    key: str = STARTED
    descending: bool = False

    @classmethod
    def parse(cls, text: str | None, default: str = STARTED, caller: str = "find") -> Order:
        """Read ``"started"``, ``"-started"``, ``"accuracy"``, ``"-accuracy"`` (None: default)."""
        text = default if text is None else text
        if not isinstance(text, str) or not text.lstrip("-"):
            raise ValueError(
                f"{caller}(): order_by must be 'started', '-started', or a param or metric name "
                f"with an optional '-' for largest first (got {text!r})."
            )
        return cls(text.lstrip("-"), text.startswith("-"))

    def sort(self, items: list[T], facts: Callable[[T], Facts]) -> list[T]:
        """Sort ``items`` (records or runs) exactly, in place; return them.

        By start time, ties by id; by a value, the items that have a number
        for it first, in its order, ties (and the rest) oldest first.
        """
        if self.key == STARTED:  # ids may be run ids (text): reversed, not negated
            items.sort(key=lambda item: facts(item)[2:], reverse=self.descending)
        else:
            items.sort(key=lambda item: self.key_of(facts(item)))
        return items

    def key_of(self, facts: Facts) -> tuple[Any, ...]:
        """The sort key of one item (see :meth:`sort`): smaller comes first."""
        params, metrics, started, ident = facts
        if self.key == STARTED:
            return (-started, -ident) if self.descending else (started, ident)
        value = value_of(params, metrics, self.key)
        if orderable(value):
            return (0, -value if self.descending else value, started, ident)
        return (1, 0, started, ident)


def record_facts(record: Record) -> Facts:
    """What an order reads of a record: params, metrics, start time, execution id."""
    return record.params, record.metrics, record.started, record.execution_id or 0
