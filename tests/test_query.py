"""Tests for zentrack._runs.query and the read API: lookup, find, flush, log_metrics, init."""

from __future__ import annotations

import concurrent.futures

import pytest

import zentrack as zt
from tests.steps_for_tests import TrainerStep, keep, shared_prefix_pair, tick, train
from tests.strategies import typed
from zentrack._record.tracker import Tracker


class Boom(Exception):
    """The error a failing step raises."""


@zt.step
def evaluate(data, *, threshold=0.5):
    """Log metrics from inside a step."""
    zt.log_metrics(accuracy=0.93, loss=0.25)
    zt.log_metrics(accuracy=0.95, confusion=[[1, 0], [0, 1]], best_epoch=3)
    return threshold


def run_grid():
    """Record train calls over a small grid of parameters."""
    for lr in (0.001, 0.01, 0.1):
        for epochs in (1, 2):
            train(b"data", lr=lr, epochs=epochs)
    train(b"data", lr=0.01, epochs=1.0)
    train(b"data", lr=0.01, epochs=True)


class TestLookup:
    def test_record_fields(self):
        """A looked-up record has step, fingerprint, params, state, metrics and ids."""
        fingerprint = zt.fingerprint(train, b"data", lr=0.2)
        train(b"data", lr=0.2)
        (record,) = zt.lookup(fingerprint)
        expected = ("train", fingerprint, {"lr": 0.2, "epochs": 1}, "COMPLETE", {}, True, None)
        actual = (
            record.step,
            record.fingerprint,
            record.params,
            record.state,
            record.metrics,
            isinstance(record.execution_id, int),
            record.run_id,
        )
        assert expected == actual

    def test_repeated_calls_are_separate_records(self):
        """Each call with the same fingerprint is its own execution, oldest first."""
        fingerprint = zt.fingerprint(train, b"data", lr=0.2)
        for _ in range(3):
            train(b"data", lr=0.2)
        records = zt.lookup(fingerprint)
        ids = [r.execution_id for r in records]
        expected = (3, ids, 3)
        actual = (len(records), sorted(ids), len(set(ids)))
        assert expected == actual

    def test_repeats_flushed_separately_are_all_found(self, plain_store):
        """A fingerprint's first execution and later ones flushed apart are all found."""
        fingerprint = zt.fingerprint(train, b"later", lr=0.3)
        train(b"later", lr=0.3)
        zt.flush()
        with zt.no_cache():
            train(b"later", lr=0.3)
            train(b"later", lr=0.3)
        records = zt.lookup(fingerprint)
        context = plain_store().get_context_by_type_and_name("zentrack.Fingerprint", fingerprint)
        in_context = plain_store().get_executions_by_context(context.id)
        expected = (3, 3)
        actual = (len(records), len(in_context))
        assert expected == actual

    def test_failed_calls_are_found(self):
        """A failed call's record is found by its fingerprint, state FAILED."""

        @zt.step
        def fit(lr=0.1):
            raise Boom("nope")

        fingerprint = zt.fingerprint(fit, lr=0.3)
        with pytest.raises(Boom):
            fit(lr=0.3)
        expected = [("FAILED", "Boom: nope")]
        assert expected == [(r.state, r.error) for r in zt.lookup(fingerprint)]

    def test_unknown_fingerprint_finds_nothing(self):
        """A fingerprint nobody recorded gives an empty list."""
        train(b"data")
        expected = []
        assert expected == zt.lookup("f" * 64)

    def test_non_string_is_a_type_error(self):
        """lookup() needs a string."""
        with pytest.raises(TypeError):
            zt.lookup(123)


