"""Tests for zentrack._runs.explain: ``zt.explain()`` and ``zentrack why`` say why a call misses.

Nothing is run by an explanation: each test also checks the step bodies'
counter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import zentrack as zt
from tests.cache_steps import RUNS, load, prep, run_step_process, total, zentrack_cli

MISSING_OUTPUT = (
    "an execution with this fingerprint exists, but its cached output is missing or corrupt "
    "(or was not cacheable): the step will run again"
)


def output_folder(step: zt.Step, *args, **kwargs) -> Path:
    """Where the cached output of ``step(*args, **kwargs)`` lives (from its record)."""
    records = zt.lookup(zt.fingerprint(step, *args, **kwargs))
    return Path(next(r.output_uri for r in records if r.output_uri))


class TestExplain:
    """``zt.explain(step, *args, **kwargs)``."""

    def test_hit(self):
        """A call made before says hit, names the original execution, and runs nothing."""
        prep(n=3)
        zt.flush()
        (original,) = zt.find(step="prep")
        explanation = zt.explain(prep, n=3)
        expected = (True, [], original.execution_id, zt.fingerprint(prep, n=3), True, ["prep"])
        actual = (
            explanation.hit,
            explanation.reasons,
            explanation.nearest.execution_id,
            explanation.fingerprint,
            "cache hit" in str(explanation),
            RUNS,
        )
        assert expected == actual

    def test_hit_after_a_hit_names_the_original(self):
        """With COMPLETE and CACHED executions, the hit names the COMPLETE one."""
        prep(n=3)
        prep(n=3)
        original, _ = zt.lookup(zt.fingerprint(prep, n=3))
        explanation = zt.explain(prep, n=3)
        expected = (True, "COMPLETE", original.execution_id)
        actual = (explanation.hit, explanation.nearest.state, explanation.nearest.execution_id)
        assert expected == actual

    def test_param_change_names_the_param_with_old_and_new_values(self):
        """A changed parameter is named with its recorded and its new value."""
        prep(n=3)
        explanation = zt.explain(prep, n=4)
        expected = (False, ["param n changed: 3 -> 4"], ["prep"])
        actual = (explanation.hit, explanation.reasons, RUNS)
        assert expected == actual

    def test_param_type_change_is_a_change(self):
        """1.0 -> 1 is reported as a change: the types differ."""
        prep(n=3, scale=1.0)
        explanation = zt.explain(prep, n=3, scale=1)
        expected = (False, ["param scale changed: 1.0 -> 1"])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_str_lists_the_reasons(self):
        """str() says miss and lists each reason on its own line."""
        prep(n=3, scale=1.0)
        text = str(zt.explain(prep, n=4, scale=2.0))
        expected = [
            "cache miss",
            "  - param n changed: 3 -> 4",
            "  - param scale changed: 1.0 -> 2.0",
        ]
        actual = [text.splitlines()[0].rsplit(": ", 1)[1], *text.splitlines()[1:]]
        assert expected == actual

    def test_input_change_names_the_input(self):
        """Changed input data is named, with short digests of the old and new content."""
        total(np.array([1.0, 2.0]))
        explanation = zt.explain(total, np.array([1.0, 3.0]))
        expected = (False, ["input data changed"], True)
        actual = (
            explanation.hit,
            [reason.split(" (")[0] for reason in explanation.reasons],
            " -> " in explanation.reasons[0],
        )
        assert expected == actual

    def test_input_from_another_upstream_call(self):
        """Data from a different upstream call is named with that call's fingerprint."""
        total(load(n=3))
        other = load(n=4)
        explanation = zt.explain(total, other)
        fingerprint = zt.fingerprint(load, n=4)
        expected = [f"input data now comes from another upstream call (fp:{fingerprint[:12]}…)"]
        assert expected == explanation.reasons

    def test_version_change(self):
        """A step recorded under version "1" and now at "2" says so."""

        @zt.step(name="fit", version="1")
        def old(lr=0.1):
            return lr

        @zt.step(name="fit", version="2")
        def new(lr=0.1):
            return lr

        old()
        explanation = zt.explain(new)
        expected = (False, ["version changed: '1' -> '2'"])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_own_code_change(self):
        """A step whose body differs from the recorded one says its own code changed."""

        @zt.step(name="fit")
        def old(lr=0.1):
            return lr

        @zt.step(name="fit")
        def new(lr=0.1):
            return lr * 2

        old()
        explanation = zt.explain(new)
        expected = (False, ["the step's own code changed"])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_helper_change_names_the_helper(self, run_python, store_path, tmp_path):
        """A helper edited in another user module is named: the code of helpers.scale changed."""
        code = tmp_path / "code"
        code.mkdir()
        (code / "stepmod.py").write_text(
            "import zentrack as zt\n"
            "from helpers import scale\n\n\n"
            "@zt.step\n"
            "def work(n=2):\n"
            "    return scale(n)\n"
        )
        (code / "helpers.py").write_text("def scale(n):\n    return n * 2\n")
        run_step_process(run_python, store_path, "stepmod:work", path=code)
        same = run_step_process(run_python, store_path, "stepmod:work", path=code, mode="explain")
        (code / "helpers.py").write_text("def scale(n):\n    return n * 3\n")
        changed = run_step_process(
            run_python, store_path, "stepmod:work", path=code, mode="explain"
        )
        expected = (
            {"hit": True, "reasons": []},
            {"hit": False, "reasons": ["the code of helpers.scale changed"]},
        )
        actual = (same, changed)
        assert expected == actual

    def test_missing_artifact(self):
        """A recorded call whose cached output was deleted says the output is missing."""
        prep(n=3)
        shutil.rmtree(output_folder(prep, n=3))
        explanation = zt.explain(prep, n=3)
        expected = (False, [MISSING_OUTPUT])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_corrupt_artifact(self):
        """A recorded call whose cached output was altered says the output is corrupt."""
        prep(n=3)
        data = output_folder(prep, n=3) / "output.json"
        data.write_text(data.read_text().replace("2.0", "9.0"))
        explanation = zt.explain(prep, n=3)
        expected = (False, [MISSING_OUTPUT])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_no_previous_execution(self):
        """A step never called before says it has no completed execution."""
        explanation = zt.explain(prep, n=3)
        expected = (False, ["step 'prep' has no completed execution yet"], None, [])
        actual = (explanation.hit, explanation.reasons, explanation.nearest, RUNS)
        assert expected == actual

    def test_only_failed_executions(self):
        """A call that failed before says so: failures are never served."""

        @zt.step
        def flaky(n=1):
            raise RuntimeError("down")

        with pytest.raises(RuntimeError):
            flaky()
        explanation = zt.explain(flaky)
        expected = (False, ["the earlier executions with this fingerprint failed"])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_cache_off_for_the_step(self):
        """A @step(cache=False) call is never a hit, and the reason says so."""

        @zt.step(cache=False)
        def fresh(n=1):
            return n

        fresh()
        explanation = zt.explain(fresh)
        expected = (False, ["caching is off for this step"])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_cache_off_by_init(self, store_path):
        """With init(cache=False) the reason says caching is off for the whole tracker."""
        prep(n=3)
        zt.init(store_path, cache=False)
        explanation = zt.explain(prep, n=3)
        expected = (False, ["caching is off (init/env)"])
        actual = (explanation.hit, explanation.reasons)
        assert expected == actual

    def test_class_step_instance(self):
        """explain() takes a step-class instance and its entry point's arguments."""

        @zt.step
        class Scaler:
            def __init__(self, factor=2):
                self.factor = factor

            def run(self, data):
                return bytes(b * self.factor for b in data)

        Scaler(factor=2).run(b"\x01")
        expected = ((True, []), (False, ["param factor changed: 2 -> 3"]))
        hit = zt.explain(Scaler(factor=2), b"\x01")
        miss = zt.explain(Scaler(factor=3), b"\x01")
        actual = ((hit.hit, hit.reasons), (miss.hit, miss.reasons))
        assert expected == actual


