"""Tests for zentrack._runs.annotate: run-level metrics, tags and notes, in a real store.

Annotations are journal lines folded into the run's MLMD Context; these
tests read them back through zentrack and with plain ``ml_metadata``, and
check the journal's promises: nothing lost while the store is busy or the
process is killed, and the later of two changes wins whatever order the
journals are drained in.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import math
import os
import signal
import time
from typing import Any

import pytest

import zentrack as zt
from zentrack._record import tracker as _tracker
from zentrack._record.line import annotation_line


@zt.step
def fit(lr: float = 0.1) -> float:
    """A step with a metric of its own."""
    zt.log_metrics(loss=round(1 - lr, 6))
    return lr


@zt.pipeline(tags={"team": "vision", "data": "v1"})
def training(lr: float = 0.1) -> float:
    """A pipeline logging run-level metrics after its step."""
    out = fit(lr=lr)
    zt.log_metrics(accuracy=round(0.9 + lr / 10, 6), epochs=3)
    return out


@zt.pipeline
def plain(lr: float = 0.1) -> float:
    """A pipeline without tags or run-level metrics."""
    return fit(lr=lr)


def context_props(plain_store: Any, run_id: str) -> dict[str, Any]:
    """The run context's custom properties, read with plain ``ml_metadata``."""
    context = plain_store().get_context_by_type_and_name("zentrack.PipelineRun", run_id)
    out = {}
    for key, value in context.custom_properties.items():
        out[key] = getattr(value, value.WhichOneof("value"))
    out["__id__"] = context.id
    return out


class TestRunLevelMetrics:
    """``zt.log_metrics`` in a pipeline body, outside any step."""

    def test_on_the_returned_run_and_read_back(self):
        """The run returned and the run read back carry them; the step keeps its own."""
        run = training(lr=0.2)
        (read,) = zt.runs()
        expected = ({"accuracy": 0.92, "epochs": 3}, {"accuracy": 0.92, "epochs": 3}, 0.8)
        actual = (run.run_metrics, read.run_metrics, read.steps[0].metrics["loss"])
        assert expected == actual

    def test_native_properties_of_the_context(self, plain_store):
        """Plain MLMD reads them as ``zentrack.metric.<name>`` of the run's Context."""
        run = training(lr=0.2)
        zt.flush()
        props = context_props(plain_store, run.id)
        expected = (0.92, 3, 0.2)
        actual = (props["zentrack.metric.accuracy"], props["zentrack.metric.epochs"], props["lr"])
        assert expected == actual

    def test_compared_as_pipeline_metrics(self):
        """``compare_runs`` lists them as ``pipeline.<name>``, beside the steps' metrics."""
        training(lr=0.1)
        training(lr=0.3)
        comparison = zt.compare_runs("training")
        expected = {
            "pipeline.accuracy": [0.93, 0.91],
            "pipeline.epochs": [3, 3],
            "fit.loss": [0.7, 0.9],
        }
        assert expected == comparison.metrics

    def test_from_a_worker_thread_of_the_run(self):
        """A thread the pipeline starts (no context variable) logs to the one run in progress."""

        @zt.pipeline
        def threaded() -> None:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                pool.submit(zt.log_metrics, worker=1.5).result()

        run = threaded()
        expected = ({"worker": 1.5}, {"worker": 1.5})
        assert expected == (run.run_metrics, zt.runs()[0].run_metrics)

    def test_nan_and_exact_values(self):
        """NaN, 1e-7 (which MLMD's double keeps as 0.0) and tuples read back exactly."""

        @zt.pipeline
        def odd() -> None:
            zt.log_metrics(nan=math.nan, tiny=1e-7, shape=(2, 3))

        odd()
        metrics = zt.runs()[0].run_metrics
        expected = (True, 1e-7, (2, 3))
        assert expected == (math.isnan(metrics["nan"]), metrics["tiny"], metrics["shape"])

    def test_kept_when_flushed_before_the_run_ends(self):
        """Metrics written to the store mid-run survive the run's end line."""

        @zt.pipeline
        def flushing() -> None:
            zt.log_metrics(early=1)
            zt.flush()
            zt.log_metrics(late=2)

        flushing()
        (run,) = zt.runs()
        assert (run.state, run.run_metrics) == ("COMPLETE", {"early": 1, "late": 2})

    def test_outside_steps_and_runs_is_an_error(self):
        """With no step call and no run, there is nothing to attach metrics to."""
        with pytest.raises(RuntimeError, match="outside a pipeline run"):
            zt.log_metrics(accuracy=1.0)

    def test_untracked_value(self):
        """A value of an untracked type is a TypeError naming the metric, in a run too."""

        @zt.pipeline
        def bad() -> None:
            zt.log_metrics(model=object())

        with pytest.raises(TypeError, match="'model'"):
            bad()

    def test_survives_a_killed_process(self, run_python, store_path):
        """A run killed after logging: marked FAILED by the next reader, its metric kept."""
        script = (
            "import os, signal, sys, zentrack as zt\n"
            "zt.init(sys.argv[1])\n"
            "@zt.pipeline\n"
            "def doomed():\n"
            "    zt.log_metrics(progress=0.5)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "doomed()\n"
        )
        result = run_python(script, str(store_path))
        (run,) = zt.runs()
        expected = (-signal.SIGKILL, "FAILED", {"progress": 0.5})
        assert expected == (result.returncode, run.state, run.run_metrics)


