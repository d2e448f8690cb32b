"""Reads of an SQLite store straight from MLMD's tables, through a read-only sqlite3 connection.

MLMD's Python API costs ~0.1-0.3 ms per call and one protobuf per row; the
same rows come from its tables in one indexed statement for ~10-20 us.
Everything here only reads, on a connection opened ``mode=ro`` on the same
file (WAL: readers never block MLMD's writer), and only on the schema it was
written for (MLMD schema version 10): any other store, or any sqlite3 error,
returns ``None`` and the caller reads through MLMD as before.  What is read
is what MLMD wrote: the ``zentrack.record`` property of each execution (the
exact journal line) and MLMD's indexes on ``ExecutionProperty``.

One connection per thread and process (opened on first use, ~70 us).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from zentrack._record.line import Record, parse_line, record_from_line
from zentrack._store.candidates import Condition, PropertyTable, probes
from zentrack._store.schema import (
    PIPELINE_CONTEXT,
    PROP_CACHED_FROM,
    PROP_FINGERPRINT,
    PROP_RECORD,
    RUN_CONTEXT,
    STEP_TYPE_PREFIX,
)

log = logging.getLogger("zentrack")

#: The MLMD schema version whose tables these statements read.
SCHEMA_VERSION: Final = 10
#: MLMD ``Type.type_kind`` of execution and context types.
EXECUTION_KIND: Final = 0
CONTEXT_KIND: Final = 2
#: zentrack's own indexes on MLMD's tables (MLMD has none on bool values).
BOOL_INDEXES: Final = {
    "ExecutionProperty": "zt_execution_property_bool",
    "ContextProperty": "zt_context_property_bool",
}


def literal(text: str) -> str:
    """One of zentrack's own names as an SQL string literal."""
    assert "'" not in text
    return f"'{text}'"


#: Run params (and run metrics) as SQL on MLMD's context properties.
RUN_PROPERTIES: Final = PropertyTable("ContextProperty", "context_id", "c.id")
#: The columns every execution read returns: id, record, cached-from id, create time (ms).
RECORD_COLUMNS: Final = "e.id, r.string_value, c.int_value, e.create_time_since_epoch"
#: Joins the exact record and the cached-from id of execution ``e``.
RECORD_JOIN: Final = (
    "JOIN ExecutionProperty r ON r.execution_id = e.id "
    f"AND r.name = {literal(PROP_RECORD)} AND r.is_custom_property = 1 "
    "LEFT JOIN ExecutionProperty c ON c.execution_id = e.id "
    f"AND c.name = {literal(PROP_CACHED_FROM)} AND c.is_custom_property = 1"
)


#: The records of one fingerprint (the statement :meth:`SqliteReader.lookup` runs).
_LOOKUP: Final = (
    "SELECT f.execution_id, r.string_value, c.int_value FROM ExecutionProperty f "
    "JOIN ExecutionProperty r ON r.execution_id = f.execution_id "
    f"AND r.name = {literal(PROP_RECORD)} AND r.is_custom_property = 1 "
    "LEFT JOIN ExecutionProperty c ON c.execution_id = f.execution_id "
    f"AND c.name = {literal(PROP_CACHED_FROM)} AND c.is_custom_property = 1 "
    f"WHERE f.name = {literal(PROP_FINGERPRINT)} "
    "AND f.is_custom_property = 1 AND f.string_value = ?"
)


