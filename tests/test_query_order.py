"""Tests for ``limit=`` and ``order_by=`` of zt.find and zt.runs (zentrack._runs.query).

The first records of an order come back without building a Record for
every match: counted here by wrapping the function that builds them.
"""

from __future__ import annotations

from typing import Any

import pytest

import zentrack as zt
from zentrack._store import sqlite_reads, sqlite_select


@zt.step(cache=False)
def trial(i: int = 0, lr: Any = 0.1) -> None:
    """A step with a param ``i`` and a metric ``acc``."""
    zt.log_metrics(acc=(i * 37) % 101 / 100)


@zt.pipeline
def sweep(lr: float = 0.1, i: int = 0) -> None:
    """One run of one trial."""
    trial(i=i, lr=lr)


def made(n: int) -> list[zt.Record]:
    for i in range(n):
        trial(i=i, lr=0.1 if i % 2 else 1)
    return zt.find(step="trial")


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the Records the SQLite reads build (one per decoded record)."""
    count = [0]
    original = sqlite_reads.record_of

    def counting(row: Any) -> zt.Record:
        count[0] += 1
        return original(row)

    monkeypatch.setattr(sqlite_select, "record_of", counting)
    return count


def key(records: list[zt.Record]) -> list[Any]:
    return [r.params["i"] for r in records]


class TestFindLimit:
    @pytest.mark.parametrize("order_by", [None, "started", "-started", "acc", "-acc", "i", "-lr"])
    def test_the_first_k_of_the_whole_ordered_answer(self, order_by):
        """find(limit=k, order_by=o) == the first k of find(order_by=o): the same order."""
        made(60)
        whole = key(zt.find(step="trial", order_by=order_by))
        first = key(zt.find(step="trial", order_by=order_by, limit=7))
        assert whole[:7] == first

    def test_orders_are_what_they_say(self):
        """Oldest first by default; -started newest first; a metric by value, ties oldest first."""
        records = made(30)
        by_acc = sorted(records, key=lambda r: (-r.metrics["acc"], r.started, r.execution_id))
        expected = (key(records), key(records)[::-1], key(by_acc))
        actual = (
            key(zt.find(step="trial")),
            key(zt.find(step="trial", order_by="-started")),
            key(zt.find(step="trial", order_by="-acc")),
        )
        assert expected == actual

    def test_mixed_types_order_numbers_first_then_the_rest_oldest_first(self):
        """lr holds ints, floats and strings: numbers in order, then the others by start."""
        for i, lr in enumerate([1, 0.5, "x", True, 2.5, None, 0]):
            trial(i=i, lr=lr)
        expected = [4, 0, 3, 1, 6, 2, 5]  # 2.5, 1, True, 0.5, 0, then "x", None
        assert expected == key(zt.find(step="trial", order_by="-lr"))

    @pytest.mark.parametrize("order_by", [None, "-started", "-acc", "acc"])
    def test_the_first_20_of_many_build_few_records(self, built, order_by):
        """Only records that can be among the first k are decoded, not every match."""
        made(400)
        zt.flush()
        built[0] = 0
        found = zt.find(step="trial", order_by=order_by, limit=20)
        expected = (20, True)
        assert expected == (len(found), built[0] < 100), built[0]

    @pytest.mark.parametrize("k", [1, 5, 20])
    def test_newest_when_written_in_the_reverse_order_of_their_start(self, monkeypatch, k):
        """Calls started later but written first (a journal drained late) still come first.

        The step's clock goes back a second per call, so write order (MLMD's
        create time) is the reverse of start order; the newest k by start
        are the first written, which a scan by create time meets last.
        """
        from zentrack._step import track

        now = track.time_ns()
        clock = iter(range(now, now - 200 * 10**9, -(10**9)))
        monkeypatch.setattr(track, "time_ns", lambda: next(clock))
        made(60)  # each call started seconds before the one made before it
        monkeypatch.undo()
        zt.flush()

        found = key(zt.find(step="trial", order_by="-started", limit=k))

        whole = key(zt.find(step="trial", order_by="-started"))
        assert (list(range(k)), whole[:k]) == (found, found)

    def test_limit_with_conditions_confirms_before_counting(self):
        """Candidates that fail the exact test do not use up the limit."""
        made(40)
        found = zt.find(step="trial", lr=1, limit=5)
        expected = [0, 2, 4, 6, 8]
        assert expected == key(found)

    @pytest.mark.parametrize("limit", [-1, 1.5, "3"])
    def test_a_bad_limit_is_a_value_error(self, limit):
        """limit must be None or a non-negative int."""
        with pytest.raises(ValueError, match="limit must be"):
            zt.find(step="trial", limit=limit)

    def test_a_param_named_limit_is_queried_with_eq(self):
        """A parameter named like an argument is still reachable: limit__eq=3."""

        @zt.step(cache=False)
        def bounded(limit: int = 0) -> None:
            pass

        bounded(limit=3)
        bounded(limit=4)
        expected = [3]
        assert expected == [r.params["limit"] for r in zt.find(step="bounded", limit__eq=3)]


class TestRunsLimit:
    def test_runs_newest_first_limited_and_ordered_by_a_param(self):
        """runs(limit=k) are the k newest; order_by a pipeline param sorts by it."""
        for i in range(6):
            sweep(lr=[0.3, 0.1, 0.5, 0.2, 0.6, 0.4][i], i=i)
        every = zt.runs(pipeline="sweep")
        expected = (
            [r.id for r in every][:3],
            [0.6, 0.5, 0.4],
            [0.1, 0.2],
        )
        actual = (
            [r.id for r in zt.runs(pipeline="sweep", limit=3)],
            [r.params["lr"] for r in zt.runs(pipeline="sweep", order_by="-lr", limit=3)],
            [r.params["lr"] for r in zt.runs(pipeline="sweep", lr__lt=0.25, order_by="lr")],
        )
        assert expected == actual

    def test_an_order_on_a_step_metric_says_where_it_lives(self, caplog):
        """order_by a name only steps log: one warning naming the step and what to use."""
        for i in range(3):
            sweep(i=i)

        with caplog.at_level("WARNING", logger="zentrack"):
            zt.runs(pipeline="sweep", order_by="-acc")

        expected = ["no run has a pipeline param or run metric 'acc'", "metric of step 'trial'"]
        assert [m for m in expected if m in caplog.text] == expected, caplog.text

    def test_run_steps_are_read_when_used(self):
        """A listed run's steps come from the store on first use, and match the run."""
        sweep(lr=0.2, i=7)
        (run,) = zt.runs(pipeline="sweep")
        expected = [(7, 0.2)]
        assert expected == [(s.params["i"], s.params["lr"]) for s in run.steps]

    def test_compare_runs_last_reads_only_those_runs(self):
        """compare_runs(last=2) compares the two newest runs."""
        for i in range(4):
            sweep(lr=0.1 * (i + 1), i=i)
        comparison = zt.compare_runs(pipeline="sweep", last=2)
        expected = [r.id for r in zt.runs(pipeline="sweep")][:2]
        assert expected == [r.id for r in comparison.runs]
