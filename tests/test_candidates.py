"""Tests for queries pushed into the store (zentrack._store.candidates, .sqlite_select, .reads).

``find`` on SQLite asks MLMD's indexes for a superset of the answer, then
confirms each candidate on its exact values: whatever the values and the
operator, the answer must be exactly what Python's comparison gives on
every record.  These tests check that against a plain Python filter of all
records, on one store holding every awkward value zentrack tracks.
"""

from __future__ import annotations

import math
import operator
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zentrack as zt
from tests.conftest import ROOT
from tests.steps_for_tests import keep
from tests.strategies import scalars, tracked_values
from zentrack._record import tracker as _tracker
from zentrack._runs.query import same_value
from zentrack._step.values import MISSING
from zentrack._store.candidates import OPERATORS, Condition, Order, probes
from zentrack._store.sqlite_reads import BOOL_INDEXES, add_indexes
from zentrack._store.sqlite_select import Query, explain

#: Values chosen to meet every edge of the SQL candidates: types that compare
#: equal in Python (1, 1.0, True), doubles MLMD rounds, ints beyond 64 bits,
#: non-finite floats, strings MLMD would mangle, JSON look-alikes, containers
#: with float zeros.
CORPUS: list[Any] = [
    -3, 0, 1, 2, 5, 2**40, 2**63 - 1, 2**63, -(2**63) - 1, 2**70,
    0.0, -0.0, 0.5, 1.0, 1.5, 2.0000001, 1e-7, 1 / 3, 0.1 + 0.2, 1e300, -1e300,
    float("nan"), float("inf"), -float("inf"), 0.01000005, 0.0100001,
    True, False, None,
    "", "1", "1.0", "a", "abc", "b", "inf", "-inf", "nan", "null", "true", "-5",
    "99999999999999999999",
    "mlmd-struct::x", "nul\0byte", "[1]", '"q"', "ünï", "\ud800x", "%", "_", "A",
    [], [1], [1.0], [True], [1, 2], [0.0], [-0.0], ["a"], [[1]], [None],
    (1,), (1, 2), (), ("a",),
    {}, {"a": 1}, {"a": 1.0}, {"a": [0.0]}, {"b": None},
]  # fmt: skip


def reference(actual: Any, op: str, expected: Any) -> bool:
    """What a condition means, written out plainly: Python's own comparison."""
    if actual is MISSING:
        return False
    if op == "eq":
        return same_value(expected, actual)
    if op == "ne":
        return not same_value(expected, actual)
    compare: dict[str, Callable[[Any, Any], Any]] = {
        "lt": operator.lt,
        "le": operator.le,
        "gt": operator.gt,
        "ge": operator.ge,
        "in": lambda a, e: a in e,
        "contains": lambda a, e: e in a,
    }
    try:
        return bool(compare[op](actual, expected))
    except TypeError:
        return False


@zt.step(cache=False)
def scored(value: Any = None) -> None:
    """Log ``value`` as the metric ``score`` too: metrics are queryable like params."""
    zt.log_metrics(score=value)


@zt.step(cache=False)
def metric_only() -> None:
    """A step with a metric ``score`` and no param of that name."""
    zt.log_metrics(score=0.9)


@zt.step(cache=False)
def both(score: float = 0.1) -> None:
    """A step with a param ``score`` and a metric ``score``."""
    zt.log_metrics(score=0.95)


@pytest.fixture
def corpus() -> list[zt.Record]:
    """Every corpus value once as a param (step ``keep``), and as a metric (step ``scored``)."""
    for value in CORPUS:
        keep(value)
        scored(value)
    return zt.find(step="keep")


queries = st.tuples(
    st.sampled_from(OPERATORS),
    st.one_of(
        st.sampled_from(CORPUS),
        scalars,
        tracked_values,
        st.lists(st.one_of(st.sampled_from(CORPUS), scalars), max_size=4),
    ),
)


def ids(records: list[zt.Record]) -> list[int | None]:
    return [r.execution_id for r in records]


