"""Executions inserted straight into SQLite are the rows MLMD itself would write.

The same journal lines (made by real tracked calls) are written into two
fresh stores, once through the direct writer and once through MLMD's
``put_executions``; every table is then compared row by row (times aside),
and plain ``ml_metadata`` reads both back the same.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from pprint import pformat
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zentrack as zt
from tests.strategies import tracked_values
from zentrack._record import tracker as _tracker
from zentrack._record.journal import pending_chunks
from zentrack._store import mlmd as _mlmd
from zentrack._store.location import parse
from zentrack._store.mlmd import MetadataStore
from zentrack._store.sqlite_file import checkpoint
from zentrack._store.sqlite_writes import SqliteWriter, mlmd_double

#: Columns MLMD fills with the clock: they differ between any two writes.
TIME_COLUMNS = {
    "create_time_since_epoch",
    "last_update_time_since_epoch",
    "milliseconds_since_epoch",
}

HOSTILE = [
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**70),
    0.0,
    -0.0,
    1e-7,
    0.0000015,
    1 / 3,
    123456789.123456789,
    1e300,
    -2.5e-300,
    float("nan"),
    float("inf"),
    -float("inf"),
    True,
    False,
    None,
    "",
    "plain",
    "it's \"quoted\" \\ back",
    "ünïcødé ✓ 日本",
    "nul\0byte",
    "mlmd-struct::x",
    "lone \ud800 surrogate",
    "line\nbreak\ttab",
    "1",
    "null",
    [1, 1.0, True, "1", None],
    (1, (2, 3)),
    {"__tuple__": [1], "a.b": {"x": -0.0}},
    [],
    {},
]


def journal_lines(store_path: Path) -> list[bytes]:
    """The lines waiting in the journal of ``store_path``'s tracker."""
    directory = parse(str(store_path)).journal_dir
    assert directory is not None
    return [line for chunk in pending_chunks(directory) for line in chunk.lines]


def hold(tracker: _tracker.Tracker) -> None:
    """No size or age flush: the lines stay in the journal for the test to read."""
    tracker.batch_size = 10**12
    tracker.max_age = 1e9


def write_into(path: Path, lines: list[bytes], direct: bool, monkeypatch: Any) -> int:
    """Write ``lines`` into a new store at ``path``, directly or through MLMD."""
    monkeypatch.setattr(_mlmd, "DIRECT_WRITES", direct)
    monkeypatch.setattr(_mlmd, "SWITCH_BATCH", 1)  # however small the batch
    path.parent.mkdir(parents=True, exist_ok=True)
    store = MetadataStore(parse(str(path)))
    try:
        written = 0
        for start in range(0, len(lines), 100):  # batches, like the drain
            written += store.write(lines[start : start + 100])
        inserted = store._writer.inserted if store._writer is not None else 0
        assert inserted == (written if direct else 0), f"{inserted} inserted directly"
        return written
    finally:
        store.reset()
        checkpoint(path)


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every MLMD table, with each value's SQLite type, times left out."""
    con = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in tables:
            info = con.execute(f"PRAGMA table_info(`{table}`)")
            columns = [c[1] for c in info if c[1] not in TIME_COLUMNS]
            picked = ", ".join(f"`{c}`, typeof(`{c}`)" for c in columns)
            rows = con.execute(f"SELECT {picked} FROM `{table}`").fetchall()
            out[table] = sorted(rows, key=repr)
        return out
    finally:
        con.close()


def differences(direct: Path, through: Path) -> dict[str, Any]:
    """Per table, the first rows only one of the two stores holds (empty: the same rows)."""
    a, b = dump(direct), dump(through)
    out: dict[str, Any] = {}
    for table in sorted(set(a) | set(b)):
        only_direct = [r for r in a.get(table, []) if r not in b.get(table, [])]
        only_mlmd = [r for r in b.get(table, []) if r not in a.get(table, [])]
        if only_direct or only_mlmd:
            out[table] = {"direct only": only_direct[:3], "MLMD only": only_mlmd[:3]}
    return out