class TestLookupByPrefix:
    """``zt.lookup`` with the short fingerprint ``find``/``show`` print."""

    @pytest.mark.parametrize("length", [8, 12, 40, 63])
    def test_unique_prefix_finds_the_records(self, length):
        """A prefix only one stored fingerprint starts with gives all its records."""
        fingerprint = zt.fingerprint(train, b"data", lr=0.2)
        train(b"data", lr=0.2)
        train(b"data", lr=0.2)
        train(b"data", lr=0.3)

        expected = [(r.execution_id, r.state) for r in zt.lookup(fingerprint)]
        actual = [(r.execution_id, r.state) for r in zt.lookup(fingerprint[:length])]
        assert (2, expected) == (len(expected), actual)

    def test_case_and_spaces_do_not_matter(self):
        """A pasted prefix in capitals, with a trailing newline, is the same prefix."""
        fingerprint = zt.fingerprint(train, b"data", lr=0.2)
        train(b"data", lr=0.2)

        expected = [fingerprint]
        assert expected == [r.fingerprint for r in zt.lookup(fingerprint[:12].upper() + "\n")]

    def test_prefix_nothing_starts_with_finds_nothing(self):
        """Like an unknown full fingerprint: an empty list."""
        fingerprint = zt.fingerprint(train, b"data", lr=0.2)
        train(b"data", lr=0.2)
        other = format((int(fingerprint[:12], 16) + 1) % 16**12, "012x")

        expected: list[zt.Record] = []
        assert expected == zt.lookup(other)

    def test_ambiguous_prefix_is_a_lookup_error_listing_the_candidates(self):
        """Two stored fingerprints share the prefix: both are named, and more digits pick one."""
        first, second = shared_prefix_pair()
        tick(first)
        tick(second)
        fingerprints = sorted([tick.fingerprint(first), tick.fingerprint(second)])

        with pytest.raises(LookupError, match="ambiguous") as caught:
            zt.lookup(fingerprints[0][:8])
        expected = (True, True, [fingerprints[1]])
        actual = (
            fingerprints[0] in str(caught.value),
            fingerprints[1] in str(caught.value),
            [r.fingerprint for r in zt.lookup(fingerprints[1][:40])],
        )
        assert expected == actual

    @pytest.mark.parametrize("text", ["", "abc", "1234567", "xyz12345678", "g" * 64, "0" * 65])
    def test_not_a_fingerprint_is_a_value_error(self, text):
        """Too short, too long or not hex: the message says what a fingerprint is."""
        with pytest.raises(ValueError, match="64 hex characters, or a prefix of at least 8"):
            zt.lookup(text)


class TestFind:
    @pytest.mark.parametrize(
        ("conditions", "expected"),
        [
            ({"lr__lt": 0.01}, [(0.001, 1), (0.001, 2)]),
            ({"lr__le": 0.001}, [(0.001, 1), (0.001, 2)]),
            ({"lr__gt": 0.01}, [(0.1, 1), (0.1, 2)]),
            ({"lr__ge": 0.1, "epochs": 2}, [(0.1, 2)]),
            ({"lr": 0.01, "epochs": 1}, [(0.01, 1)]),
            ({"lr": 0.01, "epochs": 1.0}, [(0.01, 1.0)]),
            ({"lr": 0.01, "epochs": True}, [(0.01, True)]),
            ({"lr__in": [0.001, 0.1], "epochs__ne": 1}, [(0.001, 2), (0.1, 2)]),
            ({"lr": 1}, []),
        ],
        ids=repr,
    )
    def test_operators(self, conditions, expected):
        """Conditions filter exactly, types included; __lt, __in, ... compare values."""
        run_grid()
        found = zt.find(step="train", **conditions)
        actual = sorted((typed((r.params["lr"], r.params["epochs"])) for r in found), key=repr)
        assert sorted((typed(pair) for pair in expected), key=repr) == actual

    def test_epochs_equal_one_is_type_exact(self):
        """epochs=1 matches the int 1 only, not 1.0 or True."""
        run_grid()
        found = zt.find(step="train", epochs=1)
        expected = [int, int, int]
        assert expected == [type(r.params["epochs"]) for r in found]

    def test_contains(self):
        """__contains matches containers holding the item."""
        keep([1, 2, 3])
        keep([4])
        keep("x")
        expected = [[1, 2, 3]]
        assert expected == [r.params["value"] for r in zt.find(step="keep", value__contains=2)]

    def test_state_filter(self):
        """state= keeps only records in that state."""

        @zt.step
        def fit(lr=0.1):
            if lr > 1:
                raise Boom("too big")

        fit(lr=0.5)
        with pytest.raises(Boom):
            fit(lr=5.0)
        expected = ([{"lr": 5.0}], [{"lr": 0.5}])
        actual = (
            [r.params for r in zt.find(step="fit", state="FAILED")],
            [r.params for r in zt.find(step="fit", state="COMPLETE")],
        )
        assert expected == actual

    def test_without_step_searches_every_step(self):
        """Without step=, records of every step with the parameter are found."""
        train(b"data", lr=0.5)
        TrainerStep(lr=0.5).run([1])
        keep(0.5)
        expected = ["TrainerStep", "train"]
        assert expected == sorted(r.step for r in zt.find(lr=0.5))

    def test_unknown_step_finds_nothing(self):
        """A step name with no records gives an empty list."""
        train(b"data")
        expected = []
        assert expected == zt.find(step="never_ran")

    def test_unknown_operator_is_a_value_error(self):
        """An unknown __operator raises ValueError naming it."""
        with pytest.raises(ValueError, match="between"):
            zt.find(step="train", lr__between=(0, 1))