class TestExactAnswers:
    @settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(query=queries)
    def test_every_operator_and_value_gives_pythons_answer(self, corpus, query):
        """find(value__op=v) is exactly the records Python's comparison accepts."""
        op, expected = query
        wanted = [r for r in corpus if reference(r.params.get("value", MISSING), op, expected)]
        found = zt.find(step="keep", **{f"value__{op}": expected})
        assert ids(wanted) == ids(found)

    @settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(query=queries)
    def test_metrics_are_queried_like_params(self, corpus, query):
        """score__op=v on a logged metric gives Python's answer too."""
        op, expected = query
        every = zt.find(step="scored")
        wanted = [r for r in every if reference(r.metrics.get("score", MISSING), op, expected)]
        found = zt.find(step="scored", **{f"score__{op}": expected})
        assert ids(wanted) == ids(found)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [(1, [1]), (1.0, [1.0]), (True, [True]), ("1", ["1"])],
        ids=repr,
    )
    def test_one_one_point_oh_true_and_the_string_stay_apart(self, value, expected):
        """Equality is type-exact: each of 1, 1.0, True and "1" finds only itself."""
        for v in (1, 1.0, True, "1"):
            keep(v)
        found = [r.params["value"] for r in zt.find(step="keep", value=value)]
        assert [(type(v), v) for v in expected] == [(type(v), v) for v in found]

    def test_a_param_wins_over_a_metric_of_the_same_name(self):
        """A record with param `score` and metric `score` is judged on the param."""
        metric_only()
        both(score=0.1)
        expected = (["metric_only"], ["both"])
        actual = (
            [r.step for r in zt.find(score__gt=0.5)],
            [r.step for r in zt.find(score__lt=0.5)],
        )
        assert expected == actual

    def test_conditions_on_several_names_all_hold(self):
        """Two conditions: the driver narrows, the other filters, Python confirms both."""
        for i in range(30):
            scored(i)
        found = [r.params["value"] for r in zt.find(step="scored", value__lt=10, score__ge=5)]
        assert list(range(5, 10)) == found


class TestPlans:
    def test_an_equality_reads_mlmds_index(self):
        """EXPLAIN QUERY PLAN: find(units=...) searches idx_execution_property_int."""
        keep(3)
        plan = explain(_reader(), _query("keep", value=3))
        assert any("USING INDEX idx_execution_property_int" in step for step in plan), plan

    def test_a_numeric_range_reads_an_index_per_column(self):
        """A range reads the int, double, bool and string indexes: no scan of the table."""
        keep(0.5)
        plan = explain(_reader(), _query("keep", value__lt=0.7))
        indexes = {
            name
            for name in (
                "idx_execution_property_int",
                "idx_execution_property_double",
                "idx_execution_property_string",
                BOOL_INDEXES["ExecutionProperty"],
            )
            if any(f"USING INDEX {name}" in step for step in plan)
        }
        expected = (4, [])
        assert expected == (len(indexes), [s for s in plan if s.startswith("SCAN p")]), plan

    def test_a_metric_condition_reads_the_double_index(self):
        """accuracy__gt on a logged metric: idx_execution_property_double, not a scan."""
        scored(0.5)
        plan = explain(_reader(), _query("scored", score__gt=0.4))
        assert any("idx_execution_property_double" in step for step in plan), plan


