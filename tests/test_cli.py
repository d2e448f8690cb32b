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
from tests.steps_for_tests import shared_prefix_pair, tick
from zentrack._report.table import format_number

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


@pytest.fixture
def working_copy(trained: zt.Run[Any], tmp_path: Path) -> Path:
    """The user's copy of the run's config: the run's own file records what ran."""
    copy = tmp_path / "tuned.yaml"
    shutil.copy(trained.config_path, copy)
    return copy


class TestConfigShow:
    """``zentrack config show FILE``."""

    def test_prints_the_file_as_it_is(self, store_path, trained):
        """The config is printed byte for byte, the user's comments included."""
        expected = trained.config_path.read_text(encoding="utf-8")
        assert expected == ok(zentrack(store_path, "config", "show", str(trained.config_path)))


class TestConfigSet:
    """``zentrack config set FILE KEY VALUE``."""

    def test_edits_in_place_keeping_comments(self, store_path, working_copy):
        """Only the value changes in the file; the value is read as YAML (a float here)."""
        path = working_copy
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
    def test_values_are_read_as_yaml(self, store_path, working_copy, key, text, value):
        """Ints, negative floats, lists, null and pipeline args are set with their types."""
        path = working_copy
        ok(zentrack(store_path, "config", "set", str(path), key, text))

        config = zt.load_config(path)
        args = config.plain_pipeline_args() if key.startswith("pipeline.") else (
            config.steps["trainer"].plain_args()
        )
        name = key.rsplit(".", 1)[1]
        expected = (type(value), value)
        assert expected == (type(args[name]), args[name])

    def test_a_runs_own_config_is_kept_and_output_writes_a_new_file(
        self, store_path, trained, tmp_path
    ):
        """The config a run wrote records what ran: ``set`` refuses it; ``-o NEW`` writes NEW."""
        path = trained.config_path
        before = path.read_text(encoding="utf-8")

        err = refused(zentrack(store_path, "config", "set", str(path), "trainer.lr", "0.02"))
        new = tmp_path / "tuned.yaml"
        out = ok(
            zentrack(store_path, "config", "set", str(path), "trainer.lr", "0.02", "-o", str(new))
        )

        assert f"is the config run {trained.id} wrote" in err and "-o NEW.yaml" in err
        assert before == path.read_text(encoding="utf-8")
        assert f"set trainer.lr = 0.02 in {new}\n" == out
        assert before.replace("lr: 0.01   # tuned", "lr: 0.02   # tuned") == new.read_text()

    def test_unknown_arg_is_refused_and_the_file_kept(self, store_path, working_copy):
        """An arg the step does not have: exit 1, file:line message, the file unchanged."""
        path = working_copy
        before = path.read_text(encoding="utf-8")

        err = refused(zentrack(store_path, "config", "set", str(path), "trainer.momentum", "1"))
        expected = (True, True, before)
        actual = (
            err.startswith(f"zentrack: {path}:"),
            "has no arg 'momentum'" in err,
            path.read_text(encoding="utf-8"),
        )
        assert expected == actual, err


    def test_list_that_grows_changes_only_its_lines(self, store_path, working_copy):
        """A longer list is one more line in the file's own style; ``+4`` and ``# end`` stay."""
        path = working_copy
        edit_text(path, "      'n': 4\n      scale", "      'n': +4\n      scale")
        edit_text(path, "hidden_layers: [64, 32]\n", "hidden_layers:\n        - 64\n        - 32\n")
        before = path.read_text(encoding="utf-8") + "# end\n"
        path.write_text(before, encoding="utf-8")

        key, value = "trainer.hidden_layers", "[64, 32, 16]"
        ok(zentrack(store_path, "config", "set", str(path), key, value))

        expected = before.replace("        - 32\n", "        - 32\n        - 16\n")
        assert expected == path.read_text(encoding="utf-8")

    @pytest.mark.parametrize(
        ("key", "text", "needle"),
        [
            (
                "trainer.batch_size",
                "abc",
                "arg 'batch_size' of step 'trainer' is 'abc' that is a string, but its default 1 "
                "is an int; write an int\n",
            ),
            (
                "trainer.batch_size",
                "'4'",
                "its default 1 is an int; write an int without quotes\n",
            ),
            (
                "pipeline.lr",
                "[0.1]",
                "arg 'lr' of the pipeline is [0.1] that is a list, but its default 0.01 is a "
                "float; write a float\n",
            ),
            (
                "trainer.lr",
                "0.02  # tuned",
                "'# tuned' is a YAML comment, which would be dropped from the value; to set the "
                "text as a string, quote it as YAML ('0.02  # tuned', inside the shell's own "
                "quotes), or leave the comment out\n",
            ),
            (
                "trainer.lr",
                "2e400",
                "2e400 is out of a float's range and would be read as .inf; write .inf for "
                "infinity, or quote it ('2e400') to keep it as a string\n",
            ),
        ],
    )
    def test_value_run_would_refuse_is_refused(self, store_path, working_copy, key, text, needle):
        """The same checks as ``rerun --set``: exit 1, a located message, the file unchanged."""
        path = working_copy
        before = path.read_text(encoding="utf-8")

        err = refused(zentrack(store_path, "config", "set", str(path), key, text))

        expected = (True, True, before)
        actual = (
            err.startswith(f"zentrack: {path}:") or err.startswith(f"zentrack: value {text!r}:"),
            err.endswith(needle),
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


    def test_config_without_a_run(self, store_path, trained):
        """A config without ``run_id``: steps that take only params are planned from them."""
        path = trained.config_path
        edit_text(path, f"  run_id: {trained.id}\n", "")

        out = ok(zentrack(store_path, "config", "plan", str(path)))
        expected = [["load_data", "hit"], ["trainer", "unknown"], ["evaluate", "unknown"]]
        assert expected == [line.split() for line in out.splitlines() if not line[0].isspace()]


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

    @pytest.mark.parametrize(
        ("item", "needle"),
        [
            ("trainer.batch_size=abc", "arg 'batch_size' of step 'trainer' is 'abc'"),
            ("trainer.lr=# x", "'# x' is a YAML comment"),
        ],
    )
    def test_value_that_does_not_fit_is_refused(self, store_path, trained, item, needle):
        """A value of the wrong type, or one YAML would not read as typed: nothing runs."""
        before = store_state()

        err = refused(zentrack(store_path, "rerun", trained.id, "--set", item))

        expected = (True, before)
        assert expected == (needle in err, store_state()), err

    def test_unknown_run(self, store_path):
        """A run id the store does not have: exit 1 with a message."""
        zt.runs()  # the store exists (a rerun never creates one)
        err = refused(zentrack(store_path, "rerun", "nope"))
        assert "No run 'nope'" in err, err


class TestRuns:
    """``zentrack runs``."""

    def test_lists_runs_newest_first(self, store_path):
        """A line per run: id, pipeline, state, start, duration, steps and key metrics."""
        first = pft.training()
        second = pft.scaled()

        rows = [line.split() for line in ok(zentrack(store_path, "runs")).splitlines()]
        expected = [
            ["run", "pipeline", "state", "started", "took", "steps", "metrics"],
            [second.id, "scaled", "COMPLETE", "1"],
            [first.id, "training", "COMPLETE", "3", "loss=0.99"],
        ]
        shown = [[*r[:3], r[6], *[c for c in r if "=" in c]] for r in rows[1:]]  # "48 ms"
        assert expected == [rows[0][:7], *shown]

    def test_limit_shows_the_newest_and_says_more_exist(self, store_path):
        """``--limit 1``: the newest run, then a line saying older ones were left out."""
        pft.training()
        newest = pft.scaled()

        lines = ok(zentrack(store_path, "runs", "--limit", "1")).splitlines()
        expected = (3, newest.id, "... older runs not shown (--limit 0 shows all)")
        assert expected == (len(lines), lines[1].split()[0], lines[-1])

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
        """The run's id, pipeline, state, start, params, config and step records."""
        out = ok(zentrack(store_path, "show", trained.id))
        lines = out.splitlines()
        expected = [
            f"run       {trained.id}",
            f"pipeline  training ({MODULE}.training)",
            "state     COMPLETE",
            "started",
            "params    lr=0.01, n=4",
            f"config    {trained.config_path}",
            "steps (3):",
        ]
        assert expected == [*lines[:3], lines[3].split()[0], *lines[4:7]]
        steps = [line.split()[1:3] for line in lines[8:]]
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
        pft.scaled()
        err = refused(zentrack(store_path, "show", "nope"))
        assert "No run 'nope'" in err, err


class TestCompare:
    """``zentrack compare``."""

    def test_differing_params_of_a_pipeline(self, store_path):
        """``--pipeline P --differing``: the table of what differs, newest run first."""
        first = pft.training(lr=0.01)
        second = pft.training(lr=0.02)

        out = ok(zentrack(store_path, "compare", "--pipeline", "training", "--differing"))
        rows = [line.split() for line in out.splitlines()]
        expected = [
            ["run", "state", "started", "took", "lr", "|", "loss"],
            [second.id, "COMPLETE", "0.02", "|", "0.98"],
            [first.id, "COMPLETE", "0.01", "|", "0.99"],
        ]
        assert expected == [rows[0], *[r[:2] + r[-3:] for r in rows[1:]]]

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


class TestCompareLabels:
    """A param and a metric of the same name: the demo's ``loss`` ('mse') and logged loss."""

    @pytest.fixture
    def demo_runs(self) -> tuple[zt.Run[Any], zt.Run[Any]]:
        from zentrack._demo import training

        return training(lr=0.1), training(lr=0.05)

    def test_text_keeps_the_metric_apart(self, store_path, demo_runs):
        """The metric is a column after ``|``; the same-valued param is on the line below."""
        first, second = demo_runs
        losses = [run.steps[-1].metrics["loss"] for run in (second, first)]

        out = ok(zentrack(store_path, "compare", "--pipeline", "training"))
        rows = [line.split() for line in out.splitlines()]
        expected = (["|", "loss"], [format_number(loss) for loss in losses], True)
        actual = (
            rows[0][-2:],
            [row[-1] for row in rows[1:3]],
            "trainer.loss=mse," in rows[3],
        )
        assert expected == actual

    def test_differing_keeps_the_metric(self, store_path, demo_runs):
        """``--differing`` drops the same-valued params' line; the metric column stays."""
        out = ok(zentrack(store_path, "compare", "--pipeline", "training", "--differing"))
        expected = (["lr", "|", "loss"], 3)
        assert expected == (out.splitlines()[0].split()[-3:], len(out.splitlines()))

    def test_json_keeps_params_and_metrics_apart(self, store_path, demo_runs):
        """In JSON the metric is under ``metrics`` only; ``differing`` lists params only."""
        first, second = demo_runs
        losses = [run.steps[-1].metrics["loss"] for run in (second, first)]

        data = json.loads(ok(zentrack(store_path, "compare", "--pipeline", "training", "--json")))
        comparison = zt.compare_runs(pipeline="training")
        expected = (["mse", "mse"], losses, ["pipeline.lr", "trainer.lr"])
        actual = (
            data["params"]["trainer.loss"],
            data["metrics"]["trainer.loss"],
            data["differing"],
        )
        assert (expected, expected) == (
            actual,
            (
                comparison.params["trainer.loss"],
                comparison.metrics["trainer.loss"],
                comparison.differing(),
            ),
        )


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

    def test_unknown_operator_is_a_message(self, store_path):
        """A ValueError of the API (an unknown operator) is one line and exit 1."""
        pft.training()

        err = refused(zentrack(store_path, "find", "lr__about=0.01"))
        assert "unknown operator 'about'" in err, err

    def test_limit_and_order_by_a_metric(self, store_path):
        """``--order-by -loss --limit 2``: the two largest losses, largest first."""
        for lr in (0.01, 0.02, 0.03):
            pft.training(lr=lr)
        losses = sorted((r.metrics["loss"], r.params["lr"]) for r in zt.find(step="trainer"))

        rows = json.loads(ok(zentrack(
            store_path, "find", "--step", "trainer", "--order-by", "-loss", "--limit", "2",
            "--json",
        )))
        expected = [lr for _, lr in losses[::-1][:2]]
        assert expected == [row["params"]["lr"] for row in rows]

    def test_newest_first_and_a_metric_condition(self, store_path):
        """``--order-by -started`` lists the newest call first; metrics are conditions too."""
        for lr in (0.01, 0.02):
            pft.training(lr=lr)
        loss = zt.find(step="trainer")[0].metrics["loss"]

        rows = json.loads(ok(zentrack(
            store_path, "find", "--step", "trainer", "--order-by", "-started",
            f"loss__le={loss!r}", "--json",
        )))
        expected = [0.02, 0.01]
        assert expected == [row["params"]["lr"] for row in rows]

    @pytest.mark.parametrize("limit", ["-1", "two"])
    def test_a_bad_limit_says_what_a_limit_is(self, store_path, limit):
        """``--limit`` takes a whole number, 0 or more: argparse's exit 2 and why."""
        done = zentrack(store_path, "find", "--limit", limit)
        expected = (2, True)
        assert expected == (done.returncode, "a whole number, 0 or more" in done.stderr)

    def test_no_match(self, store_path):
        """Nothing matches: ``no records``."""
        pft.training(lr=0.01)

        expected = "no records\n"
        assert expected == ok(zentrack(store_path, "find", "--step", "trainer", "lr__gt=1"))


@zt.step
def padded(i: int = 0, pad: str = "") -> int:
    """A step whose records print as long lines."""
    return i


class TestClosedOutput:
    """A reader that stops early: ``zentrack find | head -1``."""

    def test_find_into_a_reader_that_leaves(self, store_path):
        """The reader gets its line; zentrack exits 141 (128 + SIGPIPE) with nothing on stderr.

        400 records of 1 kB lines overflow the pipe's buffer, so zentrack is
        still writing when the reader closes its end.
        """
        for i in range(400):
            padded(i, pad="x" * 1000)
        zt.flush()
        env = {**os.environ, "GLOG_minloglevel": "2"}
        env.pop("ZENTRACK_STORE", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "zentrack", "--store", str(store_path), "find", "--step",
             "padded"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read()
        code = process.wait(timeout=SUBPROCESS_TIMEOUT)
        expected = (141, "", ["padded", "COMPLETE"])
        assert expected == (code, err, first.split()[1:3]), err


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

    def test_the_short_fingerprint_find_prints(self, store_path):
        """The 12 characters ``find`` prints look the records up, as the full fingerprint does."""
        pft.training()
        pft.training()
        short = ok(zentrack(store_path, "find", "--step", "trainer")).split()[3]

        rows = json.loads(ok(zentrack(store_path, "lookup", short, "--json")))
        full = zt.find(step="trainer")[0].fingerprint
        expected = (12, [(r.execution_id, r.state) for r in zt.lookup(full)])
        assert expected == (len(short), [(row["execution_id"], row["state"]) for row in rows])

    def test_too_short_says_what_a_fingerprint_is(self, store_path):
        """Fewer than 8 characters: exit 1, and how to get a usable fingerprint."""
        pft.training()

        err = refused(zentrack(store_path, "lookup", "bc8b"))
        assert "64 hex characters, or a prefix of at least 8" in err, err

    def test_ambiguous_prefix_lists_the_candidates(self, store_path):
        """Two fingerprints start with the prefix: exit 1, both named."""
        first, second = shared_prefix_pair()
        tick(first)
        tick(second)
        fingerprints = [tick.fingerprint(first), tick.fingerprint(second)]

        err = refused(zentrack(store_path, "lookup", fingerprints[0][:8]))
        expected = (True, True, True)
        actual = ("ambiguous" in err, fingerprints[0] in err, fingerprints[1] in err)
        assert expected == actual, err


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
            "why:      named by --store",
            f"journals: {store_path}.journal",
            "waiting:  0 records not yet in MLMD",
            "step evaluate: 2 executions",
            "step load_data: 2 executions",
            "step trainer: 2 executions",
        ]
        assert expected == out.splitlines()


READ_COMMANDS = [
    ["find"],
    ["lookup", "0" * 64],
    ["runs"],
    ["show", "20260101"],
    ["compare"],
    ["why", f"{MODULE}:load_data"],
    ["cache"],
    ["cache", "info"],
    ["store"],
    ["store", "info"],
]


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zentrack ARGS`` in ``cwd`` with ``env`` added (no store exported)."""
    zt.flush()
    full = {**os.environ, "GLOG_minloglevel": "2"}
    full.pop("ZENTRACK_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "zentrack", *args],
        cwd=cwd,
        env={**full, **(env or {})},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


class TestMissingStore:
    """Read commands on a SQLite store that does not exist create nothing."""

    @pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
    def test_typo_in_store_is_refused(self, tmp_path, command):
        """``--store typo.sqlite CMD``: exit 1 naming the path, and no file or folder made."""
        project = tmp_path / "project"
        project.mkdir()
        typo = project / "typo.sqlite"

        err = refused(zentrack(typo, *command))
        expected = (f"zentrack: no store at {typo}; check --store / $ZENTRACK_STORE\n", [])
        assert expected == (err, list(project.iterdir()))

    def test_relative_path_from_the_environment(self, tmp_path):
        """``$ZENTRACK_STORE=typo.sqlite``: refused the same way, the path made absolute."""
        project = tmp_path / "project"
        project.mkdir()
        err = refused(run_cli("runs", cwd=project, env={"ZENTRACK_STORE": "typo.sqlite"}))
        expected = (f"zentrack: no store at {project / 'typo.sqlite'}; check --store", [])
        assert expected == (err.split(" / ")[0], list(project.iterdir()))

    def test_default_store_in_a_folder_without_one(self, tmp_path):
        """No store given, no ``.zentrack`` here: refused, and no ``.zentrack`` created."""
        project = tmp_path / "project"
        project.mkdir()
        err = refused(run_cli("find", cwd=project))
        expected = (str(project / ".zentrack" / "metadata.sqlite"), [])
        assert expected == (err.split("no store at ")[1].split(";")[0], list(project.iterdir()))

    def test_records_waiting_in_journals_are_read(self, tmp_path, run_python):
        """No SQLite file yet, but a dead process's journal: the read writes and shows it."""
        path = tmp_path / "fresh" / "metadata.sqlite"
        script = (
            "import os, sys\n"
            "import zentrack as zt\n"
            "from tests.steps_for_tests import square\n"
            "zt.init(sys.argv[1])\n"
            "square(7)\n"
            "os._exit(0)  # no flush at exit\n"
        )
        done = run_python(script, str(path))
        expected = (0, False)
        assert expected == (done.returncode, path.exists()), done.stderr

        rows = json.loads(ok(zentrack(path, "find", "--json")))
        expected = [("square", {"x": 7})]
        assert expected == [(row["step"], row["params"]) for row in rows]

    def test_existing_empty_store_reads_as_empty(self, store_path):
        """A store that exists but holds nothing: ``no runs``, exit 0, as before."""
        zt.runs()
        expected = "no runs\n"
        assert expected == ok(zentrack(store_path, "runs"))


SCRIPT = """\
import os

import zentrack as zt


def note(text):
    with open(os.environ["ZT_TEST_LOG"], "a", encoding="utf-8") as stream:
        stream.write(text + "\\n")


FACTOR = 2


def scale(x):
    return FACTOR * x


@zt.step
def double(x: int = 1) -> int:
    with open(os.environ["ZT_TEST_LOG"], "a", encoding="utf-8") as stream:
        stream.write(f"double {x}\\n")
    return scale(x)


@zt.pipeline
def outer(x: int = 1) -> int:
    return double(x)


note("top-level")
if __name__ == "__main__":
    note("main")
    run = outer(x=3)
    note(f"config {run.config_path}")
"""


class TestScriptPipelines:
    """Pipelines defined in the script being run, rerun with ``config run`` and ``rerun``."""

    def run_script(
        self, store: Path, folder: Path, *command: str
    ) -> tuple[subprocess.CompletedProcess[str], Path]:
        """Run ``python COMMAND`` in ``folder`` on ``store``; return it and its config path."""
        log = folder / "log.txt"
        done = subprocess.run(
            [sys.executable, *command],
            cwd=folder,
            env={
                **os.environ,
                "GLOG_minloglevel": "2",
                "ZENTRACK_STORE": str(store),
                "ZT_TEST_LOG": str(log),
            },
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        assert done.returncode == 0, done.stderr
        config = next(
            line.split(" ", 1)[1] for line in logged_lines(log) if line.startswith("config ")
        )
        return done, Path(config)

    def test_script_records_its_module_and_reruns(self, store_path, tmp_path):
        """``python train.py`` records ``train.outer``; the config reruns from the folder.

        The rerun imports train.py as a module: its top-level code runs again,
        the ``__main__`` block does not.  The step's fingerprint does not depend
        on the module's name (its helper and constant are keyed ``train.scale``
        and ``train.FACTOR`` either way), so the same args are a cache hit.
        """
        (tmp_path / "train.py").write_text(SCRIPT, encoding="utf-8")
        _, config = self.run_script(store_path, tmp_path, "train.py")
        [first] = zt.runs()
        sources = (
            zt.load_config(config).pipeline_source,
            {key: step.source for key, step in zt.load_config(config).steps.items()},
            first.source,
            first.steps[0].source,
        )
        expected_sources = (
            "train.outer",
            {"double": "train.double"},
            "train.outer",
            "train.double",
        )
        assert expected_sources == sources

        log = tmp_path / "log.txt"
        ok(zentrack(store_path, "config", "run", str(config), cwd=tmp_path, log=log))
        ok(zentrack(store_path, "rerun", first.id, "--set", "double.x=5", cwd=tmp_path, log=log))

        expected = (
            ["top-level", "main", "double 3", "top-level", "top-level", "double 5"],
            [("COMPLETE", "COMPLETE"), ("COMPLETE", "CACHED"), ("COMPLETE", "COMPLETE")],
            [first.steps[0].fingerprint] * 2,
        )
        runs = zt.runs()[::-1]
        actual = (
            [line for line in logged_lines(log) if not line.startswith("config ")],
            [(run.state, run.steps[0].state) for run in runs],
            [run.steps[0].fingerprint for run in runs[:2]],
        )
        assert expected == actual

    def test_python_dash_m_records_the_module_name(self, store_path, tmp_path):
        """``python -m scripts.train`` records ``scripts.train.outer``, which reruns."""
        package = tmp_path / "scripts"
        package.mkdir()
        (package / "__init__.py").write_text("", encoding="utf-8")
        (package / "train.py").write_text(SCRIPT, encoding="utf-8")
        _, config = self.run_script(store_path, tmp_path, "-m", "scripts.train")

        log = tmp_path / "log.txt"
        out = ok(zentrack(store_path, "config", "run", str(config), cwd=tmp_path, log=log))
        expected = ("scripts.train.outer", "COMPLETE")
        assert expected == (zt.load_config(config).pipeline_source, zt.runs()[0].state), out

    @pytest.mark.parametrize("how", ["-c", "my-train.py"])
    def test_unimportable_main_says_why(self, store_path, tmp_path, how):
        """``python -c`` or a script whose name is no module name: ``__main__.outer``.

        Rerunning it in that same process works; from another process the error
        says it must be defined in an importable module.
        """
        script = SCRIPT.replace(
            '    note(f"config {run.config_path}")\n',
            '    note(f"config {run.config_path}")\n'
            '    note(f"same process {zt.load_config(run.config_path).run().state}")\n',
        )
        if how == "-c":
            command = ["-c", script]
        else:
            (tmp_path / how).write_text(script, encoding="utf-8")
            command = [how]
        _, config = self.run_script(store_path, tmp_path, *command)

        log = tmp_path / "log.txt"
        err = refused(zentrack(store_path, "config", "run", str(config), cwd=tmp_path, log=log))
        expected = (
            "__main__.outer",
            "same process COMPLETE",
            True,
            True,
        )
        actual = (
            zt.load_config(config).pipeline_source,
            logged_lines(tmp_path / "log.txt")[-1],
            "'__main__.outer' cannot be imported (ImportError: it was defined in a script, "
            "REPL or notebook" in err,
            "define it in an importable module" in err,
        )
        assert expected == actual, err


def logged_lines(log: Path) -> list[str]:
    """Every line a script wrote to its log."""
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


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


#: A config with one step ``t`` whose source cannot be imported: ``set`` checks shape only.
DASH_CONFIG = "pipeline:\n  source: a.pipe\nsteps:\n  t:\n    source: a.T\n    args:\n"


class TestSharedOptions:
    """``--store`` before or after the command; ``--json`` only where JSON is printed."""

    @pytest.mark.parametrize(
        "command",
        [["runs"], ["find", "--step", "trainer"], ["store", "info"], ["cache"], ["config", "plan"]],
        ids=" ".join,
    )
    def test_store_after_the_command(self, store_path, trained, command):
        """``zentrack CMD --store X`` reads the same store as ``zentrack --store X CMD``."""
        tail = [str(trained.config_path)] if command[0] == "config" else []
        before = ok(zentrack(store_path, *command, *tail))
        after = ok(zentrack(None, *command, *tail, "--store", str(store_path)))
        assert before == after

    def test_store_after_a_nested_command_wins(self, store_path, tmp_path):
        """Given twice, the one nearer the command's end is used (the first names no store)."""
        pft.scaled()
        typo = tmp_path / "typo.sqlite"
        out = ok(zentrack(typo, "runs", "--store", str(store_path)))
        expected = ["scaled"]
        assert expected == [line.split()[1] for line in out.splitlines()[1:]]

    @pytest.mark.parametrize(
        "command",
        [["flush"], ["cache"], ["cache", "clear"], ["store"], ["fingerprint", f"{MODULE}:fit"],
         ["config", "show", "x.yaml"], ["config", "set", "x.yaml", "t.x", "1"], ["demo"]],
        ids=" ".join,
    )
    def test_json_is_refused_where_it_is_not_printed(self, store_path, command):
        """A command that prints no JSON rejects ``--json`` (exit 2, argparse's usage error)."""
        process = zentrack(store_path, *command, "--json")
        expected = (2, True)
        actual = (process.returncode, "unrecognized arguments: --json" in process.stderr)
        assert expected == actual, process.stderr


class TestValueGrammar:
    """One grammar for ``find``, ``fingerprint``, ``why``, ``config set`` and ``rerun --set``."""

    def test_find_reads_a_leading_dot_float(self, store_path):
        """``find lr=.01`` finds lr 0.01 (it searched the string '.01' before)."""
        pft.training(lr=0.01)
        rows = json.loads(
            ok(zentrack(store_path, "find", "--step", "trainer", "lr=.01", "--json"))
        )
        expected = [0.01]
        assert expected == [row["params"]["lr"] for row in rows]

    def test_fingerprint_reads_yaml(self, store_path):
        """``scale=.5`` is the float 0.5 and ``xs=[1, 2.0]`` a list, as in a config."""
        out = ok(zentrack(store_path, "fingerprint", f"{MODULE}:load_data", "n=3", "scale=.5"))
        assert zt.fingerprint(pft.load_data, n=3, scale=0.5) + "\n" == out

    @pytest.mark.parametrize(
        "command",
        [
            ["find", "lr=None"],
            ["fingerprint", f"{MODULE}:load_data", "scale=None"],
            ["config", "set", "CONFIG", "trainer.hidden_layers", "None"],
            ["rerun", "RUN", "--set", "trainer.hidden_layers=None"],
            ["find", "lr=inf"],
            ["config", "set", "CONFIG", "trainer.lr", "-inf"],
        ],
        ids=" ".join,
    )
    def test_python_spellings_are_refused(self, store_path, working_copy, trained, command):
        """``None``/``inf`` are strings in YAML: refused with the YAML spelling; nothing runs."""
        command = [
            {"CONFIG": str(working_copy), "RUN": trained.id}.get(word, word) for word in command
        ]
        before = (store_state(), working_copy.read_text(encoding="utf-8"))

        err = refused(zentrack(store_path, *command))

        value = command[-1].rpartition("=")[2] if "=" in command[-1] else command[-1]
        spelling = {"None": "null", "inf": ".inf", "-inf": "-.inf"}[value]
        expected = (True, True, before)
        actual = (
            f"value {value!r} is the Python spelling" in err,
            f"write {spelling} for the value, or quote it ('{value}')" in err,
            (store_state(), working_copy.read_text(encoding="utf-8")),
        )
        assert expected == actual, err

    def test_rerun_null_sets_none(self, store_path, trained):
        """``--set trainer.hidden_layers=null`` runs the step with None."""
        ok(zentrack(store_path, "rerun", trained.id, "--set", "trainer.hidden_layers=null"))
        newest = zt.runs("training")[0]
        assert newest.keyed_steps()["trainer"].params["hidden_layers"] is None

    @pytest.mark.parametrize(
        ("typed", "written"),
        [("-1e-3", "-0.001"), ("-.inf", "-.inf"), ("-5", "-5"), ("-x", "'-x'")],
    )
    def test_value_starting_with_a_dash(self, tmp_path, store_path, typed, written):
        """``zentrack config set FILE KEY -1e-3`` sets the value; nothing else changes."""
        path = tmp_path / "c.yaml"
        path.write_text(DASH_CONFIG + "      x: 1  # one\n", encoding="utf-8")

        process = zentrack(store_path, "config", "set", str(path), "t.x", typed)

        expected = (0, "", DASH_CONFIG + f"      x: {written}  # one\n")
        assert expected == (process.returncode, process.stderr, path.read_text())

    def test_dash_value_before_the_output_option(self, store_path, trained, tmp_path):
        """``set RUN_CONFIG trainer.lr -1e-3 -o NEW``: the value, then ``-o`` still an option."""
        new = tmp_path / "new.yaml"
        path = str(trained.config_path)
        out = ok(zentrack(store_path, "config", "set", path, "trainer.lr", "-1e-3", "-o", str(new)))
        expected = (f"set trainer.lr = -1e-3 in {new}\n", -0.001)
        assert expected == (out, zt.load_config(new).steps["trainer"].plain_args()["lr"])

    @pytest.mark.parametrize(
        "command", [["find"], ["fingerprint"], ["why"], ["config"], ["config", "set"], ["rerun"]],
        ids=" ".join,
    )
    def test_help_documents_the_value_syntax(self, store_path, command):
        """Every command that takes values says in ``--help`` that they are YAML 1.2."""
        out = ok(zentrack(store_path, *command, "--help"))
        expected = (True, True, True)
        assert expected == ("VALUE" in out, "YAML 1.2" in out, "-1e-3" in out), out