class TestTags:
    """``@pipeline(tags=...)``, ``run.tag`` and ``zt.runs(tags=...)``."""

    def test_pipeline_tags(self, plain_store):
        """Every run starts with the decorator's tags: on the run, read back, in plain MLMD."""
        run = training()
        zt.flush()
        props = context_props(plain_store, run.id)
        expected = ({"team": "vision", "data": "v1"},) * 2 + (("vision", "v1"),)
        actual = (
            run.tags,
            zt.runs()[0].tags,
            (props["zentrack.tag.team"], props["zentrack.tag.data"]),
        )
        assert expected == actual

    def test_tag_after_the_run_keeps_the_context(self, plain_store):
        """``run.tag`` sets, changes and removes tags; the Context keeps its id and steps."""
        run = training()
        zt.flush()
        before = context_props(plain_store, run.id)
        run.tag(data="v2", reviewed="yes", team=None)
        (read,) = zt.runs()
        after = context_props(plain_store, run.id)
        executions = plain_store().get_executions_by_context(after["__id__"])
        expected = (
            {"data": "v2", "reviewed": "yes"},
            {"data": "v2", "reviewed": "yes"},
            before["__id__"],
            ["zentrack.tag.data", "zentrack.tag.reviewed"],
            1,
            0.1,
        )
        actual = (
            run.tags,
            read.tags,
            after["__id__"],
            sorted(k for k in after if k.startswith("zentrack.tag.")),
            len(executions),
            after["lr"],
        )
        assert expected == actual

    def test_runs_filtered_by_tags(self):
        """``zt.runs(tags=...)`` keeps the runs that have every tag given, with that value."""
        first = training(lr=0.1)
        second = training(lr=0.2)
        plain()
        second.tag(data="v2")
        expected = (
            [second.id, first.id],
            [second.id],
            [first.id],
            [],
        )
        actual = (
            [r.id for r in zt.runs(tags={"team": "vision"})],
            [r.id for r in zt.runs(tags={"data": "v2"})],
            [r.id for r in zt.runs("training", tags={"team": "vision", "data": "v1"})],
            [r.id for r in zt.runs(tags={"team": "audio"})],
        )
        assert expected == actual

    @pytest.mark.parametrize(
        ("tags", "error", "match"),
        [
            ({"has space": "x"}, ValueError, "Tag key 'has space' must start with a letter"),
            ({"1st": "x"}, ValueError, "Tag key '1st'"),
            ({"k" * 65: "x"}, ValueError, "up to 63"),
            ({"seed": 3}, TypeError, r"Tag 'seed' must be a str, or None .* pass str\(value\)"),
            ({"long": "x" * 501}, ValueError, "501 characters long, more than 500"),
        ],
    )
    def test_bad_tags(self, tags, error, match):
        """A bad key or value is refused at once, naming it; nothing is journaled."""
        run = plain()
        waiting = _tracker.active().pending()
        with pytest.raises(error, match=match):
            run.tag(**tags)
        assert (waiting, {}) == (_tracker.active().pending(), zt.runs()[0].tags)

    def test_bad_decorator_tags(self):
        """``@pipeline(tags=...)`` checks its tags when it decorates; None is no removal there."""
        with pytest.raises(TypeError, match="Tag 'gpu' must be a str "):
            zt.pipeline(tags={"gpu": None})  # type: ignore[dict-item]

    def test_filter_tags_checked(self):
        """A filter value that is not a string is refused, not silently unmatched."""
        with pytest.raises(TypeError, match="Tag 'seed'"):
            zt.runs(tags={"seed": 3})  # type: ignore[dict-item]


