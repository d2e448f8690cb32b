"""Executions inserted straight into an SQLite store's MLMD tables: the flush's fast path.

MLMD's ``put_executions`` builds every INSERT as SQL text and runs it on
its own: about 260 µs per execution of six properties here, nearly all of
a flush (``benchmarks/bench_flush.py``).  The same rows inserted through
``sqlite3`` with bound values, in one transaction, cost well under half.

The rows are MLMD's own, so plain ``ml_metadata`` readers cannot tell them
apart (``tests/test_sqlite_writes.py`` compares both table by table):

* ``Execution``: ``type_id``, ``last_known_state``, ``external_id``, ``name``
  NULL, both times in milliseconds since the epoch, the id from SQLite;
* ``ExecutionProperty``: one row per custom property (``is_custom_property``
  1) with only its value column set; a double as MLMD writes it, printed
  with six decimals (``%f``) and read back, a bool as 0 or 1.

Used only on the schema this was checked against (:data:`SCHEMA_VERSION`
and the columns below); any other store is written through MLMD.  Never
open while MLMD's connection is open in this process: MLMD links its own
copy of SQLite, and POSIX locks are per process (see
:class:`~zentrack._store.mlmd.MetadataStore`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from zentrack._store.schema import PROP_RECORD, Cells
from zentrack._store.sqlite_reads import SCHEMA_VERSION

log = logging.getLogger("zentrack")

#: The columns MLMD 1.17's schema gives the two tables written here, in order.
EXECUTION_COLUMNS: Final = (
    "id",
    "type_id",
    "last_known_state",
    "name",
    "external_id",
    "create_time_since_epoch",
    "last_update_time_since_epoch",
)
PROPERTY_COLUMNS: Final = (
    "execution_id",
    "name",
    "is_custom_property",
    "int_value",
    "double_value",
    "string_value",
    "byte_value",
    "proto_value",
    "bool_value",
)
#: Seconds a write waits for another connection's write lock (MLMD waits too).
BUSY_TIMEOUT: Final = 30.0
#: Where each MLMD value field goes in an ExecutionProperty row's values.
_SLOT: Final = {"int_value": 0, "double_value": 1, "string_value": 2, "bool_value": 3}

_INSERT_EXECUTION: Final = (
    "INSERT INTO Execution (type_id, last_known_state, external_id, "
    "create_time_since_epoch, last_update_time_since_epoch) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_PROPERTY: Final = (
    "INSERT INTO ExecutionProperty (execution_id, name, is_custom_property, int_value, "
    "double_value, string_value, bool_value) VALUES (?, ?, 1, ?, ?, ?, ?)"
)

#: One execution to insert: type id, state number, external id and its custom
#: properties (see :func:`~zentrack._store.schema.native_cells`).
NewExecution = tuple[int, int, str, Cells]


def mlmd_double(value: float) -> float:
    """The double MLMD stores for ``value``: printed with six decimals, then parsed."""
    return float(f"{value:f}")


class SqliteWriter:
    """A read-write ``sqlite3`` connection to one MLMD store, opened on first use.

    Args:
        path: the store file (never created here: MLMD makes new stores).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._con: sqlite3.Connection | None = None
        self._pid = 0  # a forked child never uses (nor closes) its parent's connection
        #: False once the file proved not to be the schema these rows are for.
        self.usable = True
        #: Executions this writer has inserted (tests tell the two paths apart by it).
        self.inserted = 0

    def connection(self) -> sqlite3.Connection | None:
        """The open connection, or ``None`` if this store must be written through MLMD."""
        if self._con is not None and self._pid != os.getpid():
            self._con = None
        if self._con is not None or not self.usable:
            return self._con
        try:
            con = sqlite3.connect(
                f"{self.path.as_uri()}?mode=rw",
                uri=True,
                isolation_level=None,
                timeout=BUSY_TIMEOUT,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            log.debug("zentrack: writing %s through MLMD (%s)", self.path, exc)
            self.usable = False
            return None
        if not _known_schema(con):
            con.close()
            self.usable = False
            log.debug("zentrack: writing %s through MLMD (another schema)", self.path)
            return None
        self._con, self._pid = con, os.getpid()
        return con

    def close(self) -> None:
        """Close the connection (before MLMD opens the file in this process)."""
        con, self._con = self._con, None
        if con is not None and self._pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                con.close()

    def first_executions(self, external_ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        """``external id -> (execution id, record id)`` of the stored ones among ``external_ids``.

        The record id is the ``id`` in the row's ``zentrack.record`` JSON
        (else its external id): :func:`record_id_of`.
        """
        con = self.connection()
        assert con is not None
        wanted = list(dict.fromkeys(external_ids))
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = con.execute(
                "SELECT e.id, e.external_id, p.string_value FROM Execution AS e "
                "LEFT JOIN ExecutionProperty AS p ON p.execution_id = e.id "
                "AND p.name = ? AND p.is_custom_property = 1 "
                f"WHERE e.external_id IN ({marks})",
                (PROP_RECORD, *part),
            )
            for execution_id, external_id, record in rows:
                found[external_id] = (int(execution_id), record_id_of(record, external_id))
        return found

    def insert(self, executions: Sequence[NewExecution]) -> list[int]:
        """Insert ``executions`` in one transaction; return their new ids, in order.

        Raises:
            sqlite3.IntegrityError: an external id is stored already (nothing is written).
            sqlite3.OperationalError: the store is locked, read-only or full.
        """
        con = self.connection()
        assert con is not None
        now = time.time_ns() // 1_000_000
        ids: list[int] = []
        rows: list[tuple[Any, ...]] = []
        double = mlmd_double
        slot = _SLOT
        con.execute("BEGIN IMMEDIATE")
        try:
            for type_id, state, external_id, cells in executions:
                cursor = con.execute(_INSERT_EXECUTION, (type_id, state, external_id, now, now))
                execution_id = cursor.lastrowid
                assert execution_id is not None
                ids.append(execution_id)
                for name, (field, value) in cells.items():
                    values: list[Any] = [execution_id, name, None, None, None, None]
                    if field == "double_value":
                        value = double(value)
                    elif field == "bool_value":
                        value = int(value)
                    values[2 + slot[field]] = value
                    rows.append(tuple(values))
            con.executemany(_INSERT_PROPERTY, rows)
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                con.execute("ROLLBACK")
            raise
        self.inserted += len(ids)
        return ids


def record_id_of(record: object, external_id: str) -> str:
    """The zentrack record id of a stored execution: its ``zentrack.record``'s ``id``.

    ``record`` is that property's text (``None`` if absent); a row without a
    readable one is known by its ``external_id``.
    """
    if isinstance(record, str):
        try:  # a row someone else wrote may hold anything: never let it block a write
            found = json.loads(record).get("id")
        except (ValueError, AttributeError, RecursionError):
            found = None
        if isinstance(found, str):
            return found
    return external_id


def _known_schema(con: sqlite3.Connection) -> bool:
    """Whether the file is MLMD's schema these rows were checked against."""
    try:
        row = con.execute("SELECT schema_version FROM MLMDEnv").fetchone()
        execution = tuple(r[1] for r in con.execute("PRAGMA table_info(Execution)"))
        prop = tuple(r[1] for r in con.execute("PRAGMA table_info(ExecutionProperty)"))
    except sqlite3.Error:
        return False
    return (
        row is not None
        and row[0] == SCHEMA_VERSION
        and execution == EXECUTION_COLUMNS
        and prop == PROPERTY_COLUMNS
    )
