"""What zentrack reads from a store: records by fingerprint, by query, by run.

Each read asks the direct SQLite reader first (:mod:`.sqlite_reads`,
:mod:`.sqlite_select`: one indexed statement on MLMD's tables) and reads
through MLMD's own API when it cannot answer: a server or in-memory store,
MLMD open in this process, a file sqlite3 cannot read.  Both give the same
records in the same order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import attrs

from zentrack._record.line import Record, parse_line, record_from_line
from zentrack._store.candidates import Condition, record_facts
from zentrack._store.schema import (
    FINGERPRINT_CONTEXT,
    PROP_CACHED_FROM,
    PROP_RECORD,
    STEP_TYPE_PREFIX,
)
from zentrack._store.server_select import select as server_select
from zentrack._store.sqlite_reads import SqliteReader, oldest_first, warn_unreadable
from zentrack._store.sqlite_select import Query, select


class StoreReads:
    """The read methods of :class:`~zentrack._store.mlmd.MetadataStore`."""

    @property
    def mlmd(self) -> Any:
        raise NotImplementedError  # MetadataStore's

    def reading(self) -> contextlib.AbstractContextManager[SqliteReader | None]:
        raise NotImplementedError  # MetadataStore's

    def _first_executions(self, fingerprints: Iterable[str]) -> dict[str, Any]:
        raise NotImplementedError  # MetadataStore's

    def run_contexts(self, pipeline: str | None = None) -> list[Any]:
        raise NotImplementedError  # MetadataStore's

    def _records(self, executions: Iterable[Any]) -> list[Record]:
        """Records of stored executions; a row that is not a valid record is skipped.

        Anyone who can write the store can write a row: one bad row must not
        make every read fail, so it is left out with a warning naming it.
        """
        out = []
        unreadable: list[str] = []
        for e in executions:
            props = e.custom_properties
            if PROP_RECORD not in props:
                continue
            try:
                data = parse_line(props[PROP_RECORD].string_value)
                if data.get("kind", "step") != "step":
                    raise ValueError("a run line stored as an execution")
                record = record_from_line(data, execution_id=e.id)
            except (ValueError, TypeError, AttributeError) as exc:
                unreadable.append(f"{e.id} ({exc})")
                continue
            if PROP_CACHED_FROM in props:
                record = attrs.evolve(
                    record, cached_execution_id=int(props[PROP_CACHED_FROM].int_value)
                )
            out.append(record)
        warn_unreadable(unreadable)
        return oldest_first(out)

    def lookup(self, fingerprint: str) -> list[Record]:
        """Return the records with ``fingerprint``, oldest first.

        SQLite: one indexed statement.  Else two indexed MLMD reads: the first
        execution by ``external_id``, the others through the fingerprint's
        context (which exists once there are two).
        """
        with self.reading() as reader:
            found = reader.lookup(fingerprint) if reader is not None else None
        if found is not None:
            return found
        executions = {e.id: e for e in self._first_executions([fingerprint]).values()}
        context = self.mlmd.get_context_by_type_and_name(FINGERPRINT_CONTEXT, fingerprint)
        if context is not None:
            executions.update((e.id, e) for e in self.mlmd.get_executions_by_context(context.id))
        return self._records(executions.values())

    def fingerprints_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` stored fingerprints starting with ``prefix`` (lowercase hex).

        SQLite: a range of MLMD's string index.  Else one query: the first
        execution of each fingerprint has it as its ``external_id``; other
        executions' record ids hold a ``-``.
        """
        from ml_metadata.metadata_store import ListOptions

        if not prefix or prefix.strip("0123456789abcdef"):
            raise ValueError(f"fingerprint prefix {prefix!r} is not lowercase hex.")
        with self.reading() as reader:
            found = reader.fingerprints_with_prefix(prefix, limit) if reader is not None else None
        if found is not None:
            return found
        query = f"external_id LIKE '{prefix}%' AND NOT external_id LIKE '%-%'"
        executions = self.mlmd.get_executions(
            list_options=ListOptions(limit=limit, filter_query=query)
        )
        return sorted({e.external_id for e in executions if e.external_id.startswith(prefix)})

    def step_records(self, step: str) -> list[Record]:
        """Return every record of one step, oldest first."""
        return self.select(Query(step, (), None, lambda record: True))

    def select(self, query: Query) -> list[Record]:
        """The records ``query`` asks for.

        SQLite: SQL on MLMD's tables.  PostgreSQL and MySQL: MLMD's
        ``filter_query`` on the driving condition (:mod:`.server_select`).
        Else, or when the conditions cannot narrow the step, each step read
        whole; every candidate is confirmed by ``query.accept``.
        """
        with self.reading() as reader:
            found = select(reader, query) if reader is not None else None
        if found is None:
            found = server_select(self.mlmd, query, self._records)
        if found is not None:
            return found
        names = [query.step] if query.step is not None else self.step_names()
        records = [
            record
            for name in names
            for record in self._records(self.mlmd.get_executions_by_type(STEP_TYPE_PREFIX + name))
            if query.accept(record)
        ]
        return query.order.sort(records, record_facts)[: query.limit]

    def step_names(self) -> list[str]:
        """Return the names of the steps that have an ExecutionType here."""
        with self.reading() as reader:
            found = reader.step_names() if reader is not None else None
        if found is not None:
            return found
        return sorted(
            t.name[len(STEP_TYPE_PREFIX) :]
            for t in self.mlmd.get_execution_types()
            if t.name.startswith(STEP_TYPE_PREFIX)
        )

    def run_steps(self, context_id: int) -> list[Record]:
        """Return the records of one run's step calls, in call order."""
        with self.reading() as reader:
            found = reader.run_steps(context_id) if reader is not None else None
        if found is not None:
            return found
        return self._records(self.mlmd.get_executions_by_context(context_id))

    def run_rows(
        self, pipeline: str | None = None, conditions: tuple[Condition, ...] = ()
    ) -> list[tuple[int, str, str | None]]:
        """``(context id, run id, run record text)`` of every run (of one pipeline).

        On SQLite, only the runs whose params (or run metrics) may satisfy
        ``conditions`` (a superset: the caller confirms); elsewhere every run.
        The record text is ``None`` for a context without one.
        """
        with self.reading() as reader:
            found = reader.run_rows(pipeline, conditions) if reader is not None else None
        if found is not None:
            return found
        rows: list[tuple[int, str, str | None]] = []
        for context in self.run_contexts(pipeline):
            props = context.custom_properties
            text = str(props[PROP_RECORD].string_value) if PROP_RECORD in props else None
            rows.append((int(context.id), str(context.name), text))
        return rows