class TestNote:
    """``run.note``."""

    def test_set_change_remove(self, plain_store):
        """The note is set, replaced, then removed; plain MLMD sees ``zentrack.note``."""
        run = plain()
        run.note("first <b>try</b>\nsecond line")
        zt.flush()
        written = context_props(plain_store, run.id).get("zentrack.note")
        run.note("better")
        replaced = zt.runs()[0].notes
        run.note(None)
        expected = ("first <b>try</b>\nsecond line", "better", None, None)
        actual = (
            written,
            replaced,
            zt.runs()[0].notes,
            context_props(plain_store, run.id).get("zentrack.note"),
        )
        assert expected == actual

    @pytest.mark.parametrize(
        ("text", "error"), [(3, TypeError), ("x" * 20_001, ValueError)]
    )
    def test_bad_note(self, text, error):
        """Not a string, or over 20,000 characters: refused with the reason."""
        with pytest.raises(error, match="note"):
            plain().note(text)


class TestJournal:
    """Annotations go through the journal like step records do."""

    def test_tag_while_the_store_is_busy(self, run_python, store_path, monkeypatch):
        """A tag given while another process holds the writer lock waits and is written later."""
        run = plain()
        zt.flush()
        lock = _tracker.active().location.lock_path
        assert lock is not None
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            monkeypatch.setenv("ZENTRACK_LOCK_TIMEOUT", "0.2")
            run.tag(stage="busy")
            with pytest.raises(zt.exceptions.LockBusy):
                zt.flush()
        finally:
            os.close(fd)
        monkeypatch.delenv("ZENTRACK_LOCK_TIMEOUT")
        # a fresh process, as `zentrack runs` would be, finds the tag in the store
        script = "import sys, zentrack as zt; zt.init(sys.argv[1]); print(zt.runs()[0].tags)"
        result = run_python(script, str(store_path))
        assert result.stdout.strip() == "{'stage': 'busy'}", result.stderr

    def test_later_change_wins_whatever_the_drain_order(self):
        """Two processes' annotations drained newest first still end as the later one says."""
        run = plain()
        store = _tracker.active().store
        zt.flush()
        now = time.time_ns()
        store.write([annotation_line(run.id, now + 2, tags={"k": "new"}, note="new")])
        store.write([annotation_line(run.id, now + 1, tags={"k": "old", "j": "x"}, note="old")])
        store.write([annotation_line(run.id, now, tags={"j": None})])
        (read,) = zt.runs()
        assert (read.tags, read.notes) == ({"k": "new", "j": "x"}, "new")

    def test_annotation_before_the_run_line(self):
        """An annotation drained before its run's lines waits unlisted; the run line completes it.

        The placeholder context holds no run record yet, so reads leave it out
        (as any stored run without a valid record) until the run line lands.
        """
        store = _tracker.active().store
        store.write([annotation_line("early-run", time.time_ns(), tags={"k": "v"})])
        before = list(zt.runs())
        start = {"v": 1, "kind": "run", "id": "early-run", "pipeline": "p", "st": "COMPLETE"}
        store.write([json.dumps(start)])
        (run,) = zt.runs()
        expected = ([], ("early-run", "p", "COMPLETE", {"k": "v"}))
        actual = (before, (run.id, run.pipeline, run.state, run.tags))
        assert expected == actual

    def test_malformed_annotation_skipped(self, caplog):
        """A hand-made annotation with a bad tag key is skipped; the others apply."""
        run = plain()
        store = _tracker.active().store
        zt.flush()
        bad = {"v": 1, "kind": "annotate", "run": run.id, "t": 1, "tags": {"no good": "x"}}
        good = annotation_line(run.id, 2, tags={"ok": "y"})
        store.write([json.dumps(bad), good])
        # Refused by the journal-line schema before it reaches the run's context.
        expected = {"ok": "y"}
        actual = zt.runs()[0].tags
        assert expected == actual


class TestRunPrefix:
    """``zt.get_run`` by a unique prefix of the run id."""

    def test_prefix(self):
        """A prefix only one run's id starts with finds that run."""
        run = plain()
        assert run.id == zt.get_run(run.id[:17]).id

    def test_ambiguous_prefix_lists_candidates(self):
        """A prefix several ids start with is a LookupError listing them."""
        first, second = plain(), plain()
        common = next(
            first.id[:n] for n in range(len(first.id), 0, -1) if second.id.startswith(first.id[:n])
        )
        with pytest.raises(LookupError, match="ambiguous") as caught:
            zt.get_run(common)
        assert {first.id, second.id} <= set(str(caught.value).replace(",", " ").split())

    def test_unknown(self):
        """No run with that id or prefix: a LookupError saying how to list runs."""
        plain()
        with pytest.raises(LookupError, match="zentrack runs"):
            zt.get_run("nope")
