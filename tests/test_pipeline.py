"""Tests for zentrack._runs.pipeline and the run queries: ``@pipeline``, runs, comparisons.

Every test runs the pipelines of :mod:`tests.pipelines_for_tests` against the
real SQLite MLMD store the autouse fixture gives it; MLMD itself is read with
plain ``ml_metadata`` where the layout is the point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

import zentrack as zt
from tests import pipelines_for_tests as pft
from tests.conftest import ROOT, SUBPROCESS_TIMEOUT
from tests.strategies import typed
from zentrack._step.fingerprint import SCHEME

MODULE = "tests.pipelines_for_tests"
TRAINING_KEYS = ["load_data", "trainer", "evaluate"]


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    """Forget the step bodies that earlier tests ran."""
    pft.CALLS.clear()


def keyed_params(run: zt.Run[Any]) -> dict[str, dict[str, Any]]:
    """The params of each step call of a run, by config key."""
    return {key: record.params for key, record in run.keyed_steps().items()}


def config_args(path: Path | None) -> dict[str, dict[str, Any]]:
    """The args of each step of a config file, by key, as plain values."""
    assert path is not None
    return {key: step.plain_args() for key, step in zt.load_config(path).steps.items()}


def safe_load(path: Path | None) -> Any:
    """Read a YAML file with a plain safe loader: what any YAML reader sees."""
    assert path is not None
    return YAML(typ="safe", pure=True).load(path)


class TestPipeline:
    """``@zt.pipeline``: one call is one run, with its config."""

    def test_returns_the_run(self):
        """The call returns a COMPLETE Run with its id, params, config and output."""
        run = pft.training()

        expected = ("training", "COMPLETE", {"n": 4, "lr": 0.01}, 0.01 + 0.5, True, [run.id])
        actual = (
            run.pipeline,
            run.state,
            run.params,
            run.output,
            run.config_path is not None and run.config_path.is_file(),
            [r.id for r in zt.runs()],
        )
        assert expected == actual
        assert isinstance(run, zt.Run)

    def test_returned_run_lists_its_steps(self):
        """The returned run's ``.steps`` are its step calls, in call order, with keys."""
        run = pft.training()

        expected = (TRAINING_KEYS, TRAINING_KEYS)
        assert expected == ([record.key for record in run.steps], list(run.keyed_steps()))

    def test_a_run_pickles_and_copies_with_its_steps(self):
        """A returned Run crosses process boundaries (pools, caches): pickle and deepcopy work."""
        import copy
        import pickle

        run = pft.training()
        expected = (run, [s.key for s in run.steps], run.output)
        for clone in (pickle.loads(pickle.dumps(run)), copy.deepcopy(run)):
            assert expected == (clone, [s.key for s in clone.steps], clone.output)

    def test_keeps_the_function_metadata(self):
        """The wrapper keeps the function's name and docstring."""
        expected = ("training", pft.training.__wrapped__.__doc__)
        assert expected == (pft.training.__name__, pft.training.__doc__)

    def test_run_is_an_mlmd_context_under_its_pipeline(self, plain_store):
        """Plain MLMD sees a PipelineRun context, child of the Pipeline, holding the calls."""
        run = pft.training()
        zt.flush()
        store = plain_store()
        context_types = {t.id: t.name for t in store.get_context_types()}
        execution_types = {t.id: t.name for t in store.get_execution_types()}

        contexts = store.get_contexts_by_type("zentrack.PipelineRun")
        expected: Any = ([run.id], "COMPLETE")
        assert expected == (
            [c.name for c in contexts],
            contexts[0].custom_properties["zentrack.state"].string_value,
        )
        parents = store.get_parent_contexts_by_context(contexts[0].id)
        expected = [("zentrack.Pipeline", "training")]
        assert expected == [(context_types[p.type_id], p.name) for p in parents]
        executions = store.get_executions_by_context(contexts[0].id)
        expected = sorted(f"zentrack.step.{key}" for key in TRAINING_KEYS)
        assert expected == sorted(execution_types[e.type_id] for e in executions)
        expected = sorted(r.execution_id for r in zt.get_run(run.id).steps)
        assert expected == sorted(e.id for e in executions)
        trainer = next(e for e in executions if execution_types[e.type_id].endswith(".trainer"))
        expected = (0.01, 2)
        assert expected == (
            trainer.custom_properties["lr"].double_value,
            trainer.custom_properties["batch_size"].int_value,
        )

    def test_steps_outside_a_pipeline_belong_to_no_run(self):
        """A step called on its own has ``run_id`` and ``key`` None, and makes no run."""
        pft.load_data(3)

        expected = ([(None, None)], [])
        assert expected == ([(r.run_id, r.key) for r in zt.find("load_data")], zt.runs())

    def test_steps_of_a_run_carry_its_id(self):
        """Each step record of a run names the run."""
        run = pft.training()

        expected = [run.id] * 3
        assert expected == [r.run_id for r in zt.get_run(run.id).steps]

    def test_a_step_called_twice_gets_two_keys(self):
        """The second call of a step is keyed ``name#2``, in the run and in the config."""
        run = pft.twice()

        recorded = zt.get_run(run.id)
        expected: Any = [("load_data", "load_data", 2), ("fit", "fit", 0.1), ("fit", "fit#2", 0.2)]
        assert expected == [
            (r.step, r.key, r.params.get("lr", r.params.get("n"))) for r in recorded.steps
        ]
        expected = {
            "load_data": {"n": 2, "scale": 1.0},
            "fit": {"lr": 0.1, "epochs": 1},
            "fit#2": {"lr": 0.2, "epochs": 1},
        }
        actual = config_args(run.config_path)
        assert expected == actual
        assert list(expected) == list(actual)

    def test_nested_pipeline_steps_belong_to_the_outer_run(self):
        """An inner pipeline starts no run: its steps are keyed in the outer run."""
        run = pft.outer()

        expected: Any = [("outer", run.id)]
        assert expected == [(r.pipeline, r.id) for r in zt.runs()]
        expected = {
            "load_data": {"n": 5, "scale": 1.0},
            "load_data#2": {"n": 2, "scale": 1.0},
            "fit": {"lr": 0.4, "epochs": 1},
        }
        assert (expected, expected, 0.4) == (
            keyed_params(zt.get_run(run.id)),
            config_args(run.config_path),
            run.output,
        )

    def test_steps_called_from_worker_threads_belong_to_the_run(self):
        """Steps a pipeline runs in a thread pool are part of its run and its config.

        Pool threads do not inherit the run's context variable; with one run in
        progress they join it, with distinct keys, function and class steps
        alike (which ``fit`` call is keyed first depends on the threads).
        """
        run = pft.threaded()

        recorded = zt.get_run(run.id).keyed_steps()
        expected = (
            ["fit", "fit#2", "trainer"],
            [run.id] * 3,
            [0.1, 0.2, 0.3],
            {key: record.params for key, record in recorded.items()},
        )
        actual = (
            sorted(recorded),
            [record.run_id for record in recorded.values()],
            sorted(record.params["lr"] for record in recorded.values()),
            config_args(run.config_path),
        )
        assert expected == actual

    def test_threads_belong_to_no_run_while_several_runs_are_in_progress(self):
        """With two runs in progress, a thread without a run cannot tell which: no run.

        Each run still has its own steps, and a step called on a thread that
        has no run (here the main thread) is recorded outside both.
        """
        arrived, release = threading.Barrier(3), threading.Event()
        runs: dict[int, zt.Run[Any]] = {}

        def start(n: int) -> None:
            runs[n] = pft.waits_with_others(n, arrived, release)

        threads = [threading.Thread(target=start, args=(n,)) for n in (1, 2)]
        for thread in threads:
            thread.start()
        try:
            arrived.wait(timeout=60)
            pft.load_data(3)
        finally:
            release.set()
            for thread in threads:
                thread.join(timeout=60)

        expected: Any = (
            {1: [("load_data", 1)], 2: [("load_data", 2)]},
            [(None, None)],
        )
        actual = (
            {n: [(r.key, r.params["n"]) for r in zt.get_run(runs[n].id).steps] for n in runs},
            [(r.run_id, r.key) for r in zt.find("load_data", n=3)],
        )
        assert expected == actual

    def test_an_exception_fails_the_run_and_propagates(self):
        """The pipeline's exception reaches the caller as it was; the run is FAILED."""
        with pytest.raises(pft.Boom) as info:
            pft.failing()

        expected: Any = (pft.Boom, ("the pipeline broke on purpose",))
        assert expected == (type(info.value), info.value.args)
        [run] = zt.runs("failing")
        expected = ("FAILED", "Boom: the pipeline broke on purpose", ["load_data"])
        assert expected == (run.state, run.error, [r.key for r in run.steps])

    def test_a_failed_run_still_writes_its_config(self):
        """The config of a failed run holds the steps called before the failure."""
        with pytest.raises(pft.Boom):
            pft.failing()

        [run] = zt.runs("failing")
        expected = (run.id, {"load_data": {"n": 1, "scale": 1.0}})
        assert expected == (zt.load_config(run.config_path).run_id, config_args(run.config_path))

    def test_sigterm_cancels_the_run_and_writes_its_config(self, store_path, tmp_path):
        """SIGTERM mid-run unwinds it: the run is recorded CANCELED, with a config."""
        started = tmp_path / "started"
        script = (
            "import sys, zentrack as zt\n"
            "zt.init(sys.argv[1])\n"
            f"from {MODULE} import waits_for_signal\n"
            "waits_for_signal()\n"
        )
        env = {**os.environ, "GLOG_minloglevel": "2", pft.STARTED_ENV: str(started)}
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(store_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + SUBPROCESS_TIMEOUT
            while not started.exists() and process.poll() is None:
                assert time.monotonic() < deadline, "the pipeline never started"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

        [run] = zt.runs("waits_for_signal")
        expected = (
            128 + signal.SIGTERM,
            "CANCELED",
            ["load_data"],
            {"load_data": {"n": 1, "scale": 1.0}},
        )
        actual = (
            process.returncode,
            run.state,
            [r.key for r in run.steps],
            config_args(run.config_path),
        )
        assert expected == actual, err

    def test_config_has_the_seed_shape(self):
        """The config is the seed's shape, as a plain YAML reader sees it.

        ``pipeline: {source, run_id, args, ...}`` and ``steps: KEY: {args, source}``;
        ``root`` is the folder ``tests.pipelines_for_tests`` imports from.
        """
        run = pft.training()

        expected: Any = {
            "pipeline": {
                "source": f"{MODULE}.training",
                "run_id": run.id,
                "args": {"lr": 0.01, "n": 4},
                "zentrack": version("zentrack"),
                "fingerprint_scheme": SCHEME,
                "root": os.path.realpath(ROOT),
            },
            "steps": {
                "load_data": {"args": {"n": 4, "scale": 1.0}, "source": f"{MODULE}.load_data"},
                "trainer": {
                    "args": {"batch_size": 2, "epochs": 1, "hidden_layers": [64, 32], "lr": 0.01},
                    "source": f"{MODULE}.TrainerStep",
                },
                "evaluate": {"args": {"threshold": 0.5}, "source": f"{MODULE}.evaluate"},
            },
        }
        data = safe_load(run.config_path)
        assert expected == data
        expected = (TRAINING_KEYS, [["args", "source"]] * 3)
        assert expected == (list(data["steps"]), [list(entry) for entry in data["steps"].values()])

    def test_config_is_written_beside_the_store(self, store_path):
        """By default the config goes to ``configs/`` next to the store, named by the run."""
        run = pft.training()

        expected = store_path.parent / "configs" / f"training-{run.id}.yaml"
        assert expected == run.config_path

    @pytest.mark.parametrize(
        ("name", "stem"),
        [
            ("../../etc", "___.._etc"),
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            (".hidden", "_hidden"),
            ("..", "__"),
            ("lr 0.1: ünï", "lr_0.1___n_"),
            ("plain-name_1.v2", "plain-name_1.v2"),
        ],
    )
    def test_config_file_name_is_safe(self, store_path, name, stem):
        """Any pipeline name gives a file directly in the configs folder; the run keeps the name.

        Only ``[A-Za-z0-9._-]`` are kept, others and leading dots become ``_``.
        """

        def body(n: int = 2) -> float:
            return pft.load_data(n)[-1]

        run = zt.pipeline(name=name)(body)()

        configs = store_path.parent / "configs"
        expected = (
            configs / f"{stem}-{run.id}.yaml",
            [configs / f"{stem}-{run.id}.yaml"],
            [(name, run.id)],
            {"n": 2},
        )
        actual = (
            run.config_path,
            sorted(store_path.parent.parent.rglob("*.yaml")),
            [(r.pipeline, r.id) for r in zt.runs(pipeline=name)],
            zt.load_config(configs / f"{stem}-{run.id}.yaml").plain_pipeline_args(),
        )
        assert expected == actual

    @pytest.mark.parametrize("name", ["train#2", "#"])
    def test_hash_in_the_name_is_a_value_error(self, name):
        """Pipeline names cannot hold '#' either, as step names cannot."""
        with pytest.raises(ValueError, match="must not contain '#'"):
            zt.pipeline(name=name)(pft.training.__wrapped__)

    def test_config_values_keep_their_exact_types(self):
        """1e-07, 1, 1.0, None, nested lists and dicts come back exactly, types included."""
        run = pft.values()

        values = {
            "tiny": 1e-07,
            "one": 1,
            "one_float": 1.0,
            "nothing": None,
            "nested": [1, [2.5, {"a": None}], "x"],
            "mapping": {"k": [True, "y"], "inner": {"z": 0}},
            "flag": True,
        }
        expected = (typed(values), typed(values))
        actual = (
            typed(config_args(run.config_path)["keep_values"]),
            typed(safe_load(run.config_path)["steps"]["keep_values"]["args"]),
        )
        assert expected == actual
        assert run.config_path is not None
        lines = [line.strip() for line in run.config_path.read_text(encoding="utf-8").splitlines()]
        spelled = ["nothing: null", "one: 1", "one_float: 1.0", "tiny: 1.0e-07"]  # sorted keys
        assert spelled == [line for line in lines if line in spelled]


class TestRuns:
    """``zt.runs``: the recorded runs, newest first."""

    def test_newest_first_for_one_pipeline(self):
        """Only the named pipeline's runs, the latest first."""
        first = pft.training(lr=0.01)
        second = pft.training(lr=0.02)
        pft.scaled()

        expected: Any = [(second.id, 0.02), (first.id, 0.01)]
        assert expected == [(r.id, r.params["lr"]) for r in zt.runs(pipeline="training")]
        expected = ["scaled", "training", "training"]
        assert expected == [r.pipeline for r in zt.runs()]

    def test_steps_in_call_order_with_keys(self):
        """A run read back lists its step records in call order, keyed, with params and state."""
        run = pft.training()

        [found] = zt.runs("training")
        expected: Any = [
            ("load_data", "load_data", "COMPLETE", {"n": 4, "scale": 1.0}),
            (
                "trainer",
                "trainer",
                "COMPLETE",
                {"batch_size": 2, "epochs": 1, "hidden_layers": [64, 32], "lr": 0.01},
            ),
            ("evaluate", "evaluate", "COMPLETE", {"threshold": 0.5}),
        ]
        assert expected == [(r.step, r.key, r.state, r.params) for r in found.steps]
        expected = (run.id, run.config_path, run.params, {"trainer": {"loss": 0.99}})
        actual = (
            found.id,
            found.config_path,
            found.params,
            {k: m for k, m in found.metrics().items() if m},
        )
        assert expected == actual

    def test_state_filter(self):
        """``state=`` keeps only runs in that state."""
        pft.training()
        with pytest.raises(pft.Boom):
            pft.failing()

        expected = (["failing"], ["training"])
        actual = (
            [r.pipeline for r in zt.runs(state="FAILED")],
            [r.pipeline for r in zt.runs(state="COMPLETE")],
        )
        assert expected == actual

    def test_unknown_pipeline_has_no_runs(self):
        """A pipeline name never run gives an empty list."""
        pft.training()

        expected: list[Any] = []
        assert expected == zt.runs(pipeline="no_such_pipeline")

    def test_the_same_args_again_are_served_from_the_cache(self):
        """Running the same pipeline twice: the second run's steps are CACHED, bodies not run."""
        pft.training()
        pft.CALLS.clear()
        again = pft.training()

        expected = (["CACHED"] * 3, [])
        assert expected == ([r.state for r in zt.get_run(again.id).steps], pft.CALLS)


class TestGetRun:
    """``zt.get_run``: one run by id or unique prefix."""

    def test_by_id_and_prefix(self):
        """The full id and a unique prefix find the same run."""
        run = pft.training()

        expected = (run.id, run.id)
        assert expected == (zt.get_run(run.id).id, zt.get_run(run.id[:-2]).id)

    def test_unknown_id(self):
        """An id that names no run is a LookupError."""
        with pytest.raises(LookupError, match="No run 'nope'"):
            zt.get_run("nope")


class TestCompareRuns:
    """``zt.compare_runs`` and the Comparison it returns."""

    def test_params_and_metrics_side_by_side(self):
        """Columns are ``step.param`` (and ``pipeline.arg``), one value per run, newest first."""
        pft.training(lr=0.01)
        pft.training(lr=0.02)

        comparison = zt.compare_runs(pipeline="training")
        expected: Any = {
            "evaluate.threshold": [0.5, 0.5],
            "load_data.n": [4, 4],
            "load_data.scale": [1.0, 1.0],
            "pipeline.lr": [0.02, 0.01],
            "pipeline.n": [4, 4],
            "trainer.batch_size": [2, 2],
            "trainer.epochs": [1, 1],
            "trainer.hidden_layers": [[64, 32], [64, 32]],
            "trainer.lr": [0.02, 0.01],
        }
        assert expected == comparison.params
        expected = ({"trainer.loss": [0.98, 0.99]}, ["pipeline.lr", "trainer.lr"])
        assert expected == (comparison.metrics, comparison.differing())

    def test_to_text(self):
        """A leaderboard: a row per run, the params that differ, then the metrics."""
        first = pft.training(lr=0.01)
        second = pft.training(lr=0.02)

        rows = [line.split() for line in zt.compare_runs("training").to_text().splitlines()]
        expected = [
            ["run", "state", "started", "took", "lr", "|", "loss"],
            [second.id, "COMPLETE", "0.02", "|", "0.98"],
            [first.id, "COMPLETE", "0.01", "|", "0.99"],
            ["same", "in", "both", "runs:"],
        ]
        assert expected == [rows[0], *[r[:2] + r[-3:] for r in rows[1:3]], rows[3][:4]]

    def test_to_text_columns(self):
        """A column per run: differing params and metrics marked ``*``, metrics labelled."""
        first = pft.training(lr=0.01)
        second = pft.training(lr=0.02)

        text = zt.compare_runs("training").to_text(only_differing=True, runs_as="columns")
        expected = [
            [second.id, first.id],
            ["state", "COMPLETE", "COMPLETE"],
            ["*", "pipeline.lr", "0.02", "0.01"],
            ["*", "trainer.lr", "0.02", "0.01"],
            ["*", "metric:trainer.loss", "0.98", "0.99"],
        ]
        assert expected == [line.split() for line in text.splitlines() if "took" not in line]

    def test_types_count_as_differences(self):
        """``1`` and ``1.0`` differ, as in the fingerprint."""
        first = pft.inner(lr=1)
        second = pft.inner(lr=1.0)

        comparison = zt.compare_runs(runs=[first.id, second.id])
        expected = (["fit.lr", "pipeline.lr"], typed([1, 1.0]))
        assert expected == (comparison.differing(), typed(comparison.params["fit.lr"]))

    def test_runs_given_by_id_in_that_order_and_missing_columns(self):
        """``runs=`` picks runs in the given order; a step absent from a run shows ``-``."""
        training = pft.training()
        scaled = pft.scaled()

        comparison = zt.compare_runs(runs=[training.id, scaled.id])
        row = next(
            line.split() for line in comparison.to_text().splitlines() if "trainer.lr" in line
        )
        expected = (
            [training.id, scaled.id],
            "[0.01, MISSING]",
            ["*", "trainer.lr", "0.01", "-"],
        )
        actual = ([r.id for r in comparison.runs], repr(comparison.params["trainer.lr"]), row)
        assert expected == actual

    def test_last(self):
        """``last=`` keeps the newest runs only."""
        pft.training(lr=0.01)
        newest = pft.training(lr=0.02)

        comparison = zt.compare_runs(pipeline="training", last=1)
        expected = ([newest.id], [])
        assert expected == ([r.id for r in comparison.runs], comparison.differing())