class TestIndexes:
    def test_the_bool_index_is_optional(self, store_path):
        """Without zentrack's index, bool queries and ranges scan, with the same answers."""
        for v in (True, False, 1, 0.5, 2):
            keep(v)
        queries = [{"value": True}, {"value__lt": 1}, {"value__ge": 1}, {"value__in": [1]}]
        with_index = [ids(zt.find(step="keep", **q)) for q in queries]
        connection = sqlite3.connect(store_path)
        connection.execute(f"DROP INDEX {BOOL_INDEXES['ExecutionProperty']}")
        connection.close()
        without = [ids(zt.find(step="keep", **q)) for q in queries]
        assert with_index == without

    def test_the_index_is_added_by_a_write_and_skipped_on_a_read_only_file(self, store_path):
        """A flush adds it (MLMD keeps working with it); a read-only file is left as it is."""
        keep(True)
        zt.flush()
        names = _index_names(store_path)
        connection = sqlite3.connect(store_path)
        connection.execute(f"DROP INDEX {BOOL_INDEXES['ExecutionProperty']}")
        connection.close()
        if shutil.which("chattr") is None:
            pytest.skip("needs chattr (root ignores chmod)")
        try:
            subprocess.run(["chattr", "+i", str(store_path)], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            pytest.skip("this file system has no immutable attribute")
        try:
            added = add_indexes(store_path)
        finally:
            subprocess.run(["chattr", "-i", str(store_path)], check=True, capture_output=True)
        keep(False)
        expected = (True, False, [True, False])
        actual = (
            BOOL_INDEXES["ExecutionProperty"] in names,
            added,
            [r.params["value"] for r in zt.find(step="keep")],
        )
        assert expected == actual

    def test_mlmd_records_are_unchanged(self, plain_store):
        """Plain MLMD readers see the params under their own names and zentrack's own only."""
        keep(True)
        scored(0.5)
        zt.find(score__gt=0.1)
        names = sorted(sorted(e.custom_properties) for e in plain_store().get_executions())
        expected = [
            ["value", "zentrack.fingerprint", "zentrack.metric.score", "zentrack.record"],
            ["value", "zentrack.fingerprint", "zentrack.record"],
        ]
        assert expected == names


class TestOneSqliteAtATime:
    def test_a_flush_after_reads_leaves_the_write_ahead_log_in_place(self, store_path):
        """MLMD and the reader are never open together: no -wal deleted under MLMD's feet.

        MLMD links its own SQLite; with both open in one process, closing one
        drops the other's POSIX locks, and the write-ahead log can be
        checkpointed and deleted while MLMD still appends to it (its records
        then invisible to every other process).
        """
        keep(1)
        zt.find(step="keep")  # the reader is open
        keep(2)
        zt.flush()  # MLMD writes
        zt.find(step="keep")
        keep(3)
        zt.flush()
        deleted = [
            target
            for fd in os.listdir("/proc/self/fd")
            if (target := _link(f"/proc/self/fd/{fd}")).endswith(" (deleted)")
            and str(store_path) in target
        ]
        count = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("
                "'SELECT count(*) FROM Execution').fetchone()[0])",
                str(store_path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        expected = ([], "3")
        assert expected == (deleted, count)


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _index_names(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return [r[0] for r in connection.execute("SELECT name FROM sqlite_master")]
    finally:
        connection.close()


def _reader() -> Any:
    store = _tracker.active().store
    zt.flush()
    store.release()
    assert store.reader is not None
    return store.reader


def _query(step: str, **conditions: Any) -> Query:
    parsed = tuple(Condition.parse(k, v) for k, v in conditions.items())
    return Query(step, parsed, None, lambda record: True, Order(), None)


class TestProbes:
    @pytest.mark.parametrize(
        ("condition", "expected"),
        [
            (Condition("x", "eq", float("nan")), []),
            (Condition("x", "lt", None), []),
            (Condition("x", "gt", {"a": 1}), []),
            (Condition("x", "ne", 1), None),
            (Condition("x", "eq", object()), None),
            (Condition("x", "in", range(3)), None),
        ],
        ids=repr,
    )
    def test_what_cannot_match_or_cannot_be_narrowed(self, condition, expected):
        """[] when no value satisfies it; None when no index narrows it (Python decides)."""
        assert expected == probes(condition)

    def test_doubles_are_searched_within_mlmds_rounding(self):
        """MLMD keeps 6 decimals: 0.01000005 (stored 0.01) is found by lr=0.01000005 exactly."""
        for lr in (0.01, 0.01000005, 0.0100001):
            keep(lr)
        expected = ([0.01000005], [0.01, 0.01000005])
        actual = (
            [r.params["value"] for r in zt.find(step="keep", value=0.01000005)],
            [r.params["value"] for r in zt.find(step="keep", value__lt=0.0100001)],
        )
        assert expected == actual
        assert not math.isnan(actual[0][0])


class TestReplacedFile:
    def test_a_store_file_replaced_under_a_reader_is_read_anew(self, store_path, tmp_path):
        """A backup restored over the store: the next read sees the restored records."""
        keep(1)
        zt.flush()
        backup = tmp_path / "backup.sqlite"
        source, target = sqlite3.connect(store_path), sqlite3.connect(backup)
        source.backup(target)
        source.close()
        target.close()
        keep(2)
        before = [r.params["value"] for r in zt.find(step="keep")]
        for suffix in ("-wal", "-shm"):  # a restore replaces the whole store
            store_path.with_name(store_path.name + suffix).unlink(missing_ok=True)
        os.replace(backup, store_path)
        after = [r.params["value"] for r in zt.find(step="keep")]
        expected = ([1, 2], [1])
        assert expected == (before, after)


class TestUnreadableRows:
    def test_a_row_that_is_no_record_is_left_out_with_a_warning(self, store_path, caplog):
        """Someone who can write the store broke one record: every read skips it and says so."""
        keep(1)
        keep(2)
        fingerprint = zt.find(step="keep", value=2)[0].fingerprint
        zt.flush()
        connection = sqlite3.connect(store_path)
        with connection:
            connection.execute(
                "UPDATE ExecutionProperty SET string_value = '{\"not\": \"a record\"}' "
                "WHERE name = 'zentrack.record' AND execution_id = "
                "(SELECT execution_id FROM ExecutionProperty WHERE name = 'zentrack.fingerprint' "
                "AND string_value = ?)",
                (fingerprint,),
            )
        connection.close()
        with caplog.at_level("WARNING", logger="zentrack"):
            found = (
                [r.params["value"] for r in zt.find(step="keep")],
                zt.lookup(fingerprint),
                [r.params["value"] for r in zt.find(step="keep", order_by="-started", limit=5)],
            )
        messages = [r.getMessage() for r in caplog.records]
        warned = [m for m in messages if "no valid zentrack record" in m]
        expected = (([1], [], [1]), 1)
        assert expected == (found, len(warned))