def plain_executions(path: Path) -> list[Any]:
    """The executions as plain ``ml_metadata`` reads them, times cleared."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
    executions = metadata_store.MetadataStore(config).get_executions()
    for execution in executions:
        execution.ClearField("create_time_since_epoch")
        execution.ClearField("last_update_time_since_epoch")
    return sorted(executions, key=lambda e: e.id)


def both_ways(tmp_path: Path, lines: list[bytes], monkeypatch: Any) -> tuple[Path, Path]:
    direct, through = tmp_path / "direct" / "m.sqlite", tmp_path / "mlmd" / "m.sqlite"
    counts = (
        write_into(direct, lines, True, monkeypatch),
        write_into(through, lines, False, monkeypatch),
    )
    assert counts[0] == counts[1]
    return direct, through


@zt.step(cache=False)
def hostile(x: int, *, value: Any = None, other: Any = 0) -> int:
    return x


@zt.step
def cached_square(x: int, *, scale: float = 1.0) -> float:
    zt.log_metrics(score=x * scale, ok=True, label="ü")
    return x * x * scale


@zt.step(cache=False)
def measured(x: int, *, name: str = "m") -> int:
    zt.log_metrics(**{name: 0.5})
    return x


@zt.step(cache=False)
def fails(x: int, *, why: str = "boom") -> None:
    raise ValueError(why)


@zt.step
def produce(n: int = 3) -> list[int]:
    return list(range(n))


@zt.step
def consume(items: list[int], *, k: int = 1) -> int:
    return sum(items) * k


@zt.pipeline
def flow(n: int = 3, k: int = 2) -> int:
    return consume(produce(n=n), k=k)


class TestSameRowsAsMlmd:
    def test_every_table_matches_mlmd_for_hostile_values_and_every_record_kind(
        self, store_path, tmp_path, monkeypatch
    ):
        """Params of every awkward kind, metrics, failures, cache hits, runs, lineage."""
        hold(_tracker.active())
        for i, value in enumerate(HOSTILE):
            hostile(i, value=value, other=HOSTILE[-1 - i])
        for _ in range(2):  # the second round is all cache hits, pointing at the first
            for i in range(3):
                cached_square(i, scale=0.1)
        for why in ("boom", "ü\0", "lone \udc80"):
            with pytest.raises(ValueError):
                fails(1, why=why)
        for i, name in enumerate(["ü", "lone \ud800", "nul\0", "a" * 300, "mlmd-struct::m"]):
            measured(i, name=name)  # metric names MLMD would mangle or refuse
        flow(n=4, k=3)
        flow(n=4, k=3)  # a cached run: its steps are hits
        lines = journal_lines(store_path)
        assert len(lines) > len(HOSTILE) + 10
        direct, through = both_ways(tmp_path, lines, monkeypatch)
        found = differences(direct, through)
        assert not found, pformat(found)
        assert plain_executions(direct) == plain_executions(through)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(values=st.lists(tracked_values, min_size=1, max_size=6))
    def test_any_tracked_values_give_mlmd_rows(self, store_path, tmp_path, monkeypatch, values):
        """Generated params and metrics: the same rows either way."""
        folder = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        zt.init(folder / "metadata.sqlite")
        hold(_tracker.active())
        for i, value in enumerate(values):
            hostile(i, value=value, other=values[0])
        lines = journal_lines(folder / "metadata.sqlite")
        direct, through = both_ways(folder, lines, monkeypatch)
        found = differences(direct, through)
        assert not found, pformat(found)

    def test_doubles_are_rounded_as_mlmd_rounds_them(self, tmp_path):
        """MLMD prints a double with six decimals; the direct writer stores the same."""
        assert [mlmd_double(v) for v in (0.0123456789, 1e-7, 2.5, 1e300)] == [
            0.012346,
            0.0,
            2.5,
            1e300,
        ]


class TestWhenMlmdWrites:
    def test_a_store_of_another_layout_is_written_through_mlmd(self, store_path):
        """An extra column in MLMD's table: the direct writer stands aside, nothing is lost."""
        hostile(1, value=0.5)
        zt.flush()
        con = sqlite3.connect(store_path)
        con.execute("ALTER TABLE ExecutionProperty ADD COLUMN extra INT")
        con.commit()
        con.close()
        hold(_tracker.active())
        for i in range(2, 102):
            hostile(i, value=i / 10)
        written = zt.flush()
        writer = SqliteWriter(store_path)
        expected = (100, False, 101)
        assert expected == (written, writer.connection() is not None, len(zt.find(step="hostile")))

    def test_mlmd_and_sqlite3_are_never_open_together(self, store_path):
        """After a direct write MLMD's connection is closed; opening MLMD closes the writer."""
        hold(_tracker.active())
        for i in range(100):
            hostile(i, value=i)
        store = _tracker.active().store
        store.mlmd  # noqa: B018  (open MLMD first: a large batch must close it)
        zt.flush()
        after_write = (store.is_open, store._writer is not None and store._writer._con is not None)
        store.mlmd  # noqa: B018
        after_open = (store.is_open, store._writer is not None and store._writer._con is not None)
        expected = ((False, True), (True, False))
        assert expected == (after_write, after_open)


