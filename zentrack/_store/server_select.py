"""``find`` on PostgreSQL and MySQL: candidates from MLMD's ``filter_query``, confirmed exactly.

On SQLite, ``find`` reads MLMD's tables with SQL (:mod:`.sqlite_select`); on
a server, only MLMD's API is there, and its ``ListOptions.filter_query`` is
the one way to select in the database.  One condition *drives*: its probes
(:mod:`.candidates`, a superset of its answer) are rewritten into filter
syntax, and the step's executions that pass are read, decoded and confirmed
by the caller's exact matcher.  What MLMD's filter does, measured with
ml-metadata 1.17.1 on PostgreSQL 15 and MariaDB 10.11:

* each property a filter mentions is an inner join: ``a = 1 OR b = 2``
  drops every execution without ``a`` or without ``b``.  A condition reads
  the param or, for a record without it, the metric: so one filter per
  name, and the union of their executions;
* the property name is pasted into the SQL (``name = '<name>'``) and used as
  a regular expression to rewrite the query: only names of
  :data:`SAFE_NAME` are used;
* string literals are re-emitted into the SQL unescaped (a quote breaks
  PostgreSQL, where MLMD also turns every ``"`` into ``'``), and the
  filter's own rewriting of ``last_known_state = NEW`` applies inside
  literals too: only printable ASCII without quotes or backslashes and
  without the words the rewriting looks for is written (:func:`literal`);
  any other string is matched by a wider ``LIKE`` (:func:`pattern`);
* strings compare by the database's collation (MySQL: ``'a' = 'A'``, and
  orders differ from Python's): equality finds a superset, ranges on text
  are widened to every string, and prefixes are ``LIKE 'x%'``;
* a double literal is compared as an exact decimal with the stored double
  (which may pass through 15 significant digits first): every double bound
  gets a relative :data:`SLACK` on top of :func:`.tolerance`;
* MariaDB stores a double of magnitude 1e81 or more as ±1e65 (MLMD
  writes every digit; a longer decimal is clipped): every filter with a
  double probe also takes the doubles beyond ±:data:`HUGE`;
* a value zentrack stores as a ``proto_value`` on a server (ints beyond 32
  bits, strings with a backslash or too long for PostgreSQL's index, parts
  of long MySQL strings: see :mod:`.server_values`) has no native column
  set: when such a value may pass the condition (:func:`reaches_proto`), the
  filter also takes every execution whose property has none
  (:func:`opaque`).  That reads every row of the property (~15 ms at 10,000
  on MariaDB), so an equality on an int or a plain string does without.

Anything else (``ne`` alone, no conditions, a value type MLMD does not
index, a name or step type that cannot be written safely) returns ``None``:
the caller reads the step whole, as before.  MLMD's Python client pages
through the results (100 a page, ``next_page_token``) until none is left.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from zentrack._record.line import Record
from zentrack._store.candidates import (
    RANK,
    Condition,
    Probe,
    probes,
    record_facts,
)
from zentrack._store.schema import METRIC_PREFIX, STEP_TYPE_PREFIX
from zentrack._store.server_values import Codec, native_text
from zentrack._store.sqlite_select import Query

#: Property names written into a filter: MLMD pastes them into SQL and into a regex.
SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_.\-/:@]{1,255}")
#: Characters of string literals written into a filter: printable ASCII but ' " \ `.
_SAFE_CHARS: Final = r"\x20\x21\x23-\x26\x28-\x5b\x5d-\x5f\x61-\x7e"
_SAFE_TEXT: Final = re.compile(f"[{_SAFE_CHARS}]*")
_UNSAFE_RUN: Final = re.compile(f"[^{_SAFE_CHARS}]+")
#: Words MLMD's filter rewriting looks for anywhere in the query, literals included.
_REWRITTEN: Final = re.compile(
    r"properties|contexts_|artifacts_|executions_|events_|state", re.IGNORECASE
)
#: Longest string literal written into a filter.
MAX_LITERAL: Final = 512
#: Relative widening of double bounds: the server compares decimals with the stored double.
SLACK: Final = 1e-12
#: Doubles beyond this magnitude are candidates of every double probe (MariaDB clips them).
HUGE: Final = 9.9e64
#: The range of ``int_value`` on the servers (32 bits); a bound outside is clamped to it.
_INT32: Final = 2**31
#: Most characters between the ends of a text range written as ``LIKE`` prefixes.
_MAX_PREFIXES: Final = 16

_NOT_NULL: Final = re.compile(r"p\.(int|bool|double|string)_value IS NOT NULL")
_ONE: Final = re.compile(r"p\.(int|bool)_value (<|<=|>|>=|=) \?")
_SET: Final = re.compile(r"p\.(int|bool|string)_value IN \(\?(?:, \?)*\)")
_BETWEEN: Final = re.compile(r"p\.double_value BETWEEN \? AND \?")
_DOUBLE: Final = re.compile(r"p\.double_value (<=|>=) \?")
_TEXT_ORDER: Final = re.compile(r"p\.string_value (<=|>=) \?")
_TEXT_RANGE: Final = re.compile(r"p\.string_value >= \? AND p\.string_value < \?")
_CONTAINS: Final = re.compile(r"p\.string_value IS NOT NULL AND instr\(p\.string_value, \?\) > 0")


def literal(text: str) -> str | None:
    """``text`` as a filter string literal, or ``None`` if it cannot be written safely."""
    if len(text) > MAX_LITERAL or not _SAFE_TEXT.fullmatch(text) or _REWRITTEN.search(text):
        return None
    return f"'{text}'"


def _double(arg: Any, upper: bool) -> str | None:
    """A double bound widened by :data:`SLACK`; ``None`` when it is not finite."""
    if type(arg) not in (int, float):
        raise Unpushable(repr(arg))
    try:
        bound = float(arg)
    except OverflowError:
        return None
    widened = bound + abs(bound) * SLACK if upper else bound - abs(bound) * SLACK
    return repr(widened) if math.isfinite(widened) else None


def _int(bound: int) -> str:
    """An int bound clamped to just outside 32 bits: the same answer on every stored int."""
    return str(min(max(bound, -_INT32 - 1), _INT32))


def _bools(op: str, bound: int) -> list[bool]:
    """The bools ``b`` with ``b <op> bound`` (Python orders False < True as 0 < 1)."""
    test: dict[str, Callable[[int], bool]] = {
        "<": lambda b: b < bound,
        "<=": lambda b: b <= bound,
        ">": lambda b: b > bound,
        ">=": lambda b: b >= bound,
        "=": lambda b: b == bound,
    }
    return [bool(b) for b in (0, 1) if test[op](b)]


def _bool_filter(column: str, found: Sequence[bool]) -> str | None:
    if not found:
        return None  # no stored bool can match
    if len(found) == 2:
        return f"{column} IS NOT NULL"
    return f"{column} = {'true' if found[0] else 'false'}"


def pattern(text: str) -> str:
    """A ``LIKE`` pattern (unquoted) that matches ``text`` and is safe to write.

    Every character that cannot be in a literal becomes ``%`` (any run of
    characters, however the server counts them); a word the filter rewrites
    loses its first letter to ``_``; ``%`` and ``_`` in ``text`` stay
    wildcards.  Each only widens the match.
    """
    out = re.sub("%+", "%", _UNSAFE_RUN.sub("%", text))
    while match := _REWRITTEN.search(out):
        out = out[: match.start()] + "_" + out[match.start() + 1 :]
    return out if len(out) <= MAX_LITERAL else out[:MAX_LITERAL] + "%"


def _like(column: str, *parts: str) -> str:
    """``column LIKE`` the :func:`pattern` of ``parts`` joined (``"%"`` parts are wildcards)."""
    return f"{column} LIKE '{pattern(''.join(parts))}'"


class Unpushable(Exception):
    """A query (or one of its probes) that cannot be written as a filter: read the step whole."""


def translate(probe: Probe, prop: str) -> str | None:
    """One probe as a filter on property ``prop`` (``custom_properties.`name```).

    Returns the filter text, or ``None`` when no natively stored value can
    pass it (the probe adds nothing).

    Raises:
        Unpushable: a probe of a form not known here.
    """
    where, args = probe.where, probe.args
    if match := _NOT_NULL.fullmatch(where):
        return f"{prop}.{match[1]}_value IS NOT NULL"
    if match := _ONE.fullmatch(where):
        column, op, bound = f"{prop}.{match[1]}_value", match[2], _an_int(args[0])
        if match[1] == "bool":
            return _bool_filter(column, _bools(op, bound))
        if op == "=" and not -_INT32 <= bound < _INT32:
            return None  # stored as a proto_value: see opaque()
        return f"{column} {op} {_int(bound)}"
    if match := _SET.fullmatch(where):
        return _set(f"{prop}.{match[1]}_value", match[1], args)
    if _BETWEEN.fullmatch(where):
        low, high = _double(args[0], upper=False), _double(args[1], upper=True)
        if low is None or high is None:
            return f"{prop}.double_value IS NOT NULL"
        return f"({prop}.double_value >= {low} AND {prop}.double_value <= {high})"
    if match := _DOUBLE.fullmatch(where):
        bound_text = _double(args[0], upper=match[1] == "<=")
        if bound_text is None:
            return f"{prop}.double_value IS NOT NULL"
        return f"{prop}.double_value {match[1]} {bound_text}"
    if _TEXT_ORDER.fullmatch(where):
        return f"{prop}.string_value IS NOT NULL"  # the collation's order is not Python's
    if _TEXT_RANGE.fullmatch(where):
        return _prefixes(f"{prop}.string_value", _a_str(args[0]), _a_str(args[1]))
    if _CONTAINS.fullmatch(where):
        return _like(f"{prop}.string_value", "%", _a_str(args[0]), "%")
    raise Unpushable(where)


def _an_int(arg: Any) -> int:
    if type(arg) is not int:
        raise Unpushable(repr(arg))
    return arg


def _a_str(arg: Any) -> str:
    if type(arg) is not str:
        raise Unpushable(repr(arg))
    return arg


def _set(column: str, kind: str, args: Sequence[Any]) -> str | None:
    """``column IN (...)`` of ints, bools or strings (ints beyond 32 bits: see opaque()).

    A string that cannot be a literal is matched by its :func:`pattern`.
    """
    if kind == "bool":
        return _bool_filter(column, sorted({bool(_an_int(a)) for a in args}))
    parts: list[str] = []
    if kind == "int":
        texts = [str(a) for a in map(_an_int, args) if -_INT32 <= a < _INT32]
    else:
        texts = []
        for text in map(_a_str, args):
            quoted = literal(text)
            if quoted is None:
                parts.append(_like(column, text))
            else:
                texts.append(quoted)
    if texts:
        parts.append(f"{column} IN ({', '.join(texts)})")
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _prefixes(column: str, low: str, high: str) -> str:
    """Every string in ``[low, high)`` when both are one character apart by a few: ``LIKE``s."""
    if len(low) == 1 and len(high) == 1 and 0 < ord(high) - ord(low) <= _MAX_PREFIXES:
        parts = [_like(column, chr(c), "%") for c in range(ord(low), ord(high))]
        return "(" + " OR ".join(parts) + ")"
    return f"{column} IS NOT NULL"


def opaque(prop: str) -> str:
    """The executions whose ``prop`` has no native column set: a ``proto_value`` on a server."""
    columns = ("int", "double", "string", "bool")
    return "(" + " AND ".join(f"{prop}.{c}_value IS NULL" for c in columns) + ")"


def reaches_proto(probe: Probe, native: Callable[[str], bool]) -> bool:
    """Whether a value the server keeps in a ``proto_value`` may pass ``probe``.

    Those are ints beyond 32 bits and the strings ``native`` says are not
    kept as they are; bools and doubles always are (zentrack writes the
    non-finite doubles as text).
    """
    if probe.column in ("bool", "double"):
        return False
    if probe.column == "int" and (probe.where == "p.int_value = ?" or _SET.fullmatch(probe.where)):
        return not all(type(a) is int and -_INT32 <= a < _INT32 for a in probe.args)
    if probe.column == "string" and _SET.fullmatch(probe.where):
        return not all(type(a) is str and native(a) for a in probe.args)
    return True  # a range of ints or strings, a pattern: anything of the column


def condition_filter(
    found: Sequence[Probe], prop: str, native: Callable[[str], bool]
) -> str | None:
    """The filter of a condition's probes on one property; ``None`` if nothing can pass.

    ``native`` tells whether a string value of the property is stored as it
    is (not as a ``proto_value``).
    """
    parts = [text for probe in found if (text := translate(probe, prop)) is not None]
    if any(probe.column == "double" for probe in found):
        parts.append(f"{prop}.double_value >= {HUGE!r} OR {prop}.double_value <= {-HUGE!r}")
    if any(reaches_proto(probe, native) for probe in found):
        parts.append(opaque(prop))  # read every row of the property: only when needed
    return "(" + " OR ".join(parts) + ")" if parts else None


def driver(conditions: Sequence[Condition]) -> tuple[Condition, list[Probe]] | None:
    """The condition that selects: the one whose operator usually finds the fewest.

    Returns ``None`` when nothing can match (a condition no value satisfies).

    Raises:
        Unpushable: no condition has probes (``ne`` only, none, values MLMD does not index).
    """
    best: tuple[int, int, Condition, list[Probe]] | None = None
    for i, condition in enumerate(conditions):
        found = probes(condition)
        if found == []:
            return None
        if found is not None and (best is None or (RANK[condition.op], i) < best[:2]):
            best = (RANK[condition.op], i, condition, found)
    if best is None:
        raise Unpushable("no condition narrows the step")
    return best[2], best[3]


def filters(query: Query, codec: Codec) -> list[str]:
    """The filter queries whose executions hold every record ``query`` asks for.

    ``codec`` is the server's (stored names, what it keeps as a
    ``proto_value``).  Returns one filter per name (param and metric) that
    anything may pass, none when nothing can match.  Without a step, the
    filter takes every ``zentrack.step.*`` type.

    Raises:
        Unpushable: the query cannot be written as filters.
    """
    chosen = driver(query.conditions)
    if chosen is None:
        return []
    condition, found = chosen
    if query.step is None:
        step_type = f"LIKE '{STEP_TYPE_PREFIX}%'"
    else:
        stored_type = codec.name(STEP_TYPE_PREFIX + query.step)
        quoted = literal(stored_type)  # else a pattern: the caller checks each type
        step_type = f"= {quoted}" if quoted else f"LIKE '{pattern(stored_type)}'"
    out = []
    for name in (condition.name, METRIC_PREFIX + condition.name):
        stored = codec.name(name)
        if not SAFE_NAME.fullmatch(stored):
            raise Unpushable(name)
        where = condition_filter(
            found,
            f"custom_properties.`{stored}`",
            functools.partial(native_text, key=stored, backend=codec.backend),
        )
        if where is not None:
            out.append(f"type {step_type} AND {where}")
    return out


def select(
    mlmd: Any, query: Query, decode: Callable[[Iterable[Any]], list[Record]]
) -> list[Record] | None:
    """The records ``query`` asks for, through ``filter_query``; ``None``: read the steps whole.

    Args:
        mlmd: the server store (:class:`~zentrack._store.server.ServerStore`).
        decode: executions to records (skipping rows that are not records).
    """
    from ml_metadata.metadata_store import ListOptions

    codec = getattr(mlmd, "codec", None)
    if not isinstance(codec, Codec):
        return None
    try:
        found = filters(query, codec)
    except Unpushable:
        return None
    step = query.step

    def wanted(execution: Any) -> bool:
        """The filter's type test follows the collation (and may be a pattern): check it."""
        name = str(execution.type)
        if step is None:
            return name.startswith(STEP_TYPE_PREFIX)
        return name == STEP_TYPE_PREFIX + step

    executions: dict[int, Any] = {}
    for text in found:
        for execution in mlmd.get_executions(list_options=ListOptions(filter_query=text)):
            if wanted(execution):
                executions.setdefault(execution.id, execution)
    records = [record for record in decode(executions.values()) if query.accept(record)]
    return query.order.sort(records, record_facts)[: query.limit]
