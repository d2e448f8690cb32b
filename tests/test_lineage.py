"""Tests for zentrack._cache.lineage and the lineage written by zentrack._store.mlmd.

An output of a tracked call enters a downstream call's fingerprint as
``fp:<upstream fingerprint>``, whether the upstream ran or was served from
the cache, in this process or another; the store links both executions to
the output artifact with OUTPUT and INPUT events.
"""

from __future__ import annotations

import numpy as np

import zentrack as zt
from tests.cache_steps import (
    RUNS,
    count,
    load,
    run_step_process,
    runs_in,
    split,
    states,
    total,
)

CACHED_FROM = "zentrack.cached_execution_id"


def events_of(mlmd, execution_id: int) -> list[tuple[str, int]]:
    """``(event type, artifact id)`` of one execution, read with plain ml_metadata."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    return sorted(
        (pb.Event.Type.Name(e.type), e.artifact_id)
        for e in mlmd.get_events_by_execution_ids([execution_id])
    )


class TestStep:
    """Outputs of tracked calls passed on to other steps."""

    def test_output_enters_downstream_as_upstream_fingerprint(self):
        """A tracked output passed on is recorded as fp:<the upstream call's fingerprint>."""
        total(load(n=3), offset=1.0)
        zt.flush()
        (record,) = zt.find(step="total")
        expected = {"data": "fp:" + zt.fingerprint(load, n=3)}
        assert expected == record.inputs

    def test_served_output_has_the_same_lineage(self):
        """An output served from the cache enters downstream with the same fp: digest."""
        total(load(n=3))
        total(load(n=3))
        zt.flush()
        expected = [{"data": "fp:" + zt.fingerprint(load, n=3)}] * 2
        assert expected == [r.inputs for r in zt.find(step="total")]

    def test_downstream_hits_when_upstream_hits(self):
        """With the upstream served, the downstream call is served too: nothing runs again."""
        first = total(load(n=3), offset=0.5)
        second = total(load(n=3), offset=0.5)
        expected = (3.5, 3.5, ["load", "total"], ["COMPLETE", "CACHED"], ["COMPLETE", "CACHED"])
        actual = (first, second, RUNS, states("load"), states("total"))
        assert expected == actual

    def test_upstream_param_change_makes_downstream_miss(self):
        """A different upstream call gives the downstream a different input: both run."""
        total(load(n=3))
        total(load(n=4))
        expected = (["load", "total", "load", "total"], ["COMPLETE", "COMPLETE"])
        actual = (RUNS, states("total"))
        assert expected == actual

    def test_downstream_hits_in_a_fresh_process(self, run_python, store_path, tmp_path):
        """A chain run in one interpreter is served whole in the next, and here."""
        runs_file = tmp_path / "runs.txt"
        results = [
            run_step_process(
                run_python,
                store_path,
                "tests.cache_steps:load",
                {"n": 5},
                mode="chain",
                runs_file=runs_file,
            )
            for _ in range(2)
        ]
        here = total(load(n=5))
        expected = (
            [10.0, 10.0],
            10.0,
            ["load", "total"],
            [],
            ["COMPLETE", "CACHED", "CACHED"],
            ["COMPLETE", "CACHED", "CACHED"],
        )
        actual = (results, here, runs_in(runs_file), RUNS, states("load"), states("total"))
        assert expected == actual

    def test_items_of_a_returned_tuple_keep_their_lineage(self):
        """``a, b = split()`` passes on ``fp:<fp>#0``; served again, the downstream hits."""
        left, _ = split(n=4)
        count(left)
        again, _ = split(n=4)
        count(again)
        zt.flush()
        expected = (
            [{"items": f"fp:{zt.fingerprint(split, n=4)}#0"}] * 2,
            ["split", "count"],
            ["COMPLETE", "CACHED"],
        )
        actual = ([r.inputs for r in zt.find(step="count")], RUNS, states("count"))
        assert expected == actual

    def test_untracked_equal_data_is_hashed_by_content(self):
        """Equal data that did not come from a tracked call is a content digest, not fp:."""
        total(np.array([0.0, 1.0, 2.0]))
        zt.flush()
        (record,) = zt.find(step="total")
        expected = (False, 64)
        actual = (record.inputs["data"].startswith("fp:"), len(record.inputs["data"]))
        assert expected == actual


