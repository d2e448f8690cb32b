"""Tests for zentrack.cli: every command through a real ``python -m zentrack`` subprocess.

The runs a command reads are made in this process (on the test's store, then
flushed); the command runs in a fresh interpreter at the repository root, so
config sources like ``tests.pipelines_for_tests.training`` import.  Steps
append to ``$ZT_TEST_LOG``, which shows what a subprocess ran.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import zentrack as zt
from tests import pipelines_for_tests as pft
from tests.conftest import ROOT, SUBPROCESS_TIMEOUT

MODULE = "tests.pipelines_for_tests"


def zentrack(
    store: Path | None, *args: str, cwd: Path = ROOT, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zentrack [--store STORE] ARGS`` and return the finished process."""
    zt.flush()  # the command must see what this process recorded
    env = {**os.environ, "GLOG_minloglevel": "2"}
    env.pop("ZENTRACK_STORE", None)  # zt.init() exports it; commands here say --store
    env.pop(pft.LOG_ENV, None)
    if log is not None:
        env[pft.LOG_ENV] = str(log)
    store_args = ["--store", str(store)] if store is not None else []
    return subprocess.run(
        [sys.executable, "-m", "zentrack", *store_args, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def ok(process: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded cleanly."""
    assert (process.returncode, process.stderr) == (0, ""), process.stderr
    return process.stdout


def refused(process: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a command that must have failed with a message, not a traceback."""
    expected = (1, False, True)
    actual = (
        process.returncode,
        "Traceback" in process.stderr,
        process.stderr.startswith("zentrack: "),
    )
    assert expected == actual, process.stderr
    return process.stderr


def edit_text(path: Path | None, old: str, new: str) -> str:
    """Replace the one ``old`` in the file, as a user in an editor would; return the text."""
    assert path is not None
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text


def logged(log: Path) -> list[str]:
    """The step bodies a subprocess ran, by name, in order."""
    if not log.exists():
        return []
    return [line.split(" ", 1)[0] for line in log.read_text(encoding="utf-8").splitlines()]


def store_state() -> tuple[int, int]:
    """How many step records and runs the store holds."""
    return len(zt.find()), len(zt.runs())


@pytest.fixture
def trained() -> zt.Run[Any]:
    """One run of the training pipeline, its config commented by the user."""
    run = pft.training()
    edit_text(run.config_path, "      lr: 0.01\n", "      lr: 0.01   # tuned by hand\n")
    return run


class TestConfigShow:
    """``zentrack config show FILE``."""

    def test_prints_the_file_as_it_is(self, store_path, trained):
        """The config is printed byte for byte, the user's comments included."""
        expected = trained.config_path.read_text(encoding="utf-8")
        assert expected == ok(zentrack(store_path, "config", "show", str(trained.config_path)))


class TestConfigSet:
    """``zentrack config set FILE KEY VALUE``."""

    def test_edits_in_place_keeping_comments(self, store_path, trained):
        """Only the value changes in the file; the value is read as YAML (a float here)."""
        path = trained.config_path
        before = path.read_text(encoding="utf-8")

        out = ok(zentrack(store_path, "config", "set", str(path), "trainer.lr", "0.02"))
        expected: Any = (
            f"set trainer.lr = 0.02 in {path}\n",
            before.replace("lr: 0.01   # tuned", "lr: 0.02   # tuned"),
        )
        assert expected == (out, path.read_text(encoding="utf-8"))
        expected = {"batch_size": 2, "epochs": 1, "hidden_layers": [64, 32], "lr": 0.02}
        assert expected == zt.load_config(path).steps["trainer"].plain_args()

    @pytest.mark.parametrize(
        ("key", "text", "value"),
        [
            ("trainer.epochs", "3", 3),
            ("trainer.lr", "-0.5", -0.5),
            ("trainer.hidden_layers", "[8, 4]", [8, 4]),
            ("trainer.hidden_layers", "null", None),
            ("pipeline.n", "7", 7),
        ],
    )
    def test_values_are_read_as_yaml(self, store_path, trained, key, text, value):
        """Ints, negative floats, lists, null and pipeline args are set with their types."""
        path = trained.config_path
        ok(zentrack(store_path, "config", "set", str(path), key, text))

        config = zt.load_config(path)
        args = config.plain_pipeline_args() if key.startswith("pipeline.") else (
            config.steps["trainer"].plain_args()
        )
        name = key.rsplit(".", 1)[1]
        expected = (type(value), value)
        assert expected == (type(args[name]), args[name])

    def test_unknown_arg_is_refused_and_the_file_kept(self, store_path, trained):
        """An arg the step does not have: exit 1, file:line message, the file unchanged."""
        path = trained.config_path
        before = path.read_text(encoding="utf-8")

        err = refused(zentrack(store_path, "config", "set", str(path), "trainer.momentum", "1"))
        expected = (True, True, before)
        actual = (
            err.startswith(f"zentrack: {path}:"),
            "has no arg 'momentum'" in err,
            path.read_text(encoding="utf-8"),
        )
        assert expected == actual, err


class TestConfigDiff:
    """``zentrack config diff A B``."""

    def test_lists_the_differing_args(self, store_path, trained, tmp_path):
        """One line per differing arg, ``key: a -> b``; exit 1 as diff(1) does."""
        other = tmp_path / "b.yaml"
        shutil.copy(trained.config_path, other)
        config = zt.load_config(other)
        config.set("trainer.lr", 0.02)
        config.set("evaluate.threshold", 1)
        config.save()

        process = zentrack(store_path, "config", "diff", str(trained.config_path), str(other))
        expected = (1, "evaluate.threshold: 0.5 -> 1\ntrainer.lr: 0.01 -> 0.02\n", "")
        assert expected == (process.returncode, process.stdout, process.stderr)

    def test_identical_configs(self, store_path, trained, tmp_path):
        """No differing args: no output, exit 0."""
        other = tmp_path / "b.yaml"
        shutil.copy(trained.config_path, other)

        expected = ""
        assert expected == ok(
            zentrack(store_path, "config", "diff", str(trained.config_path), str(other))
        )


class TestConfigPlan:
    """``zentrack config plan FILE``."""

    def test_prints_hits_and_misses_with_reasons(self, store_path, trained, tmp_path):
        """Unchanged steps hit; the edited one and its downstream step miss; nothing runs."""
        path = trained.config_path
        edit_text(path, "lr: 0.01   # tuned", "lr: 0.02   # tuned")
        log = tmp_path / "steps.log"
        before = store_state()

        out = ok(zentrack(store_path, "config", "plan", str(path), log=log))
        lines = [line.split() for line in out.splitlines()]
        expected = (
            [["load_data", "hit"], ["trainer", "miss"]],
            ["-", "param", "lr", "changed:", "0.01", "->", "0.02"],
            ["evaluate", "miss"],
            [],
            before,
        )
        actual = (lines[:2], lines[2], lines[3], logged(log), store_state())
        assert expected == actual

    def test_json(self, store_path, trained):
        """``--json`` gives each step's key, verdict, fingerprint and reasons."""
        rows = json.loads(ok(zentrack(store_path, "config", "plan", str(trained.config_path),
                                      "--json")))
        plan = zt.load_config(trained.config_path).plan()
        expected = [attrs.asdict(step) for step in plan.steps]
        assert expected == rows


class TestConfigRun:
    """``zentrack config run FILE``."""

    def test_runs_the_edited_config(self, store_path, trained, tmp_path):
        """The run uses the config's args; only the steps whose args changed run."""
        path = trained.config_path
        edit_text(path, "threshold: 0.5\n", "threshold: 0.75\n")
        log = tmp_path / "steps.log"

        out = ok(zentrack(store_path, "config", "run", str(path), log=log))
        [newest, _] = zt.runs("training")
        expected: Any = (
            f"run {newest.id}: COMPLETE; config {newest.config_path}\n",
            ["evaluate"],
            {"threshold": 0.75},
        )
        actual = (out, logged(log), newest.keyed_steps()["evaluate"].params)
        assert expected == actual

    def test_bad_config_names_the_place_and_runs_nothing(self, store_path, trained, tmp_path):
        """A type error in the config: exit 1, ``file:line:col`` on stderr, no traceback."""
        path = trained.config_path
        text = edit_text(path, "batch_size: 2\n", "batch_size: two\n")
        line = text[: text.index("two")].count("\n") + 1
        log = tmp_path / "steps.log"
        before = store_state()

        err = refused(zentrack(store_path, "config", "run", str(path), log=log))
        expected = (True, [], before)
        actual = (err.startswith(f"zentrack: {path}:{line}:"), logged(log), store_state())
        assert expected == actual, err

    def test_python_tag_is_refused(self, store_path, trained, tmp_path):
        """A ``!!python`` tag: exit 1, its position on stderr, the command never runs."""
        marker = tmp_path / "marker"
        path = trained.config_path
        edit_text(
            path,
            "threshold: 0.5\n",
            f"threshold: !!python/object/apply:os.system ['touch {marker}']\n",
        )
        before = store_state()

        err = refused(zentrack(store_path, "config", "run", str(path)))
        expected = (True, False, before)
        actual = ("!!python/object/apply:os.system" in err, marker.exists(), store_state())
        assert expected == actual, err

    def test_pipeline_arg_missing_from_the_config(self, store_path, tmp_path):
        """A required pipeline argument the config lacks: exit 1, a message naming the file."""
        run = pft.on_dataset(pft.Dataset([1.0]))
        log = tmp_path / "steps.log"
        before = store_state()

        err = refused(zentrack(store_path, "config", "run", str(run.config_path), log=log))
        expected = (True, [], before)
        actual = (err.startswith(f"zentrack: {run.config_path}:"), logged(log), store_state())
        assert expected == actual, err

    def test_missing_file(self, store_path, tmp_path):
        """A path that does not exist: exit 1 with the path in the message."""
        missing = tmp_path / "nope.yaml"

        err = refused(zentrack(store_path, "config", "run", str(missing)))
        assert err.startswith(f"zentrack: {missing}:1:1: no such config file"), err


class TestRerun:
    """``zentrack rerun RUN_ID --set KEY=VALUE``."""

    def test_reruns_with_the_edit(self, store_path, trained, tmp_path):
        """The new run has the edited arg; the recorded run's config file is left as it was."""
        path = trained.config_path
        before = path.read_text(encoding="utf-8")
        log = tmp_path / "steps.log"

        out = ok(zentrack(store_path, "rerun", trained.id, "--set", "trainer.lr=0.02", log=log))
        [newest, _] = zt.runs("training")
        expected: Any = (
            f"run {newest.id}: COMPLETE; config {newest.config_path}\n",
            ["trainer", "evaluate"],
            {
                "load_data": {"n": 4, "scale": 1.0},
                "trainer": {"batch_size": 2, "epochs": 1, "hidden_layers": [64, 32], "lr": 0.02},
                "evaluate": {"threshold": 0.5},
            },
            before,
        )
        actual = (
            out,
            logged(log),
            {key: r.params for key, r in newest.keyed_steps().items()},
            path.read_text(encoding="utf-8"),
        )
        assert expected == actual

    def test_unknown_arg_is_refused(self, store_path, trained):
        """``--set`` naming an arg the step lacks: exit 1, nothing runs."""
        before = store_state()

        err = refused(zentrack(store_path, "rerun", trained.id, "--set", "trainer.momentum=1"))
        expected = (True, before)
        assert expected == ("has no arg 'momentum'" in err, store_state()), err

    def test_unknown_run(self, store_path):
        """A run id the store does not have: exit 1 with a message."""
        err = refused(zentrack(store_path, "rerun", "nope"))
        assert "No run 'nope'" in err, err


class TestRuns:
    """``zentrack runs``."""

    def test_lists_runs_newest_first(self, store_path):
        """One line per run: id, pipeline, state, step count and config path."""
        first = pft.training()
        second = pft.scaled()

        rows = [line.split() for line in ok(zentrack(store_path, "runs")).splitlines()]
        expected = [
            [second.id, "scaled", "COMPLETE", "1", "steps", str(second.config_path)],
            [first.id, "training", "COMPLETE", "3", "steps", str(first.config_path)],
        ]
        assert expected == rows

    def test_json_for_one_pipeline(self, store_path):
        """``--pipeline`` filters; ``--json`` gives ids, params and keyed steps."""
        run = pft.training()
        pft.scaled()

        rows = json.loads(ok(zentrack(store_path, "runs", "--pipeline", "training", "--json")))
        expected = [(run.id, {"n": 4, "lr": 0.01}, ["load_data", "trainer", "evaluate"])]
        assert expected == [(r["id"], r["params"], [s["key"] for s in r["steps"]]) for r in rows]


class TestShow:
    """``zentrack show RUN_ID``."""

    def test_shows_one_run(self, store_path, trained):
        """The run's id, pipeline, state, params, config and step records."""
        out = ok(zentrack(store_path, "show", trained.id))
        lines = out.splitlines()
        expected = [
            f"run       {trained.id}",
            f"pipeline  training ({MODULE}.training)",
            "state     COMPLETE",
            {"n": 4, "lr": 0.01},
            f"config    {trained.config_path}",
            "steps:",
        ]
        params = ast.literal_eval(lines[3].removeprefix("params    "))
        assert expected == [*lines[:3], params, *lines[4:6]]
        steps = [line.split()[1:3] for line in lines[6:]]
        expected_steps = [
            ["load_data", "COMPLETE"],
            ["trainer", "COMPLETE"],
            ["evaluate", "COMPLETE"],
        ]
        assert expected_steps == steps

    def test_json(self, store_path, trained):
        """``--json`` gives the run as an object."""
        row = json.loads(ok(zentrack(store_path, "show", trained.id[:-1], "--json")))
        expected = (trained.id, "COMPLETE", str(trained.config_path), 0.01)
        actual = (row["id"], row["state"], row["config_path"], row["steps"][1]["params"]["lr"])
        assert expected == actual

    def test_unknown_run(self, store_path):
        """An unknown id: exit 1, a message, no traceback."""
        err = refused(zentrack(store_path, "show", "nope"))
        assert "No run 'nope'" in err, err


class TestCompare:
    """``zentrack compare``."""

    def test_differing_params_of_a_pipeline(self, store_path):
        """``--pipeline P --differing``: the table of what differs, newest run first."""
        first = pft.training(lr=0.01)
        second = pft.training(lr=0.02)

        out = ok(zentrack(store_path, "compare", "--pipeline", "training", "--differing"))
        expected = [
            [second.id, first.id],
            ["state", "COMPLETE", "COMPLETE"],
            ["*", "pipeline.lr", "0.02", "0.01"],
            ["*", "trainer.lr", "0.02", "0.01"],
            ["trainer.loss", "0.98", "0.99"],
        ]
        assert expected == [line.split() for line in out.splitlines()]

    def test_runs_by_id_as_json(self, store_path):
        """Run ids pick the runs, in that order; ``--json`` has params, metrics and differing."""
        first = pft.training(lr=0.01)
        second = pft.training(lr=0.02)

        data = json.loads(ok(zentrack(store_path, "compare", first.id, second.id, "--json")))
        expected = (
            [first.id, second.id],
            [0.01, 0.02],
            {"trainer.loss": [0.99, 0.98]},
            ["pipeline.lr", "trainer.lr"],
        )
        actual = (data["runs"], data["params"]["trainer.lr"], data["metrics"], data["differing"])
        assert expected == actual


class TestFind:
    """``zentrack find``."""

    def test_typed_condition(self, store_path):
        """``--step trainer lr__lt=0.015`` finds the trainer call with lr 0.01 only."""
        pft.training(lr=0.01)
        pft.training(lr=0.02)

        rows = json.loads(
            ok(zentrack(store_path, "find", "--step", "trainer", "lr__lt=0.015", "--json"))
        )
        expected = [(zt.find(step="trainer", lr__lt=0.015)[0].execution_id, 0.01)]
        assert expected == [(row["execution_id"], row["params"]["lr"]) for row in rows]

    def test_text(self, store_path):
        """The text form has one line per record: id, step, state, fingerprint, params."""
        pft.training(lr=0.01)
        [record] = zt.find(step="trainer")

        out = ok(zentrack(store_path, "find", "--step", "trainer", "lr=0.01"))
        expected = [
            str(record.execution_id),
            "trainer",
            "COMPLETE",
            record.fingerprint[:12],
            "batch_size=2",
            "epochs=1",
            "hidden_layers=[64,",
            "32]",
            "lr=0.01",
            "|",
            "loss=0.99",
        ]
        assert expected == out.split()

    def test_no_match(self, store_path):
        """Nothing matches: ``no records``."""
        pft.training(lr=0.01)

        expected = "no records\n"
        assert expected == ok(zentrack(store_path, "find", "--step", "trainer", "lr__gt=1"))


class TestLookup:
    """``zentrack lookup FP``."""

    def test_finds_every_execution_of_a_fingerprint(self, store_path):
        """Both the COMPLETE call and its CACHED repeat are listed."""
        pft.training()
        pft.training()
        fingerprint = zt.find(step="trainer")[0].fingerprint

        rows = json.loads(ok(zentrack(store_path, "lookup", fingerprint, "--json")))
        expected = [(r.execution_id, r.state) for r in zt.lookup(fingerprint)]
        assert expected == [(row["execution_id"], row["state"]) for row in rows]
        expected_states = ["COMPLETE", "CACHED"]
        assert expected_states == [row["state"] for row in rows]


class TestFingerprint:
    """``zentrack fingerprint module:step k=v``."""

    @pytest.mark.parametrize(
        ("args", "kwargs"),
        [
            (["n=6"], {"n": 6}),
            (["n=6", "scale=2"], {"n": 6, "scale": 2}),
            (["n=6", "scale=2.0"], {"n": 6, "scale": 2.0}),
        ],
    )
    def test_function_step_equals_the_api(self, store_path, args, kwargs):
        """The printed fingerprint is ``zt.fingerprint``'s, values typed (2 is not 2.0)."""
        out = ok(zentrack(store_path, "fingerprint", f"{MODULE}:load_data", *args))
        expected = zt.fingerprint(pft.load_data, **kwargs) + "\n"
        assert expected == out

    def test_function_step_with_an_input(self, store_path):
        """An input given as JSON is fingerprinted by content, as in the API."""
        out = ok(zentrack(store_path, "fingerprint", f"{MODULE}:fit", "data=[1.0, 2.0]", "lr=0.3"))
        expected = zt.fingerprint(pft.fit, [1.0, 2.0], lr=0.3) + "\n"
        assert expected == out

    def test_class_step_equals_the_api(self, store_path):
        """A class step: constructor params and the entry point's input, as ``zt.fingerprint``."""
        out = ok(
            zentrack(store_path, "fingerprint", f"{MODULE}:TrainerStep", "lr=0.5", "data=[1.0]")
        )
        expected = zt.fingerprint(pft.TrainerStep(lr=0.5), [1.0]) + "\n"
        assert expected == out

    def test_missing_argument_is_a_message_not_a_traceback(self, store_path):
        """A required input left out: exit 1 and a one-line message."""
        err = refused(zentrack(store_path, "fingerprint", f"{MODULE}:fit", "lr=0.3"))
        assert "data" in err, err

    def test_class_that_is_not_a_step(self, store_path):
        """A plain class: exit 1 and a message saying it is not a step."""
        err = refused(zentrack(store_path, "fingerprint", f"{MODULE}:Dataset", "xs=[1.0]"))
        assert "not decorated with @zentrack.step" in err, err


class TestWhy:
    """``zentrack why module:step k=v``."""

    @pytest.mark.parametrize("lr", [0.5, 0.6])
    def test_class_step_equals_the_api(self, store_path, lr):
        """Constructor params build the instance, the rest are entry inputs: as ``zt.explain``.

        After ``TrainerStep(lr=0.5).run([1.0])``, lr=0.5 is a hit and lr=0.6 a
        miss whose reason is the changed param.
        """
        pft.TrainerStep(lr=0.5).run([1.0])

        out = ok(
            zentrack(store_path, "why", "--json", f"{MODULE}:TrainerStep", f"lr={lr}", "data=[1.0]")
        )
        explanation = zt.explain(pft.TrainerStep(lr=lr), [1.0])
        expected = {
            "hit": lr == 0.5,
            "reasons": [] if lr == 0.5 else ["param lr changed: 0.5 -> 0.6"],
            "fingerprint": explanation.fingerprint,
        }
        api = {
            "hit": explanation.hit,
            "reasons": explanation.reasons,
            "fingerprint": explanation.fingerprint,
        }
        assert (expected, expected) == (json.loads(out), api)


class TestStore:
    """``zentrack store``."""

    def test_info(self, store_path):
        """Where the store and its journals are, nothing waiting, executions per step."""
        pft.training()
        pft.training(lr=0.02)

        out = ok(zentrack(store_path, "store"))
        expected = [
            f"store:    {store_path}",
            f"journals: {store_path}.journal",
            "waiting:  0 records not yet in MLMD",
            "step evaluate: 2 executions",
            "step load_data: 2 executions",
            "step trainer: 2 executions",
        ]
        assert expected == out.splitlines()


class TestDemo:
    """``zentrack demo``."""

    def test_prints_every_trainer_param_read_with_plain_mlmd(self, tmp_path):
        """In an empty folder: exit 0, and plain ml_metadata shows every TrainerStep param."""
        from zentrack._demo import TrainerStep

        params = set(attrs.fields_dict(TrainerStep.Params))
        out = ok(zentrack(None, "demo", cwd=tmp_path))

        printed = out.split("  prints:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        read = [ast.literal_eval(line[line.index("{"):]) for line in printed]
        expected: Any = [params] * 3
        assert expected == [set(row) for row in read]
        expected = [0.1, 0.05, 0.1]
        assert expected == [row["lr"] for row in read]
        expected = ["COMPLETE", "COMPLETE", "CACHED"]
        assert expected == [line.split()[1] for line in printed]
        assert (tmp_path / ".zentrack" / "metadata.sqlite").is_file()
