"""``find`` on an SQLite store: candidates from MLMD's indexes, confirmed exactly, ordered, cut.

One condition *drives* the statement: the union of its probes (see
:mod:`.candidates`) read from MLMD's indexes gives candidate execution ids;
every other condition filters them with an ``EXISTS`` on the primary key of
``ExecutionProperty``.  Every candidate's exact record is then decoded and
confirmed by the caller's matcher, which is what makes the answer exact.

Without a usable driver (``ne`` only, no conditions, a value type MLMD does
not index), the step's executions are scanned; with a ``limit`` they are
read in an order that lets the scan stop early:

* ``started``: SQLite orders by the record's ``t0`` (``json_extract``, in C:
  no Python object per skipped row);
* ``-started``: newest first by MLMD's ``create_time_since_epoch`` index.
  A record is written after its call ended, by a process of the same host,
  so its ``t0`` is at most its create time: the scan stops once the create
  time falls :data:`CLOCK_SLACK` seconds below the ``limit``-th start seen
  (the slack covers clock steps between a call and its write);
* a param or metric: the value indexes of the name, merged in value order;
  stops once no unread value can come within :func:`.tolerance` of the
  ``limit``-th.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import attrs

from zentrack._record.line import Record
from zentrack._store.candidates import (
    RANK,
    STARTED,
    Condition,
    Order,
    Probe,
    PropertyTable,
    probes,
    record_facts,
    tolerance,
)
from zentrack._store.schema import EXECUTION_STATES, METRIC_PREFIX
from zentrack._store.sqlite_reads import (
    BOOL_INDEXES,
    RECORD_COLUMNS,
    RECORD_JOIN,
    SqliteReader,
    record_of,
    records_of,
)

#: Seconds a host clock may step back between a call and its write (``-started`` scans).
CLOCK_SLACK: Final = 2.0
#: A record's start time in seconds, as ``Record.started`` is made from its line's ``t0``.
_STARTED_SQL: Final = "COALESCE(json_extract(r.string_value, '$.t0'), 0) / 1e9"
_BIG_INT: Final = re.compile(r"-?[0-9]+")


@attrs.frozen
class Query:
    """What ``find`` asks.

    Attributes:
        step: one step's records, or ``None`` for every step.
        conditions: the ``name__op=value`` conditions (all must hold).
        state: only records in this state.
        accept: the exact matcher: True for a record that satisfies every condition.
        order: the order of the result.
        limit: at most this many records.
    """

    step: str | None
    conditions: tuple[Condition, ...]
    state: str | None
    accept: Callable[[Record], bool]
    order: Order = attrs.field(factory=Order)
    limit: int | None = None


EXECUTIONS: Final = PropertyTable("ExecutionProperty", "execution_id", "e.id")


def usable(found: Sequence[Probe] | None, bool_index: bool) -> bool:
    """Whether every probe has an index (bool values only with zentrack's own)."""
    return found is not None and (bool_index or all(p.column != "bool" for p in found))


def plan(
    conditions: Sequence[Condition],
    bool_index: bool,
    where: PropertyTable = EXECUTIONS,
    con: sqlite3.Connection | None = None,
) -> tuple[str | None, list[Any], list[str], list[Any]] | None:
    """Split conditions into a driver and filters; ``None`` when nothing can match.

    The driver is the condition whose probes find the fewest rows (counted
    on the indexes with ``con``, up to a cap), else the one whose operator
    usually finds the fewest.

    Returns:
        ``(driver SQL or None, its args, filter clauses, their args)``.
    """
    found = [(c, probes(c)) for c in conditions]
    if any(p == [] for _, p in found):
        return None
    drivers = [(0, RANK[c.op], i) for i, (c, p) in enumerate(found) if usable(p, bool_index)]
    if con is not None and len(drivers) > 1:
        drivers = [
            (where.estimate(con, found[i][0], found[i][1] or ()), rank, i) for _, rank, i in drivers
        ]
    chosen = min(drivers)[-1] if drivers else -1
    driver_sql: str | None = None
    driver_args: list[Any] = []
    clauses: list[str] = []
    args: list[Any] = []
    for i, (condition, probed) in enumerate(found):
        if i == chosen:
            assert probed is not None
            driver_sql, driver_args = where.driver(condition, probed)
        elif probed is not None or condition.op == "ne":
            clause, more = where.exists(condition, probed)
            clauses.append(clause)
            args += more
        # else: a value no index knows: only the exact matcher decides
    return driver_sql, driver_args, clauses, args


def select(reader: SqliteReader, query: Query) -> list[Record] | None:
    """The records ``query`` asks for, or ``None`` if this store is not readable here."""
    try:
        with reader.snapshot() as con:
            return _select(reader, con, query)
    except sqlite3.Error:
        return None


@attrs.frozen
class Statement:
    """A query as SQL: ``where`` on execution ``e``, and the driver when one is indexed."""

    where: str
    args: list[Any]
    driver: str | None
    driver_args: list[Any]
    bool_index: bool

    def candidates(self) -> tuple[str, list[Any]]:
        """Every candidate's record: from the driver's ids, else a scan of the step."""
        source = (
            f"({self.driver}) AS cand JOIN Execution e ON e.id = cand.id"
            if self.driver
            else "Execution e"
        )
        sql = f"SELECT {RECORD_COLUMNS} FROM {source} {RECORD_JOIN} WHERE {self.where}"
        return sql, [*self.driver_args, *self.args]


def statement(reader: SqliteReader, con: sqlite3.Connection, query: Query) -> Statement | None:
    """The SQL of ``query``; ``None`` when nothing can match (no such step, state or value)."""
    type_ids = reader.step_type_ids(con, query.step)
    if not type_ids:
        return None
    bool_index = reader.has_index(con, BOOL_INDEXES["ExecutionProperty"])
    planned = plan(query.conditions, bool_index, con=con)
    if planned is None:
        return None
    driver, driver_args, clauses, filter_args = planned
    head = [f"e.type_id IN ({', '.join('?' * len(type_ids))})"]
    head_args: list[Any] = [*type_ids]
    if query.state is not None:
        if query.state not in EXECUTION_STATES:
            return None  # MLMD has no such state: no record is in it
        head.append("e.last_known_state = ?")
        head_args.append(EXECUTION_STATES[query.state])
    where = " AND ".join([*head, *clauses])
    return Statement(where, [*head_args, *filter_args], driver, driver_args, bool_index)


def explain(reader: SqliteReader, query: Query) -> list[str]:
    """SQLite's plan of the statement that reads ``query``'s candidates (for tests, docs)."""
    with reader.snapshot() as con:
        found = statement(reader, con, query)
        if found is None:
            return []
        sql, args = found.candidates()
        return [row[-1] for row in con.execute("EXPLAIN QUERY PLAN " + sql, args)]


def _select(reader: SqliteReader, con: sqlite3.Connection, query: Query) -> list[Record]:
    found = statement(reader, con, query)
    if found is None:
        return []
    order, limit = query.order, query.limit
    if found.driver is not None or limit is None:
        sql, args = found.candidates()
        records = [r for r in records_of(con.execute(sql, args)) if query.accept(r)]
        return order.sort(records, record_facts)[:limit]
    if limit <= 0:
        return []
    where, args = found.where, found.args
    if order.key == STARTED and not order.descending:
        return _oldest(con, where, args, query.accept, limit)
    if order.key == STARTED:
        return _newest(con, where, args, query.accept, limit)
    best = _by_value(con, where, args, query, limit, found.bool_index)
    if best is None:  # fewer records with a number than asked: read them all
        return _select(reader, con, attrs.evolve(query, limit=None))[:limit]
    return best


def _oldest(
    con: sqlite3.Connection, where: str, args: list[Any], accept: Callable[[Record], bool], k: int
) -> list[Record]:
    """The first ``k`` in call order: SQLite sorts ids on ``t0`` (as ``Record.started`` is made).

    Only ids and start times go through SQLite's sorter; records are read
    by id, in that order, until ``k`` are accepted.
    """
    sql = (
        f"SELECT e.id FROM Execution e {RECORD_JOIN} WHERE {where} "
        f"ORDER BY {_STARTED_SQL}, e.id"
    )
    fetch = _fetch(where)
    out: list[Record] = []
    for (execution_id,) in con.execute(sql, args):
        row = con.execute(fetch, [execution_id, *args]).fetchone()
        record = record_of(row) if row is not None else None
        if record is not None and accept(record):
            out.append(record)
            if len(out) == k:
                break
    return out


def _fetch(where: str) -> str:
    """One execution's record by id, if it passes ``where``."""
    return f"SELECT {RECORD_COLUMNS} FROM Execution e {RECORD_JOIN} WHERE e.id = ? AND {where}"


class _Best:
    """The ``k`` best items seen so far, by an exact key."""

    def __init__(self, k: int, order: Order) -> None:
        self.k = k
        self.order = order
        self.items: list[tuple[tuple[Any, ...], Record]] = []

    @property
    def full(self) -> bool:
        return len(self.items) >= self.k

    def worst(self) -> tuple[Any, ...]:
        return self.items[-1][0]

    def offer(self, record: Record) -> None:
        key = self.order.key_of(record_facts(record))
        if self.full and key >= self.worst():
            return
        bisect.insort(self.items, (key, record), key=lambda item: item[0])
        del self.items[self.k :]

    def records(self) -> list[Record]:
        return [record for _, record in self.items]


def _newest(
    con: sqlite3.Connection, where: str, args: list[Any], accept: Callable[[Record], bool], k: int
) -> list[Record]:
    """The newest ``k``: the newest written first, then every record that may still be newer.

    Once ``k`` records are accepted, the ``k``-th start time bounds the rest:
    a record started later was written (create time) no earlier than
    :data:`CLOCK_SLACK` before it.  SQLite then reads that create-time range
    and keeps and sorts, in C, only the records started no earlier than the
    ``k``-th (``t0`` by ``json_extract``); they are decoded newest first until
    the rest cannot be among the ``k`` newest.
    """
    newest = (
        f"SELECT e.id FROM Execution e INDEXED BY idx_execution_create_time_since_epoch "
        f"WHERE {where} ORDER BY e.create_time_since_epoch DESC"
    )
    fetch = _fetch(where)
    best = _Best(k, Order(STARTED, descending=True))
    seen: set[int] = set()
    for (execution_id,) in con.execute(newest, args):
        seen.add(execution_id)
        row = con.execute(fetch, [execution_id, *args]).fetchone()
        if row is not None and (record := record_of(row)) is not None and accept(record):
            best.offer(record)
            if best.full:
                break
    if not best.full:
        return best.records()  # fewer than k match at all
    kth = -best.worst()[0]  # the k-th start time, seconds
    rest = (
        f"SELECT e.id, {_STARTED_SQL} AS started FROM Execution e "
        f"INDEXED BY idx_execution_create_time_since_epoch {RECORD_JOIN} "
        f"WHERE {where} AND e.create_time_since_epoch >= ? AND {_STARTED_SQL} >= ? "
        "ORDER BY started DESC, e.id DESC"
    )
    bound = math.floor((kth - CLOCK_SLACK) * 1000)
    for execution_id, started in con.execute(rest, [*args, bound, kth]).fetchall():
        if best.full and started < -best.worst()[0]:
            break  # in (started, id) order: nothing later can be among the k newest
        if execution_id in seen:
            continue
        row = con.execute(fetch, [execution_id, *args]).fetchone()
        if row is not None and (record := record_of(row)) is not None and accept(record):
            best.offer(record)
    return best.records()


def _by_value(
    con: sqlite3.Connection,
    where: str,
    args: list[Any],
    query: Query,
    k: int,
    bool_index: bool,
) -> list[Record] | None:
    """The first ``k`` by a param/metric: merge its value indexes, stop when decided.

    ``None`` when fewer than ``k`` records have a number for it.
    """
    order = query.order
    direction = "DESC" if order.descending else "ASC"
    streams: list[Iterable[tuple[Any, int]]] = []
    for name in (order.key, METRIC_PREFIX + order.key):
        for column in ("int", "double", "bool") if bool_index else ("int", "double"):
            streams.append(
                con.execute(
                    f"SELECT p.{column}_value, p.execution_id FROM ExecutionProperty p "
                    f"WHERE p.name = ? AND p.is_custom_property = 1 "
                    f"AND p.{column}_value IS NOT NULL ORDER BY p.{column}_value {direction}",
                    (name,),
                )
            )
        streams.append(_texts(con, name, order.descending))
    if not bool_index:
        streams.append(_bools(con, where, args, order))
    fetch = _fetch(where)
    best = _Best(k, order)
    seen: set[int] = set()
    merged: Iterator[tuple[Any, int]] = heapq.merge(
        *streams, key=lambda item: item[0], reverse=order.descending
    )
    for value, execution_id in merged:
        if best.full and best.worst()[0] == 0:
            slack = tolerance(value) if type(value) is float else 0
            limit = -best.worst()[1] if order.descending else best.worst()[1]
            if (value + slack < limit) if order.descending else (value - slack > limit):
                break
        if execution_id in seen:
            continue
        seen.add(execution_id)
        row = con.execute(fetch, [execution_id, *args]).fetchone()
        record = record_of(row) if row is not None else None
        if record is not None and query.accept(record):
            best.offer(record)
    if not best.full or best.worst()[0] != 0:
        return None
    return best.records()


def _texts(con: sqlite3.Connection, name: str, descending: bool) -> list[tuple[Any, int]]:
    """Numbers zentrack stores as text (ints beyond 64 bits, infinities), in order."""
    rows = con.execute(
        "SELECT p.string_value, p.execution_id FROM ExecutionProperty p "
        "WHERE p.name = ? AND p.is_custom_property = 1 AND ((p.string_value >= '-' "
        "AND p.string_value < ':') OR p.string_value = 'inf')",
        (name,),
    )
    found: list[tuple[Any, int]] = []
    for text, execution_id in rows:
        if _BIG_INT.fullmatch(text):
            found.append((int(text), execution_id))
        elif text in ("inf", "-inf"):
            found.append((math.inf if text == "inf" else -math.inf, execution_id))
    found.sort(key=lambda item: item[0], reverse=descending)
    return found


def _bools(
    con: sqlite3.Connection, where: str, args: list[Any], order: Order
) -> list[tuple[Any, int]]:
    """Bool values of the name without zentrack's index: read through the step's executions."""
    found: list[tuple[Any, int]] = []
    for name in (order.key, METRIC_PREFIX + order.key):
        found += con.execute(
            "SELECT p.bool_value, e.id FROM Execution e JOIN ExecutionProperty p "
            "ON p.execution_id = e.id AND p.name = ? AND p.is_custom_property = 1 "
            f"WHERE p.bool_value IS NOT NULL AND {where}",
            [name, *args],
        ).fetchall()
    found.sort(key=lambda item: item[0], reverse=order.descending)
    return found