class TestFlush:
    """What ``flush()`` writes to MLMD for outputs, read back with plain ml_metadata."""

    def test_output_and_input_events_link_the_chain(self, plain_store):
        """The upstream execution OUTPUTs an artifact that the downstream execution INPUTs."""
        total(load(n=3))
        zt.flush()
        (upstream,) = zt.find(step="load")
        (downstream,) = zt.find(step="total")
        mlmd = plain_store()
        outputs = events_of(mlmd, upstream.execution_id)
        artifact = mlmd.get_artifacts_by_id([outputs[0][1]])[0]
        expected = (
            [("OUTPUT", artifact.id)],
            [("INPUT", artifact.id), ("OUTPUT", downstream_artifact(mlmd, downstream))],
            upstream.fingerprint,
        )
        actual = (
            outputs,
            events_of(mlmd, downstream.execution_id),
            artifact.custom_properties["zentrack.fingerprint"].string_value,
        )
        assert expected == actual

    def test_the_same_upstream_output_given_twice_is_one_input_event(self, plain_store):
        """combine(d, d): MLMD keeps one INPUT event per artifact, and the flush succeeds."""

        @zt.step
        def combine(a: list[float], b: list[float]) -> float:
            return sum(a) + sum(b)

        data = load(n=3)
        combine(data, data)
        written = zt.flush()
        (upstream,) = zt.find(step="load")
        (downstream,) = zt.find(step="combine")
        mlmd = plain_store()
        artifact = events_of(mlmd, upstream.execution_id)[0][1]
        expected = (2, [("INPUT", artifact), ("OUTPUT", downstream_artifact(mlmd, downstream))])
        assert expected == (written, events_of(mlmd, downstream.execution_id))

    def test_cached_execution_points_at_the_original(self, plain_store):
        """The CACHED execution names the original's id and OUTPUTs the same artifact."""
        load(n=3)
        load(n=3)
        original, cached = zt.lookup(zt.fingerprint(load, n=3))
        mlmd = plain_store()
        execution = mlmd.get_executions_by_id([cached.execution_id])[0]
        expected = (
            ("COMPLETE", "CACHED"),
            original.execution_id,
            original.execution_id,
            events_of(mlmd, original.execution_id),
        )
        actual = (
            (original.state, cached.state),
            execution.custom_properties[CACHED_FROM].int_value,
            cached.cached_execution_id,
            events_of(mlmd, cached.execution_id),
        )
        assert expected == actual

    def test_cached_downstream_links_the_upstream_artifact(self, plain_store):
        """A served downstream call has the same INPUT event as the call it reuses."""
        total(load(n=3))
        total(load(n=3))
        zt.flush()
        original, cached = zt.find(step="total")
        mlmd = plain_store()
        expected = (events_of(mlmd, original.execution_id), original.execution_id)
        actual = (events_of(mlmd, cached.execution_id), cached.cached_execution_id)
        assert expected == actual

    def test_original_from_another_process(self, plain_store, run_python, store_path):
        """A hit here on an output made by another interpreter points at that execution."""
        run_step_process(run_python, store_path, "tests.cache_steps:load", {"n": 6})
        load(n=6)
        original, cached = zt.lookup(zt.fingerprint(load, n=6))
        mlmd = plain_store()
        execution = mlmd.get_executions_by_id([cached.execution_id])[0]
        expected = (
            ("COMPLETE", "CACHED"),
            original.execution_id,
            events_of(mlmd, original.execution_id),
            [],
        )
        actual = (
            (original.state, cached.state),
            execution.custom_properties[CACHED_FROM].int_value,
            events_of(mlmd, cached.execution_id),
            RUNS,
        )
        assert expected == actual


def downstream_artifact(mlmd, record: zt.Record) -> int:
    """The id of the artifact holding ``record``'s own output."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    (artifact,) = mlmd.get_artifacts_by_external_ids([f"zentrack.Output/{record.fingerprint}"])
    assert artifact.state == pb.Artifact.LIVE
    return int(artifact.id)
