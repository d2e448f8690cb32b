"""Tests for zentrack._config rerun and plan: running and planning from a YAML config.

The YAML layer itself (loading, refusing, saving) is tested in test_config.py;
here every config comes from a real pipeline run, is edited as a user would
(in a text editor, or through ``cfg.steps[key].args``), then planned or run
against the real store.  A refused config must leave the store, the configs
folder and the steps' side effects exactly as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import zentrack as zt
from tests import pipelines_for_tests as pft
from tests.strategies import typed
from zentrack.exceptions import ConfigError

MODULE = "tests.pipelines_for_tests"
TRAINER_ARGS = {"batch_size": 2, "epochs": 1, "hidden_layers": [64, 32], "lr": 0.01}


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    """Forget the step bodies that earlier tests ran."""
    pft.CALLS.clear()


def keyed_params(run_id: str) -> dict[str, dict[str, Any]]:
    """The params of each step call of a recorded run, by config key."""
    return {key: r.params for key, r in zt.get_run(run_id).keyed_steps().items()}


def keyed_states(run_id: str) -> dict[str, str]:
    """The state of each step call of a recorded run, by config key."""
    return {key: r.state for key, r in zt.get_run(run_id).keyed_steps().items()}


def edit_text(path: Path, old: str, new: str) -> str:
    """Replace the one ``old`` in the file, as a user in an editor would; return the text."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path}"
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text


def position(text: str, needle: str, after: str = "") -> str:
    """``line:column`` (1-based) where ``needle`` first occurs after ``after``."""
    start = text.index(after) + len(after) if after else 0
    before = text[: text.index(needle, start)]
    return f"{before.count(chr(10)) + 1}:{len(before) - (before.rfind(chr(10)) + 1) + 1}"