def record_of(row: Sequence[Any]) -> Record | None:
    """The :class:`Record` of one row of :data:`RECORD_COLUMNS`; ``None`` if it holds none.

    Anyone who can write the store can write a row: one that is not a valid
    record is left out of reads, with a warning (once per row and process).
    """
    text = row[1]
    try:
        data = parse_line(text)
        if data.get("kind", "step") != "step":
            raise ValueError("a run line stored as an execution")
        return record_from_line(
            data,
            execution_id=row[0],
            tagged='"__tuple__"' in text or '"__dict__"' in text,
            cached_execution_id=None if row[2] is None else int(row[2]),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        if row[0] not in _warned:
            _warned.add(row[0])
            warn_unreadable([f"{row[0]} ({exc})"])
        return None


def records_of(rows: Iterable[Sequence[Any]]) -> list[Record]:
    """The records of rows of :data:`RECORD_COLUMNS`, rows holding none left out."""
    return [record for record in map(record_of, rows) if record is not None]


#: Executions already warned about as unreadable in this process.
_warned: set[int] = set()


def oldest_first(records: list[Record]) -> list[Record]:
    """Records in call order, as every read returns them by default."""
    if len(records) > 1:
        records.sort(key=lambda r: (r.started, r.execution_id or 0))
    return records


def warn_unreadable(unreadable: Sequence[str]) -> None:
    """Say which stored executions a read left out: they hold no valid record."""
    if unreadable:
        log.warning(
            "zentrack: %d stored execution(s) hold no valid zentrack record and are left "
            "out of this read: execution id %s. Someone who can write the store changed "
            "them; inspect them with ml_metadata.",
            len(unreadable),
            "; ".join(unreadable[:3]) + ("; ..." if len(unreadable) > 3 else ""),
        )


class SqliteReader:
    """Read-only statements on one SQLite MLMD store.

    Args:
        path: the store file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    # -- the connection --------------------------------------------------------

    def connection(self) -> sqlite3.Connection | None:
        """This thread's connection, or ``None`` if the file cannot be read this way."""
        local = self._local
        con: sqlite3.Connection | None = getattr(local, "con", None)
        try:
            inode = os.stat(self.path).st_ino
        except OSError:
            inode = None
        if con is not None and local.pid == os.getpid() and local.inode == inode:
            return con
        if con is not None and local.pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                con.close()  # the file was replaced: its new content is read anew
        local.con = None  # a forked child never uses its parent's connection
        if inode is None:
            return None
        try:
            con = sqlite3.connect(
                f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            log.debug("zentrack: reading %s through MLMD (%s)", self.path, exc)
            return None
        try:
            (version,) = con.execute("SELECT schema_version FROM MLMDEnv").fetchone()
            con.execute("SELECT json_extract('{\"a\":1}', '$.a')").fetchone()
        except (sqlite3.Error, TypeError) as exc:
            log.debug("zentrack: reading %s through MLMD (%s)", self.path, exc)
            con.close()
            return None
        if version != SCHEMA_VERSION:
            con.close()
            return None
        local.con, local.pid, local.inode = con, os.getpid(), inode
        return con

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        self._local.con = None
        if con is not None and self._local.pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                con.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one read transaction: several statements, one state of the store."""
        con = self.connection()
        if con is None:
            raise sqlite3.OperationalError("store not readable with sqlite3")
        con.execute("BEGIN")
        try:
            yield con
        finally:
            with contextlib.suppress(sqlite3.Error):
                con.execute("COMMIT")

    def has_index(self, con: sqlite3.Connection, name: str) -> bool:
        """Whether one of zentrack's optional indexes exists in this store."""
        found = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
        ).fetchone()
        return found is not None

    # -- lookups ---------------------------------------------------------------

    def lookup(self, fingerprint: str) -> list[Record] | None:
        """The records with ``fingerprint``, oldest first: one statement on MLMD's string index.

        Every execution zentrack writes carries ``zentrack.fingerprint``; MLMD
        indexes string properties by ``(name, is_custom_property, string_value)``.
        """
        rows = self._rows(_LOOKUP, (fingerprint,))
        return None if rows is None else oldest_first(records_of(rows))

    def fingerprints_with_prefix(self, prefix: str, limit: int) -> list[str] | None:
        """Up to ``limit`` stored fingerprints starting with ``prefix``: one index range."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        sql = (
            "SELECT DISTINCT string_value FROM ExecutionProperty "
            f"WHERE name = {literal(PROP_FINGERPRINT)} AND is_custom_property = 1 "
            "AND string_value >= ? AND string_value < ? ORDER BY string_value LIMIT ?"
        )
        rows = self._rows(sql, (prefix, end, limit))
        return None if rows is None else [row[0] for row in rows]

    def step_type_ids(self, con: sqlite3.Connection, step: str | None) -> list[int]:
        """The type ids of one step (or of every zentrack step)."""
        if step is not None:
            sql = "SELECT id FROM Type WHERE type_kind = ? AND name = ?"
            rows = con.execute(sql, (EXECUTION_KIND, STEP_TYPE_PREFIX + step)).fetchall()
        else:
            sql = "SELECT id FROM Type WHERE type_kind = ? AND name >= ? AND name < ?"
            end = STEP_TYPE_PREFIX[:-1] + chr(ord(STEP_TYPE_PREFIX[-1]) + 1)
            rows = con.execute(sql, (EXECUTION_KIND, STEP_TYPE_PREFIX, end)).fetchall()
        return [row[0] for row in rows]

    def step_names(self) -> list[str] | None:
        """The names of the steps that have an ExecutionType here."""
        rows = self._rows(
            "SELECT name FROM Type WHERE type_kind = ? AND name >= ? AND name < ?",
            (EXECUTION_KIND, STEP_TYPE_PREFIX, STEP_TYPE_PREFIX[:-1] + "/"),
        )
        return None if rows is None else sorted(r[0][len(STEP_TYPE_PREFIX) :] for r in rows)

    # -- runs ------------------------------------------------------------------

    def run_rows(
        self, pipeline: str | None, conditions: Sequence[Condition] = ()
    ) -> list[tuple[int, str, str | None]] | None:
        """``(context id, run id, run record text or None)`` of every run (of one pipeline).

        ``conditions`` on the runs' params (and run metrics) filter in SQL, as
        a superset (see :mod:`.candidates`): the caller confirms each run.
        """
        sql = (
            "SELECT c.id, c.name, r.string_value FROM Context c "
            "LEFT JOIN ContextProperty r ON r.context_id = c.id "
            f"AND r.name = {literal(PROP_RECORD)} AND r.is_custom_property = 1 "
            "WHERE c.type_id = (SELECT id FROM Type WHERE type_kind = ? AND name = ?)"
        )
        args: list[Any] = [CONTEXT_KIND, RUN_CONTEXT]
        if pipeline is not None:
            sql += (
                " AND c.id IN (SELECT pc.context_id FROM ParentContext pc "
                "JOIN Context p ON p.id = pc.parent_context_id WHERE p.name = ? "
                "AND p.type_id = (SELECT id FROM Type WHERE type_kind = ? AND name = ?))"
            )
            args += [pipeline, CONTEXT_KIND, PIPELINE_CONTEXT]
        for condition in conditions:
            found = probes(condition)
            if found == []:
                return []  # nothing can satisfy it
            if found is not None or condition.op == "ne":
                clause, more = RUN_PROPERTIES.exists(condition, found)
                sql += f" AND {clause}"
                args += more
        rows = self._rows(sql, args)
        if rows is None:
            return None
        return [(int(cid), str(name), text) for cid, name, text in rows]

    def artifact_properties(self, external_id: str) -> dict[str, Any] | None:
        """The custom properties of the artifact ``external_id`` (empty: no such artifact).

        Each as MLMD stored it: the int, double or string value, whichever is set.
        """
        rows = self._rows(
            "SELECT p.name, COALESCE(p.int_value, p.double_value, p.string_value) "
            "FROM Artifact a JOIN ArtifactProperty p ON p.artifact_id = a.id "
            "AND p.is_custom_property = 1 WHERE a.external_id = ?",
            (external_id,),
        )
        return None if rows is None else dict(rows)

    def run_steps(self, context_id: int) -> list[Record] | None:
        """The records of one run's step calls, in call order."""
        sql = (
            f"SELECT {RECORD_COLUMNS} FROM Association a JOIN Execution e ON e.id = a.execution_id "
            f"{RECORD_JOIN} WHERE a.context_id = ?"
        )
        rows = self._rows(sql, (context_id,))
        return None if rows is None else oldest_first(records_of(rows))

    def _rows(self, sql: str, args: Sequence[Any]) -> list[Any] | None:
        con = self.connection()
        if con is None:
            return None
        try:
            return con.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            log.debug("zentrack: sqlite3 read of %s failed, using MLMD: %s", self.path, exc)
            return None


def add_indexes(path: Path) -> bool:
    """Add zentrack's indexes on bool property values if missing; tell whether they exist.

    MLMD indexes int, double and string values, not bools.  Optional and
    harmless: named apart from MLMD's, created ``IF NOT EXISTS`` by a writer
    (under zentrack's writer lock, while MLMD is not open in this process),
    skipped when the file cannot be written or has no MLMD tables yet.
    Without them, queries on bools and on numeric ranges scan the step's
    executions instead.
    """
    if not path.is_file():
        return False
    try:
        con = sqlite3.connect(path, timeout=2.0, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        for table, index in BOOL_INDEXES.items():
            con.execute(
                f"CREATE INDEX IF NOT EXISTS {index} ON {table} "
                "(name, is_custom_property, bool_value) WHERE bool_value IS NOT NULL"
            )
    except sqlite3.Error as exc:
        log.debug("zentrack: indexes not added to %s: %s", path, exc)
        return False
    finally:
        con.close()
    return True