class TestWhyCommand:
    """``zentrack why module:step k=v``."""

    @pytest.mark.parametrize("args", [["n=3"], ["n=4"], ["n=3", "scale=2.0"]], ids=repr)
    def test_prints_what_explain_says(self, store_path, args):
        """`zentrack why` prints str(zt.explain(...)) for the same call."""
        prep(n=3)
        zt.flush()
        done = zentrack_cli(store_path, "why", "tests.cache_steps:prep", *args)
        kwargs = {k: json.loads(v) for k, v in (a.split("=") for a in args)}
        expected = (0, str(zt.explain(prep, **kwargs)) + "\n", "")
        actual = (done.returncode, done.stdout, done.stderr)
        assert expected == actual

    def test_no_previous_execution(self, store_path):
        """On an empty store the command says the step has no completed execution."""
        zt.find()  # the first read creates the (empty) store; `why` refuses a missing one
        done = zentrack_cli(store_path, "why", "tests.cache_steps:prep", "n=3")
        expected = (0, True)
        actual = (done.returncode, "has no completed execution yet" in done.stdout)
        assert expected == actual

    def test_json(self, store_path):
        """--json prints hit, reasons and fingerprint."""
        prep(n=3)
        zt.flush()
        done = zentrack_cli(store_path, "why", "--json", "tests.cache_steps:prep", "n=5")
        expected = {
            "hit": False,
            "reasons": ["param n changed: 3 -> 5"],
            "fingerprint": zt.fingerprint(prep, n=5),
        }
        assert expected == json.loads(done.stdout)