class Snapshot:
    """What running anything would change: MLMD, the configs folder, the step bodies."""

    def __init__(self, plain_store: Any, configs: Path) -> None:
        zt.flush()
        store = plain_store()
        self.executions = len(store.get_executions())
        self.runs = len(store.get_contexts_by_type("zentrack.PipelineRun"))
        self.configs = sorted(configs.iterdir()) if configs.is_dir() else []
        self.calls = list(pft.CALLS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Snapshot({vars(self)})"


@pytest.fixture
def snapshot(plain_store, store_path):
    """Return a function that records what the store and the steps have done so far."""
    return lambda: Snapshot(plain_store, store_path.parent / "configs")



def refusal(config_path: Path | None) -> tuple[str, str]:
    """Load and run a config that must be refused: ``(file:line:col, what is wrong)``."""
    assert config_path is not None
    with pytest.raises(ConfigError) as info:
        zt.load_config(config_path).run()
    location, _, what = str(info.value).partition(": ")
    return location, what


class TestConfigRun:
    """``Config.run``: rerun a pipeline with the config's args."""

    def test_edited_config_reruns_with_the_edit(self, plain_store):
        """Run -> user comments the config -> edit one arg -> save -> run: the edit is used.

        The saved file is the user's text with only the edited value changed;
        the new run has the edited param for that step and the others
        unchanged (read with plain ml_metadata), and writes a new config.
        """
        first = pft.training()
        path = first.config_path
        assert path is not None
        edit_text(path, "      lr: 0.01\n", "      lr: 0.01   # tuned by hand\n")
        users = edit_text(path, "steps:\n", "# my notes on the steps\nsteps:\n")

        cfg = zt.load_config(path)
        cfg.steps["trainer"].args["lr"] = 0.02
        tuned = cfg.save(path.with_name("tuned.yaml"))  # a run's own config is kept
        expected_text = users.replace("lr: 0.01   # tuned", "lr: 0.02   # tuned")
        assert expected_text == tuned.read_text(encoding="utf-8")
        assert users == path.read_text(encoding="utf-8")

        second = cfg.run()
        expected: Any = (
            "COMPLETE",
            {
                "load_data": {"n": 4, "scale": 1.0},
                "trainer": {**TRAINER_ARGS, "lr": 0.02},
                "evaluate": {"threshold": 0.5},
            },
            [
                ("trainer", {"batch_size": 2, "lr": 0.02, "epochs": 1}),
                ("evaluate", {"threshold": 0.5}),
            ],
        )
        assert expected == (second.state, keyed_params(second.id), pft.CALLS[-2:])

        zt.flush()
        store = plain_store()
        context = store.get_context_by_type_and_name("zentrack.PipelineRun", second.id)
        types = {t.id: t.name for t in store.get_execution_types()}
        props = {
            types[e.type_id].removeprefix("zentrack.step."): e.custom_properties
            for e in store.get_executions_by_context(context.id)
        }
        expected = {"trainer": (0.02, 2), "load_data": 4, "evaluate": 0.5}
        assert expected == {
            "trainer": (
                props["trainer"]["lr"].double_value,
                props["trainer"]["batch_size"].int_value,
            ),
            "load_data": props["load_data"]["n"].int_value,
            "evaluate": props["evaluate"]["threshold"].double_value,
        }

        assert second.config_path is not None
        written = zt.load_config(second.config_path)
        expected = (True, second.id, 0.02, expected_text)
        actual = (
            second.config_path != path,
            written.run_id,
            written.steps["trainer"].plain_args()["lr"],
            tuned.read_text(encoding="utf-8"),
        )
        assert expected == actual

    def test_class_step_is_built_from_the_config_args(self):
        """A class step's config args instantiate the class its source names."""
        run = pft.hardcoded()
        cfg = zt.load_config(run.config_path)
        cfg.set("trainer.batch_size", 8)
        cfg.set("trainer.hidden_layers", [3])
        cfg.save(cfg.path.with_name("tuned.yaml"))  # a run's own config is kept

        again = cfg.run()
        expected: Any = (
            f"{MODULE}.TrainerStep",
            {"batch_size": 8, "epochs": 1, "hidden_layers": [3], "lr": 0.1},
            True,
        )
        actual = (
            cfg.steps["trainer"].source,
            keyed_params(again.id)["trainer"],
            ("trainer", {"batch_size": 8, "lr": 0.1, "epochs": 1}) in pft.CALLS,
        )
        assert expected == actual

    def test_config_args_take_precedence_over_the_code(self):
        """The code passes lr=0.1; the config says 0.5: both steps run with 0.5."""
        run = pft.hardcoded()
        cfg = zt.load_config(run.config_path)
        cfg.steps["trainer"].args["lr"] = 0.5
        cfg.steps["fit"].args["lr"] = 0.5
        cfg.save(cfg.path.with_name("tuned.yaml"))  # a run's own config is kept

        again = cfg.run()
        params = keyed_params(again.id)
        expected = ((0.5, 0.5), {"trainer": 0.5, "fit": 0.5}, 0.5 * 2)
        actual = (
            (params["trainer"]["lr"], params["fit"]["lr"]),
            {step: called["lr"] for step, called in pft.CALLS[-2:]},
            again.output,
        )
        assert expected == actual

    def test_a_second_call_is_edited_by_its_own_key(self):
        """Editing ``fit#2`` changes the second call only."""
        run = pft.twice()
        cfg = zt.load_config(run.config_path)
        cfg.steps["fit#2"].args["lr"] = 0.9
        cfg.save(cfg.path.with_name("tuned.yaml"))  # a run's own config is kept

        again = cfg.run()
        params = keyed_params(again.id)
        expected = ((0.1, 0.9), [0.1, 0.9])
        assert expected == ((params["fit"]["lr"], params["fit#2"]["lr"]), again.output)

    def test_pipeline_args_from_the_config_are_used(self):
        """The pipeline function gets the config's own args."""
        run = pft.scaled()
        cfg = zt.load_config(run.config_path)
        cfg.set("pipeline.factor", 3.0)
        cfg.save(cfg.path.with_name("tuned.yaml"))  # a run's own config is kept

        again = cfg.run()
        expected = ({"n": 2, "factor": 3.0}, 3.0)
        assert expected == (zt.get_run(again.id).params, again.output)

    def test_var_keyword_args_are_edited_under_their_name(self):
        """A step's ``**weights`` sit under ``weights``: editing and adding keys there runs."""
        run = pft.blended()
        cfg = zt.load_config(run.config_path)
        cfg.steps["blend"].args["weights"] = {"momentum": 0.5, "decay": 0.125}
        cfg.save(cfg.path.with_name("tuned.yaml"))  # a run's own config is kept

        again = cfg.run()
        expected = (
            {"base": 0.5, "weights": {"momentum": 0.25}},
            {"base": 0.5, "weights": {"momentum": 0.5, "decay": 0.125}},
            ("blend", {"base": 0.5, "momentum": 0.5, "decay": 0.125}),
            1.125,
        )
        actual = (
            keyed_params(run.id)["blend"],
            keyed_params(again.id)["blend"],
            pft.CALLS[-1],
            again.output,
        )
        assert expected == actual

    def test_an_unedited_config_reruns_from_the_cache(self):
        """Same args: every step is served from the cache, no step body runs."""
        run = pft.training()
        pft.CALLS.clear()

        again = zt.load_config(run.config_path).run()
        expected = ({"load_data": "CACHED", "trainer": "CACHED", "evaluate": "CACHED"}, [], True)
        assert expected == (keyed_states(again.id), pft.CALLS, run.output == again.output)

    def test_exact_values_survive_a_rerun(self):
        """1e-07, 1, 1.0, None and nested containers reach the step with their types."""
        run = pft.values()
        again = zt.load_config(run.config_path).run()

        expected = (typed(keyed_params(run.id)), ["CACHED"])
        assert expected == (typed(keyed_params(again.id)), list(keyed_states(again.id).values()))

    def test_a_prebuilt_class_step_instance_gets_the_config_args(self):
        """An instance made before the run still runs with the config's edited args.

        Its entry point runs on a stand-in built with the config's args (the
        body sees ``self.lr == 0.7``; record and new config say 0.7), and the
        instance the code holds keeps the values it was built with.
        """
        run = pft.prebuilt()
        cfg = zt.load_config(run.config_path)
        cfg.steps["trainer"].args["lr"] = 0.7
        cfg.save(cfg.path.with_name("tuned.yaml"))  # a run's own config is kept
        pft.CALLS.clear()

        again = cfg.run()
        assert again.config_path is not None
        expected: Any = (
            {"batch_size": 1, "epochs": 1, "hidden_layers": None, "lr": 0.7},
            0.7,
            [("trainer", {"batch_size": 1, "lr": 0.7, "epochs": 1})],  # load_data: cached
            {"weights": [0.0, 0.7], "lr": 0.7},
            (0.1, 0.1),
        )
        actual = (
            keyed_params(again.id)["trainer"],
            zt.load_config(again.config_path).steps["trainer"].plain_args()["lr"],
            pft.CALLS,
            again.output,
            (pft.PREBUILT.params.lr, pft.PREBUILT.lr),
        )
        assert expected == actual

    def test_a_prebuilt_instance_the_config_leaves_alone_runs_itself(self):
        """A config that keeps the instance's args runs the instance itself, from the cache."""
        run = pft.prebuilt()
        pft.CALLS.clear()

        again = zt.load_config(run.config_path).run()
        expected = ({"load_data": "CACHED", "trainer": "CACHED"}, [], run.output)
        assert expected == (keyed_states(again.id), pft.CALLS, again.output)

    def test_config_dir(self, tmp_path):
        """``config_dir=`` says where the rerun's config is written."""
        run = pft.scaled()

        again = zt.load_config(run.config_path).run(config_dir=tmp_path / "mine")
        assert again.config_path is not None
        expected = (tmp_path / "mine" / f"scaled-{again.id}.yaml", True)
        assert expected == (again.config_path, again.config_path.is_file())

    def test_python_tag_is_refused_and_never_executed(self, snapshot, tmp_path):
        """``!!python/object/apply:os.system`` is a ConfigError; the command never runs."""
        run = pft.training()
        marker = tmp_path / "marker"
        text = edit_text(
            run.config_path,
            "      threshold: 0.5\n",
            f"      threshold: !!python/object/apply:os.system ['touch {marker}']\n",
        )
        before = snapshot()

        location, what = refusal(run.config_path)
        expected = (f"{run.config_path}:{position(text, '!!python')}", True, False, before)
        actual = (
            location,
            what.startswith("the tag !!python/object/apply:os.system is refused"),
            marker.exists(),
            snapshot(),
        )
        assert expected == actual

    def test_unknown_arg_names_the_place_and_the_valid_args(self, snapshot):
        """An arg the step does not take: file:line:col, and the args it does take."""
        run = pft.training()
        text = edit_text(run.config_path, "      lr: 0.01\n", "      lr: 0.01\n      momentum: 1\n")
        before = snapshot()

        expected = (
            f"{run.config_path}:{position(text, 'momentum')}",
            "step 'trainer' has no arg 'momentum'; valid args are batch_size, lr, hidden_layers, "
            "epochs, so remove it or fix its name",
            before,
        )
        assert expected == (*refusal(run.config_path), snapshot())

    @pytest.mark.parametrize(
        ("old", "new", "needle", "words"),
        [
            ("batch_size: 2\n", "batch_size: two\n", "two", "its default 1 is an int"),
            ("epochs: 1\n", "epochs: 1.5\n", "1.5", "its default 1 is an int"),
            ("threshold: 0.5\n", "threshold: [1]\n", "[1]", "its default 0.5 is a float"),
            ("      lr: 0.01\n", "      lr: true\n", "true", "its default 0.01 is a float"),
            ("scale: 1.0\n", "scale: '1.0'\n", "'1.0'", "write a float without quotes"),
        ],
    )
    def test_arg_type_contradicting_the_signature(self, snapshot, old, new, needle, words):
        """A value whose type the step's default does not allow is refused at its position."""
        run = pft.training()
        text = edit_text(run.config_path, old, new)
        before = snapshot()

        location, what = refusal(run.config_path)
        expected = (f"{run.config_path}:{position(text, needle)}", True, before)
        assert expected == (location, words in what, snapshot()), what

    @pytest.mark.parametrize(
        ("old", "new", "words"),
        [
            ("evaluate", "os.path.join", "'os.path.join' is in the standard library module 'os'"),
            ("evaluate", f"{MODULE}.not_a_step", "not a zentrack step"),
            ("evaluate", f"{MODULE}.no_such_step", "cannot be imported"),
            ("evaluate", "no_such_package.step", "outside the pipeline's package 'tests'"),
            ("training", "os.path.join", "'os.path.join' is in the standard library module 'os'"),
            ("training", f"{MODULE}.load_data", "not a pipeline"),
        ],
    )
    def test_source_that_is_not_a_step_or_pipeline(self, snapshot, old, new, words):
        """A source naming anything but a zentrack step (or pipeline) is refused; nothing runs."""
        run = pft.training()
        text = edit_text(run.config_path, f"source: {MODULE}.{old}\n", f"source: {new}\n")
        before = snapshot()

        location, what = refusal(run.config_path)
        section = "  evaluate:\n" if old == "evaluate" else "pipeline:\n"
        expected = (f"{run.config_path}:{position(text, new, after=section)}", True, before)
        assert expected == (location, words in what, snapshot()), what

    def test_step_key_not_matching_its_source(self, snapshot):
        """A misspelt step key is refused at the key, with the name to write."""
        run = pft.training()
        text = edit_text(run.config_path, "  trainer:\n", "  trainr:\n")
        before = snapshot()

        location, what = refusal(run.config_path)
        expected = (f"{run.config_path}:{position(text, 'trainr')}", True, before)
        actual = (
            location,
            "the step key 'trainr' does not match the name 'trainer'" in what,
            snapshot(),
        )
        assert expected == actual, what

    def test_step_key_the_pipeline_never_calls(self, snapshot):
        """A key for a call the run never made (``trainer#2``) is refused before running.

        Its args would silently not be used, so the rerun would not be the
        run the config describes.
        """
        run = pft.training()
        text = edit_text(run.config_path, "  trainer:\n", "  trainer#2:\n")
        before = snapshot()

        location, what = refusal(run.config_path)
        expected = (f"{run.config_path}:{position(text, 'trainer#2')}", True, True, before)
        actual = (
            location,
            what.startswith(f"the pipeline makes no step call keyed 'trainer#2': the run {run.id}"),
            "fix it to 'trainer'" in what,
            snapshot(),
        )
        assert expected == actual, what

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("run_id: ", "run_id: null\n  old_run_id: "),
            ("  args:\n    lr: 0.01\n", "  args:\n    lr: 0.02\n"),
        ],
        ids=["no_recorded_run", "pipeline_args_edited"],
    )
    def test_step_key_never_called_where_the_store_cannot_tell(self, old, new):
        """Without a recorded run with these pipeline args, an unused key fails the run after it.

        The config's run id is null (or its pipeline args differ from that
        run's), so which calls the pipeline makes is only known once it ran:
        the run is recorded FAILED with its config, and the ConfigError names
        the key's position.
        """
        run = pft.training()
        assert run.config_path is not None
        text = run.config_path.read_text(encoding="utf-8")
        assert old in text
        text = text.replace(old, new, 1).replace("  old_run_id: ", "  # old run id: ")
        text = text.replace("  trainer:\n", "  trainer#2:\n")
        run.config_path.write_text(text, encoding="utf-8")

        with pytest.raises(ConfigError) as info:
            zt.load_config(run.config_path).run()
        location, _, what = str(info.value).partition(": ")
        newest = zt.runs("training")[0]
        assert newest.config_path is not None
        expected: Any = (
            f"{run.config_path}:{position(text, 'trainer#2')}",
            f"the run {newest.id} made no step call keyed 'trainer#2'",
            ("FAILED", True),
            ["load_data", "trainer", "evaluate"],
        )
        actual = (
            location,
            what.partition(", so")[0],
            (newest.state, (newest.error or "").startswith("ConfigError: ")),
            list(zt.load_config(newest.config_path).steps),
        )
        assert expected == actual, what

    def test_unknown_pipeline_arg(self, snapshot):
        """An arg the pipeline function does not take is refused."""
        run = pft.scaled()
        text = edit_text(run.config_path, "    factor: 1.0\n", "    factr: 1.0\n")
        before = snapshot()

        expected = (
            f"{run.config_path}:{position(text, 'factr')}",
            "the pipeline has no arg 'factr'; valid args are n, factor, so remove it or fix "
            "its name",
            before,
        )
        assert expected == (*refusal(run.config_path), snapshot())

    def test_required_pipeline_arg_the_config_lacks(self, snapshot):
        """A pipeline argument the config cannot hold (a dataset) is a ConfigError naming it.

        Not a bare ``TypeError: missing a required argument``: the message names
        the file and says which argument is missing, and nothing runs.
        """
        run = pft.on_dataset(pft.Dataset([1.0, 2.0]))
        assert run.config_path is not None
        text = run.config_path.read_text(encoding="utf-8")
        before = snapshot()

        location, what = refusal(run.config_path)
        expected = (f"{run.config_path}:{position(text, 'args:')}", True, before)
        actual = (location, what.startswith("the pipeline needs the arg 'dataset',"), snapshot())
        assert expected == actual, what

    def test_yaml_syntax_error(self, snapshot):
        """Broken YAML is a ConfigError naming the file and line; nothing runs."""
        run = pft.training()
        text = edit_text(run.config_path, "      threshold: 0.5\n", "      threshold: [0.5\n")
        before = snapshot()

        location, what = refusal(run.config_path)
        path, line, _ = location.rsplit(":", 2)
        broken = int(position(text, "[0.5").split(":")[0])
        expected = (str(run.config_path), True, True, before)
        actual = (path, int(line) >= broken, what.startswith("invalid YAML"), snapshot())
        assert expected == actual, what

    def test_missing_file(self, snapshot, tmp_path):
        """A config path that does not exist is a ConfigError naming it."""
        pft.training()
        missing = tmp_path / "nope.yaml"
        before = snapshot()

        location, what = refusal(missing)
        expected = (f"{missing}:1:1", True, before)
        assert expected == (location, what.startswith("no such config file"), snapshot())

    def test_every_problem_is_reported_and_nothing_runs(self, snapshot):
        """Problems in different steps are reported together, still before anything runs."""
        run = pft.training()
        edit_text(run.config_path, "batch_size: 2\n", "batch_size: two\n")
        text = edit_text(run.config_path, "threshold: 0.5\n", "threshld: 0.5\n")
        before = snapshot()

        with pytest.raises(ConfigError) as info:
            zt.load_config(run.config_path).run()
        expected = (
            [
                f"{run.config_path}:{position(text, 'two')}",
                f"{run.config_path}:{position(text, 'threshld')}",
            ],
            before,
        )
        actual = ([line.partition(": ")[0] for line in str(info.value).splitlines()], snapshot())
        assert expected == actual