class TestLogMetrics:
    def test_metrics_show_in_the_record(self):
        """Metrics logged in a step are the record's .metrics; later values win."""
        evaluate(b"data")
        (record,) = zt.find(step="evaluate")
        expected = {"accuracy": 0.95, "loss": 0.25, "confusion": [[1, 0], [0, 1]], "best_epoch": 3}
        assert expected == record.metrics

    def test_metrics_are_native_in_plain_mlmd(self, plain_store):
        """Each metric is a zentrack.metric.<name> custom property in its native type."""
        evaluate(b"data")
        zt.flush()
        (execution,) = plain_store().get_executions_by_type("zentrack.step.evaluate")
        props = execution.custom_properties
        expected = (0.95, 3)
        actual = (
            props["zentrack.metric.accuracy"].double_value,
            props["zentrack.metric.best_epoch"].int_value,
        )
        assert expected == actual

    def test_tuple_metric_reads_back_as_tuple(self):
        """A tuple metric reads back as the tuple, like a tuple parameter does."""

        @zt.step
        def fit():
            zt.log_metrics(shape=(64, 32))

        fit()
        expected = [{"shape": (64, 32)}]
        assert expected == [r.metrics for r in zt.find(step="fit")]

    def test_metrics_of_a_failed_call_are_kept(self):
        """Metrics logged before a failure are in the FAILED record."""

        @zt.step
        def fit():
            zt.log_metrics(progress=0.5)
            raise Boom("halfway")

        with pytest.raises(Boom):
            fit()
        expected = [("FAILED", {"progress": 0.5})]
        assert expected == [(r.state, r.metrics) for r in zt.find(step="fit")]

    def test_nested_steps_keep_their_own_metrics(self):
        """An inner step's metrics go to the inner call, the outer's to the outer."""

        @zt.step
        def inner(x=1):
            zt.log_metrics(level="inner")

        @zt.step
        def outer(x=1):
            inner(x)
            zt.log_metrics(level="outer")

        outer()
        expected = {"inner": {"level": "inner"}, "outer": {"level": "outer"}}
        actual = {r.step: r.metrics for r in zt.find(x=1)}
        assert expected == actual

    def test_concurrent_threads_keep_their_own_metrics(self):
        """Calls running at once on several threads each get their own metrics."""

        @zt.step
        def work(i=0):
            zt.log_metrics(echo=i)
            return i

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda i: work(i=i), range(40)))
        records = zt.find(step="work")
        expected = (list(range(40)), list(range(40)), 40)
        actual = (
            results,
            sorted(r.params["i"] for r in records if r.metrics == {"echo": r.params["i"]}),
            len({r.record_id for r in records}),
        )
        assert expected == actual

    def test_outside_a_step_is_a_runtime_error(self):
        """log_metrics outside a tracked call raises RuntimeError."""
        with pytest.raises(RuntimeError, match="outside"):
            zt.log_metrics(accuracy=1.0)

    def test_untracked_value_is_a_type_error(self):
        """A metric value of a non-tracked type raises TypeError inside the step."""

        @zt.step
        def fit():
            zt.log_metrics(accuracy=object())

        with pytest.raises(TypeError, match="accuracy"):
            fit()


class TestFlush:
    def test_returns_how_many_records_were_written(self):
        """flush() returns the number of new records, then 0."""
        for lr in (0.1, 0.2, 0.3):
            train(b"data", lr=lr)
        expected = (3, 0)
        assert expected == (zt.flush(), zt.flush())


class TestInit:
    def test_returns_the_active_tracker(self, store_path):
        """init() returns a Tracker for the given SQLite path."""
        tracker = zt.init(store_path)
        expected = (True, store_path)
        assert expected == (isinstance(tracker, Tracker), tracker.location.path)

    def test_in_memory_store(self):
        """A :memory: store records and reads back within the process."""
        zt.init(":memory:")
        train(b"data", lr=0.7)
        expected = ([{"lr": 0.7, "epochs": 1}], 0)
        actual = ([r.params for r in zt.find(step="train")], zt.flush())
        assert expected == actual

    def test_switching_stores_flushes_the_previous_one(self, store_path, tmp_path, plain_store):
        """init() on another store writes what the previous store was waiting for."""
        train(b"data", lr=0.8)
        other = tmp_path / "other"
        other.mkdir()
        zt.init(other / "metadata.sqlite")
        executions = plain_store().get_executions_by_type("zentrack.step.train")
        expected = (1, [])
        assert expected == (len(executions), zt.find(step="train"))