class TestErrorMessagesMlmdWouldMangle:
    @pytest.mark.parametrize("direct", [True, False], ids=["direct", "through MLMD"])
    def test_a_failure_message_with_a_lone_surrogate_or_nul_is_stored(
        self, store_path, monkeypatch, direct
    ):
        """Such a message once stopped every flush (protobuf refused it); now it is quoted."""
        monkeypatch.setattr(_mlmd, "DIRECT_WRITES", direct)
        for why in ("bad name \udc80.csv", "nul \0 here"):
            with pytest.raises(ValueError):
                fails(1, why=why)
        hostile(1, value="after")
        written = zt.flush()
        stored = {r.step: r.state for r in zt.find()}
        expected = (3, {"fails": "FAILED", "hostile": "COMPLETE"})
        assert expected == (written, stored)


class TestReplaysAndThreads:
    @pytest.mark.parametrize("repeats", [1, 3], ids=["distinct calls", "shared fingerprints"])
    def test_a_replayed_batch_is_not_doubled(self, store_path, tmp_path, monkeypatch, repeats):
        """The same lines written twice (a crash before the offset moved): stored once.

        A fingerprint's later calls are keyed by record id: their replay meets
        the UNIQUE external-id index, and is then retried with a lookup.
        """
        hold(_tracker.active())
        for _ in range(repeats):
            for i in range(60):
                hostile(i, value="same")
        lines = journal_lines(store_path)
        target = tmp_path / "replay" / "m.sqlite"
        first = write_into(target, lines, True, monkeypatch)
        again = write_into(target, lines, True, monkeypatch)
        con = sqlite3.connect(target)
        (rows,) = con.execute("SELECT count(*) FROM Execution").fetchone()
        con.close()
        expected = (60 * repeats, 0, 60 * repeats)
        assert expected == (first, again, rows)

    def test_a_thread_opening_mlmd_waits_for_a_direct_batch(self, store_path, caplog):
        """Another thread's MLMD use mid-flush neither breaks the batch nor the store."""
        hold(_tracker.active())
        for i in range(3000):
            hostile(i, value=i)
        store = _tracker.active().store
        stop, errors = threading.Event(), []

        def open_mlmd_repeatedly() -> None:
            while not stop.is_set():
                try:
                    store.mlmd.get_execution_types()
                except Exception as exc:
                    errors.append(repr(exc))

        other = threading.Thread(target=open_mlmd_repeatedly)
        other.start()
        try:
            with caplog.at_level(logging.WARNING, logger="zentrack"):
                written = zt.flush()
        finally:
            stop.set()
            other.join()
        expected = (3000, [], [], 3000)
        actual = (
            written,
            errors[:3],
            [r.getMessage() for r in caplog.records],
            len(zt.find(step="hostile")),
        )
        assert expected == actual
