"""The MLMD adapter: zentrack's reads and writes of one store, opened on first use.

What it writes (type and property names, the native value form) is owned
by :mod:`.schema`; output artifacts and their events by :mod:`.artifacts`;
why a store cannot be opened by :mod:`.open_errors`; the server form of
PostgreSQL and MySQL stores by :mod:`.server`.  ``ml_metadata`` itself is
imported inside the methods, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from zentrack._log import keep_root_logging
from zentrack._record.line import (
    ANNOTATION_KIND,
    RUN_KIND,
    Record,
    parse_line,
    with_fingerprint,
)
from zentrack._store.artifacts import lineage_wanted, nodes_by_external_ids, write_lineage
from zentrack._store.execution_cells import record_cells
from zentrack._store.location import Location
from zentrack._store.open_errors import check_sqlite_file, explain_open_error
from zentrack._store.reads import StoreReads
from zentrack._store.run_contexts import annotate_runs, mark_run, upsert_runs
from zentrack._store.schema import (
    EXECUTION_STATES,
    FINGERPRINT_CONTEXT,
    OUTPUT_ARTIFACT,
    OUTPUT_PROPS,
    PIPELINE_CONTEXT,
    PROP_CACHED_FROM,
    PROP_OUTPUT_SIZE,
    PROP_RECORD,
    RUN_CONTEXT,
    STEP_TYPE_PREFIX,
)
from zentrack._store.sqlite_reads import SqliteReader, add_indexes
from zentrack._store.sqlite_writes import NewExecution, SqliteWriter, record_id_of
from zentrack.exceptions import StoreError

log = logging.getLogger("zentrack")

def _record_id(execution: Any) -> str:
    """The zentrack record id of a stored execution (its journal line's ``id``)."""
    props = execution.custom_properties
    record = props[PROP_RECORD].string_value if PROP_RECORD in props else None
    return record_id_of(record, str(execution.external_id))


def _connection_config(location: Location) -> Any:
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = pb.ConnectionConfig()
    if location.kind == "memory":
        config.fake_database.SetInParent()
    elif location.kind == "sqlite":
        assert location.path is not None
        config.sqlite.filename_uri = str(location.path)
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    else:
        from zentrack._store.server import connection_config

        return connection_config(location)  # checked first: MLMD aborts on missing fields
    return config


#: SQLite stores of MLMD's schema get their executions inserted directly (:mod:`.sqlite_writes`).
DIRECT_WRITES: Final = True
#: A batch at least this large closes an open MLMD connection to write directly.
SWITCH_BATCH: Final = 64

#: Where records are when the store did not take them from a journal.
IN_JOURNAL: Final = (
    "Nothing is lost: the records stay in the journal and are written by the next flush."
)


def explain_write_error(
    location: Location, exc: Exception, kept: str | None = IN_JOURNAL
) -> StoreError:
    """Turn an MLMD write failure into an error that says what to do.

    MLMD's own text quotes the protobuf and SQL it was writing: it is shown
    only when the cause is not one of the known ones.  ``kept`` says where
    the records are now (``None``: the caller says it).
    """
    where = location.display
    message = str(exc).strip()
    if "readonly" in message or "read-only" in message or "unable to open" in message:
        cause = "the database is read-only"
        fix = "make the file and its folder writable (SQLite writes -wal/-shm files beside it)"
    elif "locked" in message or "Concurrent writes aborted" in message:
        cause = "the database is locked"
        fix = "another process holds the database lock; retry when it is done"
    elif "disk" in message and "full" in message:
        cause, fix = "the disk is full", "free disk space"
    else:
        cause, fix = f"{type(exc).__name__}: {message[:300]}", "check the store"
    text = f"Store {where!r}: writing records failed ({cause}); {fix}."
    return StoreError(f"{text} {kept}" if kept else text)


class MetadataStore(StoreReads):
    """zentrack's view of one MLMD store, opened on first use.

    On SQLite, reads go straight to MLMD's tables through a read-only
    sqlite3 connection (:mod:`.sqlite_reads`), executions are inserted the
    same way (:mod:`.sqlite_writes`), and everything else is written through
    MLMD.  Python's sqlite3 and MLMD are never open at once in one process:
    MLMD links its own copy of SQLite, and SQLite's POSIX locks are per
    process, so one copy closing the file drops the other's locks (another
    process may then checkpoint and delete the write-ahead log under it).
    Opening MLMD closes the sqlite3 connections; :meth:`release` closes MLMD
    (after a flush, or before a direct write), so reads go fast again.
    """

    def __init__(self, location: Location) -> None:
        self.location = location
        self._store: Any = None
        self._type_ids: dict[str, int] = {}
        self._fp_context_type: int | None = None
        self._context_type_ids: dict[str, int] = {}
        self._artifact_type_ids: dict[str, int] = {}
        self._reader = (
            SqliteReader(location.path)
            if location.kind == "sqlite" and location.path is not None
            else None
        )
        #: Inserts executions into an SQLite store without MLMD (never while MLMD is open).
        self._writer = SqliteWriter(self._reader.path) if self._reader is not None else None
        #: Guards the switch between MLMD and the reader (see the class docstring).
        self._gate = threading.RLock()
        self._indexed = False

    @property
    def reader(self) -> SqliteReader | None:
        """The direct reader of an SQLite store (``None`` for other stores)."""
        return self._reader

    @property
    def mlmd(self) -> Any:
        """The underlying ``ml_metadata`` ``MetadataStore``, opened on first use."""
        store = self._store
        if store is None:
            with self._gate:
                if self._reader is not None:
                    self._reader.close()
                if self._writer is not None:
                    self._writer.close()
                if self._store is None:
                    self._store = self._open(upgrade=False)
                store = self._store
        return store

    @property
    def is_open(self) -> bool:
        """Whether MLMD's connection is open in this process."""
        return self._store is not None

    @contextlib.contextmanager
    def reading(self) -> Iterator[SqliteReader | None]:
        """The direct reader for one read, or ``None`` (MLMD is open here, or not SQLite)."""
        if self._reader is None or self._store is not None:
            yield None
            return
        with self._gate:
            yield None if self._store is not None else self._reader

    def release(self) -> None:
        """Close MLMD's connection (after a flush): reads use the direct reader again.

        Type ids stay cached: the next write reopens the same database.
        """
        if self._reader is not None and self._store is not None:
            with self._gate:
                self._store = None

    def _open(self, upgrade: bool) -> Any:
        with keep_root_logging():  # MLMD's absl log would configure the root logger
            return self._connect(upgrade)

    def _connect(self, upgrade: bool) -> Any:
        os.environ.setdefault("GLOG_minloglevel", "2")
        if self.location.kind == "sqlite":
            assert self.location.path is not None
            check_sqlite_file(self.location.path)
        else:
            from zentrack._store.server import ServerStore
            from zentrack._store.server_values import SERVER_KINDS

            if self.location.kind in SERVER_KINDS:  # values MLMD cannot store there: see module
                return ServerStore(self.location, upgrade=upgrade)
        from ml_metadata.metadata_store import metadata_store

        try:
            return metadata_store.MetadataStore(
                _connection_config(self.location), enable_upgrade_migration=upgrade
            )
        except RuntimeError as exc:
            raise explain_open_error(self.location, str(exc)) from None

    def migrate(self) -> None:
        """Upgrade an older MLMD schema in place (the caller backs it up)."""
        self._store = self._open(upgrade=True)

    # -- writing -------------------------------------------------------------

    def _step_type_id(self, step: str) -> int:
        type_id = self._type_ids.get(step)
        if type_id is None:
            from ml_metadata.proto import metadata_store_pb2 as pb

            type_id = self.mlmd.put_execution_type(
                pb.ExecutionType(name=STEP_TYPE_PREFIX + step), can_add_fields=True
            )
            self._type_ids[step] = type_id
        return int(type_id)

    def _fingerprint_type_id(self) -> int:
        if self._fp_context_type is None:
            from ml_metadata.proto import metadata_store_pb2 as pb

            self._fp_context_type = self.mlmd.put_context_type(
                pb.ContextType(name=FINGERPRINT_CONTEXT)
            )
        return int(self._fp_context_type)

    def _first_executions(self, fingerprints: Iterable[str]) -> dict[str, Any]:
        """The first execution of each fingerprint (external_id = fingerprint)."""
        return nodes_by_external_ids(self.mlmd, "executions", fingerprints)

    def _fingerprint_contexts(self, fingerprints: Iterable[str]) -> dict[str, int]:
        """Return the context id of each fingerprint, creating missing ones."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        wanted = {f"{FINGERPRINT_CONTEXT}/{fp}": fp for fp in fingerprints}
        found = nodes_by_external_ids(self.mlmd, "contexts", wanted).values()
        ids = {wanted[c.external_id]: c.id for c in found}
        missing = [key for key, fp in wanted.items() if fp not in ids]
        if missing:
            type_id = self._fingerprint_type_id()
            new = [pb.Context(type_id=type_id, name=wanted[k], external_id=k) for k in missing]
            for key, context_id in zip(missing, self.mlmd.put_contexts(new), strict=True):
                ids[wanted[key]] = context_id
        return ids

    def write(
        self,
        lines: Sequence[bytes | str],
        *,
        check_existing: bool = False,
        rejected: list[tuple[int, str]] | None = None,
        kept: str | None = IN_JOURNAL,
    ) -> int:
        """Write journal lines as executions; return how many were new.

        Idempotent: lines whose record id is already stored are skipped (their
        fingerprint association is re-asserted, which MLMD ignores if present).
        Looking every id up first costs as much as a third of the write, so
        that is done only with ``check_existing`` (the drainer knows when a
        replay is possible) or when MLMD reports a duplicate id.  Malformed
        lines (see :func:`~zentrack._record.line.validate_line`) are skipped,
        never fatal: listed in ``rejected`` as ``(index, reason)`` if given
        (the drainer sets them aside), else logged.  ``kept`` is the sentence
        the error of a failed write ends with: where the records are now.

        Also adds zentrack's index to an SQLite file (see :func:`.add_indexes`),
        once, under the writer lock and while MLMD is closed in this process.
        """
        fresh = False
        if not self._indexed and self._reader is not None and self._store is None:
            with self._gate:
                self._indexed = add_indexes(self._reader.path)
            fresh = not self._indexed  # a new file: MLMD makes its tables now
        bad: list[tuple[int, str]] = [] if rejected is None else rejected
        try:
            written = self._write_retrying(lines, check_existing, bad, kept)
        finally:
            if rejected is None and bad:
                log.warning(
                    "zentrack: skipped %d malformed journal line(s), e.g. %s",
                    len(bad),
                    bad[0][1],
                )
        if fresh and self._reader is not None:
            self.release()
            with self._gate:
                self._indexed = add_indexes(self._reader.path)
        return written

    def _write_retrying(
        self,
        lines: Sequence[bytes | str],
        check_existing: bool,
        rejected: list[tuple[int, str]],
        kept: str | None,
    ) -> int:
        from ml_metadata import errors

        try:
            try:
                return self._write(lines, check_existing, rejected)
            except (errors.AlreadyExistsError, sqlite3.IntegrityError):
                if check_existing:
                    raise
                return self._write(lines, True, rejected)
        except StoreError:
            raise
        except (errors.StatusError, RuntimeError, sqlite3.Error):
            # A connection opened while the store was read-only (or a server
            # restarted) stays broken: retry once on a fresh one, replay-safe.
            self.reset()
        try:
            return self._write(lines, True, rejected)
        except StoreError:
            raise
        except (errors.StatusError, RuntimeError, sqlite3.Error) as exc:
            self.reset()  # the next flush reconnects: the cause may be fixed by then
            raise explain_write_error(self.location, exc, kept) from None

    def reset(self) -> None:
        """Drop the MLMD connection and cached type ids (reopened on next use)."""
        self._store = None
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            self._writer.close()
            self._writer.usable = True  # the file may have been replaced: check it again
        self._type_ids.clear()
        self._context_type_ids.clear()
        self._fp_context_type = None
        self._artifact_type_ids.clear()

    def _write(
        self, lines: Sequence[bytes | str], check_existing: bool, rejected: list[tuple[int, str]]
    ) -> int:
        # Under the gate: another thread opening MLMD would close the direct writer mid-batch.
        with self._gate:
            return self._write_batch(lines, check_existing, rejected)

    def _write_batch(
        self, lines: Sequence[bytes | str], check_existing: bool, rejected: list[tuple[int, str]]
    ) -> int:
        from ml_metadata.proto import metadata_store_pb2 as pb

        records: dict[str, tuple[dict[str, Any], str]] = {}
        runs: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        rejected.clear()  # a retry starts over
        for index, line in enumerate(lines):
            text = line.decode(errors="replace") if isinstance(line, bytes) else line
            try:
                data = parse_line(text)
            except ValueError as exc:
                rejected.append((index, f"{exc}: {text[:80]!r}"))
                continue
            kind = data.get("kind")
            if kind is None:  # a step line, nearly always
                records[data["id"]] = (data, with_fingerprint(text, data))
            elif kind == RUN_KIND:
                runs.append(data)
            elif kind == ANNOTATION_KIND:
                annotations.append(data)
            else:
                records[data["id"]] = (data, text)
        referenced = {d["run"] for d, _ in records.values() if d.get("run")}
        referenced |= {a["run"] for a in annotations if type(a.get("run")) is str and a["run"]}
        run_contexts = (
            upsert_runs(self.mlmd, self.context_type_id, runs, referenced)
            if runs or referenced
            else {}
        )
        if annotations:
            annotate_runs(self.mlmd, annotations)
        if not records:
            return 0
        type_ids: dict[str, int] = {}  # step name -> type id, for this batch
        for data, _ in records.values():
            if data["step"] not in type_ids:
                type_ids[data["step"]] = self._step_type_id(data["step"])
        writer = self._direct_writer(len(records))
        firsts = self._firsts({d["fp"] for d, _ in records.values()}, writer)
        first_ids = {record_id: execution_id for execution_id, record_id in firsts.values()}
        existing = {r: first_ids[r] for r in records if r in first_ids}
        if check_existing:
            missing = [r for r in records if r not in existing]
            existing.update({r: e for r, (e, _) in self._firsts(missing, writer).items()})
        # The first execution of a fingerprint is found by external_id = fingerprint;
        # a fingerprint context is only needed once a second execution shares it.
        new_first: dict[str, str] = {}
        shared: set[str] = set()
        for record_id, (data, _) in records.items():
            fp = data["fp"]
            if record_id in existing:
                continue
            if fp in firsts or fp in new_first:
                shared.add(fp)
            else:
                new_first[fp] = record_id
        first: list[tuple[str, NewExecution]] = []  # written first
        cached: list[tuple[str, NewExecution]] = []  # CACHED ones: they point at earlier ones
        for record_id, (data, text) in records.items():
            if record_id in existing:
                continue
            fp = data["fp"]
            cells = record_cells(data, text)
            external_id = fp if new_first.get(fp) == record_id else record_id
            execution = (type_ids[data["step"]], EXECUTION_STATES[data["st"]], external_id, cells)
            (cached if data.get("cached") else first).append((record_id, execution))
        stored = dict(existing)
        for group in (first, cached):
            if group is cached and cached:
                self._point_at_originals(cached, records, first_ids | stored, writer)
            if group:
                news = [execution for _, execution in group]
                ids = writer.insert(news) if writer is not None else self._put_executions(news)
                stored.update(zip([r for r, _ in group], ids, strict=True))
        associations = []
        if shared:
            from ml_metadata.proto import metadata_store_pb2 as pb

            contexts = self._fingerprint_contexts(shared)
            for fp in shared:
                original = firsts[fp][0] if fp in firsts else stored[new_first[fp]]
                associations.append(pb.Association(context_id=contexts[fp], execution_id=original))
            associations += [
                pb.Association(context_id=contexts[data["fp"]], execution_id=stored[record_id])
                for record_id, (data, _) in records.items()
                if data["fp"] in shared
            ]
        if any(data.get("run") for data, _ in records.values()):
            from ml_metadata.proto import metadata_store_pb2 as pb

            associations += [
                pb.Association(
                    context_id=run_contexts[data["run"]], execution_id=stored[record_id]
                )
                for record_id, (data, _) in records.items()
                if data.get("run")
            ]
        if associations:
            self.mlmd.put_attributions_and_associations([], associations)
        new = {r for r, _ in first} | {r for r, _ in cached}
        # Replayed records get their lineage again: a crash may have come
        # between their executions and their artifacts/events.
        if lineage_wanted(data for data, _ in records.values()):  # else MLMD stays closed
            write_lineage(
                self.mlmd,
                {r: data for r, (data, _) in records.items()},
                stored,
                set(existing.values()),
                type_ids=self._artifact_type_ids,
            )
        return len(new)

    def _direct_writer(self, count: int) -> SqliteWriter | None:
        """The direct SQLite writer for a batch of ``count`` records, or ``None`` (MLMD writes).

        Switching from an open MLMD connection costs a reopen later, so a
        small batch goes through MLMD when it is open already.
        """
        writer = self._writer
        if writer is None or not DIRECT_WRITES or not writer.usable:
            return None
        with self._gate:
            if self._store is not None:
                # Closed only if nothing else holds MLMD's store (2: the attribute and
                # the argument): a second MLMD connection in one process breaks the file.
                if count < SWITCH_BATCH or sys.getrefcount(self._store) > 2:
                    return None
                self._store = None
            return writer if writer.connection() is not None else None

    def _firsts(
        self, external_ids: Iterable[str], writer: SqliteWriter | None
    ) -> dict[str, tuple[int, str]]:
        """``external id -> (execution id, record id)`` of the stored executions among them."""
        if writer is not None:
            return writer.first_executions(external_ids)
        found = nodes_by_external_ids(self.mlmd, "executions", external_ids)
        return {key: (execution.id, _record_id(execution)) for key, execution in found.items()}

    def _put_executions(self, executions: Sequence[NewExecution]) -> list[int]:
        """Write ``executions`` through MLMD (servers, memory, another SQLite schema)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        protos = []
        for type_id, state, external_id, cells in executions:
            execution = pb.Execution(
                type_id=type_id, external_id=external_id, last_known_state=state
            )
            props = execution.custom_properties
            for name, (field, value) in cells.items():
                setattr(props[name], field, value)
            protos.append(execution)
        return [int(i) for i in self.mlmd.put_executions(protos)]

    def _point_at_originals(
        self,
        cached: Sequence[tuple[str, NewExecution]],
        records: dict[str, tuple[dict[str, Any], str]],
        stored: dict[str, int],
        writer: SqliteWriter | None,
    ) -> None:
        """Give CACHED executions the id of the execution they reuse (KFP's way)."""
        originals = {records[r][0]["cached"] for r, _ in cached}
        missing = [o for o in originals if o not in stored]
        known = dict(stored)
        if missing:
            known.update({r: e for r, (e, _) in self._firsts(missing, writer).items()})
        for record_id, execution in cached:
            original = known.get(records[record_id][0]["cached"])
            if original is not None:
                execution[3][PROP_CACHED_FROM] = ("int_value", original)

    # -- runs ------------------------------------------------------------------

    def context_type_id(self, name: str) -> int:
        """The id of the context type ``name``, created on first use."""
        type_id = self._context_type_ids.get(name)
        if type_id is None:
            from ml_metadata.proto import metadata_store_pb2 as pb

            type_id = int(self.mlmd.put_context_type(pb.ContextType(name=name)))
            self._context_type_ids[name] = type_id
        return type_id

    def mark_run(self, run_id: str, state: str, error: str) -> None:
        """Set a run's final state (used for runs whose process died)."""
        mark_run(self.mlmd, run_id, state, error)

    def run_contexts(self, pipeline: str | None = None) -> list[Any]:
        """Return the run contexts (of one pipeline), as MLMD protos."""
        if pipeline is None:
            return list(self.mlmd.get_contexts_by_type(RUN_CONTEXT))
        parent = self.mlmd.get_context_by_type_and_name(PIPELINE_CONTEXT, pipeline)
        if parent is None:
            return []
        return list(self.mlmd.get_children_contexts_by_context(parent.id))

    def output_digest(self, fingerprint: str) -> dict[str, Any] | None:
        """What the store recorded of the cached output of call ``fingerprint``, or None.

        The ``zentrack.Output/<fp>`` artifact's ``materializer``, ``type``,
        ``sha256`` and ``size``, written from the journal line of the process
        that produced the output: the cache checks an entry's bytes against
        it, never against the ``meta.json`` beside them (one indexed read).
        """
        key = f"{OUTPUT_ARTIFACT}/{fingerprint}"
        with self.reading() as reader:
            values = reader.artifact_properties(key) if reader is not None else None
        if values is None:
            artifact = nodes_by_external_ids(self.mlmd, "artifacts", [key]).get(key)
            if artifact is None:
                return None
            props = artifact.custom_properties
            values = {name: props[name].string_value for name in props}
            if PROP_OUTPUT_SIZE in props:
                values[PROP_OUTPUT_SIZE] = props[PROP_OUTPUT_SIZE].int_value
        found: dict[str, Any] = {
            name: str(values[f"zentrack.{name}"])
            for name in OUTPUT_PROPS
            if f"zentrack.{name}" in values
        }
        if PROP_OUTPUT_SIZE not in values or "sha256" not in found or "materializer" not in found:
            return None
        found["size"] = int(values[PROP_OUTPUT_SIZE])
        return found

    def records_by_ids(self, execution_ids: Iterable[int]) -> list[Record]:
        """Return the records of these executions (the ones that exist), oldest first."""
        wanted = sorted(set(execution_ids))
        return self._records(self.mlmd.get_executions_by_id(wanted)) if wanted else []