class TestConfigPlan:
    """``Config.plan``: which steps a run of the config would serve from the cache."""

    def test_unedited_config_hits_everywhere(self, snapshot):
        """A config as its run wrote it: every step would be a cache hit; nothing runs."""
        run = pft.training()
        before = snapshot()

        plan = zt.load_config(run.config_path).plan()
        expected = (
            [("load_data", True, []), ("trainer", True, []), ("evaluate", True, [])],
            [],
            before,
        )
        actual = ([(s.key, s.hit, s.reasons) for s in plan.steps], plan.misses, snapshot())
        assert expected == actual

    def test_edited_arg_misses_with_its_reason_and_downstream_misses(self, snapshot):
        """The edited step misses ("param lr changed"), and so does the step using its output."""
        run = pft.training()
        cfg = zt.load_config(run.config_path)
        cfg.steps["trainer"].args["lr"] = 0.02
        before = snapshot()

        plan = cfg.plan()
        new_trainer = plan.steps[1].fingerprint
        upstream = f"input model now comes from another upstream call (fp:{new_trainer[:12]}…)"
        expected = (
            [
                ("load_data", True, []),
                ("trainer", False, ["param lr changed: 0.01 -> 0.02"]),
                ("evaluate", False, [upstream]),
            ],
            ["trainer", "evaluate"],
            before,
        )
        actual = ([(s.key, s.hit, s.reasons) for s in plan.steps], plan.misses, snapshot())
        assert expected == actual

    def test_plan_text(self):
        """``str(plan)``: one line per step, its reasons indented below."""
        run = pft.training()
        cfg = zt.load_config(run.config_path)
        cfg.steps["evaluate"].args["threshold"] = 0.25

        expected = [
            ["load_data", "hit"],
            ["trainer", "hit"],
            ["evaluate", "miss"],
            ["-", "param", "threshold", "changed:", "0.5", "->", "0.25"],
        ]
        assert expected == [line.split() for line in str(cfg.plan()).splitlines()]

    def test_plan_predicts_the_run(self):
        """The planned fingerprints are the run's; hits come back CACHED and misses run."""
        run = pft.training()
        cfg = zt.load_config(run.config_path)
        cfg.steps["load_data"].args["n"] = 5

        plan = cfg.plan()
        again = cfg.run()
        expected = (
            [(s.key, s.fingerprint, "CACHED" if s.hit else "COMPLETE") for s in plan.steps],
            ["load_data", "trainer", "evaluate"],
        )
        records = zt.get_run(again.id).keyed_steps()
        actual = ([(k, r.fingerprint, r.state) for k, r in records.items()], plan.misses)
        assert expected == actual

    def test_config_without_a_run_plans_steps_without_inputs(self, snapshot):
        """Without ``run_id`` a step with no inputs is planned from its args; others unknown.

        ``load_data`` takes only params, so its fingerprint follows from the
        config; ``trainer`` (a class step, called with data) and ``evaluate``
        (whose ``model`` comes from the trainer) need a recorded call.
        """
        run = pft.training()
        recorded = zt.get_run(run.id).keyed_steps()["load_data"].fingerprint
        assert run.config_path is not None
        text = edit_text(run.config_path, f"  run_id: {run.id}\n", "")
        run.config_path.write_text(text.replace("      scale: 1.0\n", ""), encoding="utf-8")
        cfg = zt.load_config(run.config_path)
        before = snapshot()

        plan = cfg.plan()
        expected = (
            [
                ("load_data", True, recorded, []),
                (
                    "trainer",
                    None,
                    None,
                    [
                        "a class step's inputs come with its entry call, which no recorded run "
                        "shows: cannot tell"
                    ],
                ),
                (
                    "evaluate",
                    None,
                    None,
                    [
                        "input 'model' is not in the config (data from another step or the "
                        "pipeline's code) and no recorded run shows it: cannot tell"
                    ],
                ),
            ],
            before,
        )
        actual = ([(s.key, s.hit, s.fingerprint, s.reasons) for s in plan.steps], snapshot())
        assert expected == actual

    def test_config_without_a_run_predicts_a_miss_and_its_fingerprint(self):
        """An edited arg of a step without inputs misses; the run gets the planned fingerprint."""
        run = pft.training()
        assert run.config_path is not None
        edit_text(run.config_path, f"  run_id: {run.id}\n", "")
        cfg = zt.load_config(run.config_path)
        cfg.set("load_data.n", 5)

        planned = cfg.plan().steps[0]
        again = cfg.run()
        expected = (
            ("load_data", False),
            ["no call with these params is in the cache (and no recorded run to compare with)"],
            (planned.fingerprint, "COMPLETE"),
        )
        record = zt.get_run(again.id).keyed_steps()["load_data"]
        actual = ((planned.key, planned.hit), planned.reasons, (record.fingerprint, record.state))
        assert expected == actual

    def test_bad_config_is_refused_before_planning(self, snapshot):
        """Planning validates the config as running does; nothing runs."""
        run = pft.training()
        edit_text(run.config_path, "      lr: 0.01\n", "      lr: fast\n")
        before = snapshot()

        with pytest.raises(ConfigError, match="arg 'lr' of step 'trainer'"):
            zt.load_config(run.config_path).plan()
        expected = before
        assert expected == snapshot()
