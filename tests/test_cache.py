"""Tests for zentrack._cache.outputs and the cache check of a step: when a call is served.

Every case checks two things: whether the step body ran (a counter the body
appends to, or a file it writes in a subprocess) and what the store recorded
(``COMPLETE`` for a run, ``CACHED`` for a hit), read back after ``flush()``.
"""

from __future__ import annotations

import importlib
import json
import logging
import pickle
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import zentrack as zt
from tests.cache_steps import (
    RUNNER,
    RUNS,
    UNPICKLED,
    Point,
    Trap,
    make_point,
    prep,
    run_step_process,
    runs_in,
    states,
    zentrack_cli,
    zentrack_warnings,
)
from zentrack.exceptions import UnhashableInputError


def output_folder(step: zt.Step, *args, **kwargs) -> Path:
    """Where the cached output of ``step(*args, **kwargs)`` lives (from its record)."""
    records = zt.lookup(zt.fingerprint(step, *args, **kwargs))
    return Path(next(r.output_uri for r in records if r.output_uri))




def work_module(
    *,
    body: str = "return n * 2",
    doc: str = "Double n.",
    comment: str = "",
    header: tuple[str, ...] = (),
    options: str = "",
) -> str:
    """The source of a user module ``stepmod`` with one step ``work``."""
    lines = [
        "import zentrack as zt",
        "from tests.cache_steps import ran",
        *header,
        "",
        "",
        f"@zt.step{options}",
        "def work(n=2):",
        f'    """{doc}"""',
        '    ran("work")',
        *([f"    # {comment}"] if comment else []),
        f"    {body}",
        "",
    ]
    return "\n".join(lines)


def _scale(factor: int) -> str:
    return f"def scale(n):\n    return n * {factor}\n"


_MISS_MISS = ([4, 4], ["work", "work"], ["COMPLETE", "COMPLETE"])
_MISS_HIT = ([4, 4], ["work"], ["COMPLETE", "CACHED"])
#: Successive versions of the user's files (a dict: ``work_module`` options) and
#: (results, the calls that ran, the states recorded).
CODE_CHANGES = [
    pytest.param(
        [{"stepmod.py": {"body": "return n * 2"}}, {"stepmod.py": {"body": "return n * 3"}}],
        ([4, 6], ["work", "work"], ["COMPLETE", "COMPLETE"]),
        id="body-change-misses",
    ),
    pytest.param(
        [{"stepmod.py": {}}, {"stepmod.py": {"comment": "doubling is what we need here"}}],
        _MISS_HIT,
        id="comment-only-change-hits",
    ),
    pytest.param(
        [{"stepmod.py": {"doc": "Double n."}},
         {"stepmod.py": {"doc": "Return twice n, for the tests."}}],
        _MISS_HIT,
        id="docstring-only-change-hits",
    ),
    pytest.param(
        [
            {"helpers.py": _scale(2),
             "stepmod.py": {"header": ("from helpers import scale",), "body": "return scale(n)"}},
            {"helpers.py": _scale(2)},
            {"helpers.py": _scale(5)},
        ],
        ([4, 4, 10], ["work", "work"], ["COMPLETE", "CACHED", "COMPLETE"]),
        id="helper-change-in-another-module-misses",
    ),
    pytest.param(
        [{"stepmod.py": {"header": ("FACTOR = 2",), "body": "return n * FACTOR"}},
         {"stepmod.py": {"header": ("FACTOR = 3",), "body": "return n * FACTOR"}}],
        ([4, 6], ["work", "work"], ["COMPLETE", "COMPLETE"]),
        id="module-constant-change-misses",
    ),
    pytest.param(
        [{"stepmod.py": {"options": '(version="1")'}},
         {"stepmod.py": {"options": '(version="2")'}}],
        _MISS_MISS,
        id="version-bump-misses",
    ),
    pytest.param(
        [{"stepmod.py": {"options": '(version="1")', "body": "return n * 2"}},
         {"stepmod.py": {"options": '(version="1")', "body": "return n + n"}}],
        _MISS_HIT,
        id="kept-version-with-body-change-hits",
    ),
]


class TestStep:
    """Caching of ``@step`` calls: hits and misses."""

    # -- parameters ---------------------------------------------------------

    def test_same_call_twice_hits(self):
        """The second identical call is served: the body runs once, then CACHED."""
        calls = []

        @zt.step
        def double(x=2):
            calls.append(x)
            return {"value": x * 2}

        first, second = double(x=3), double(x=3)
        expected = ({"value": 6}, {"value": 6}, [3], ["COMPLETE", "CACHED"])
        actual = (first, second, calls, states("double"))
        assert expected == actual

    def test_each_param_change_misses(self):
        """Changing any one parameter runs the body again; repeating each call hits."""
        calls = []

        @zt.step
        def fit(lr=0.1, epochs=1, tag="a"):
            calls.append((lr, epochs, tag))
            return [lr, epochs, tag]

        variants = [{}, {"lr": 0.2}, {"epochs": 2}, {"tag": "b"}, {"lr": 0.2, "epochs": 2}]
        for kwargs in variants:
            fit(**kwargs)
        for kwargs in variants:
            fit(**kwargs)
        expected = (
            [(0.1, 1, "a"), (0.2, 1, "a"), (0.1, 2, "a"), (0.1, 1, "b"), (0.2, 2, "a")],
            ["COMPLETE"] * 5 + ["CACHED"] * 5,
        )
        actual = (calls, states("fit"))
        assert expected == actual

    def test_one_float_one_and_true_are_three_entries(self):
        """1, 1.0 and True are different parameters: three runs, and each hit keeps its type."""
        calls = []

        @zt.step
        def echo(value=0):
            calls.append(value)
            return value

        first = [echo(value=v) for v in (1, 1.0, True)]
        again = [echo(value=v) for v in (1, 1.0, True)]
        expected = (
            [(int, 1), (float, 1.0), (bool, True)],
            [(int, 1), (float, 1.0), (bool, True)],
            3,
            ["COMPLETE"] * 3 + ["CACHED"] * 3,
        )
        actual = (
            [(type(v), v) for v in first],
            [(type(v), v) for v in again],
            len(calls),
            states("echo"),
        )
        assert expected == actual

    def test_defaults_and_spelling_do_not_matter(self):
        """f(), f(2) and f(x=2) with default x=2 are the same call: one run, two hits."""
        calls = []

        @zt.step
        def square(x=2):
            calls.append(x)
            return x * x

        results = [square(), square(2), square(x=2)]
        expected = ([4, 4, 4], [2], ["COMPLETE", "CACHED", "CACHED"])
        actual = (results, calls, states("square"))
        assert expected == actual

    def test_dict_param_order_does_not_matter(self):
        """Dict parameters equal up to key order are the same call (a hit)."""
        calls = []

        @zt.step
        def configure(cfg=None):
            calls.append(cfg)
            return sorted(cfg)

        configure(cfg={"a": 1, "b": [1, 2]})
        configure(cfg={"b": [1, 2], "a": 1})
        expected = (1, ["COMPLETE", "CACHED"])
        actual = (len(calls), states("configure"))
        assert expected == actual

    def test_nested_number_types_are_different_entries(self):
        """[1], [1.0] and [True] inside a container parameter are three different calls."""
        calls = []

        @zt.step
        def layers(sizes=None):
            calls.append(sizes)
            return sizes

        for sizes in ([1], [1.0], [True], {"n": 1}, {"n": 1.0}):
            layers(sizes=sizes)
        expected = (
            [[1], [1.0], [True], {"n": 1}, {"n": 1.0}],
            [int, float, bool],
            ["COMPLETE"] * 5,
        )
        actual = (calls, [type(c[0]) for c in calls[:3]], states("layers"))
        assert expected == actual

    def test_failed_call_is_not_cached(self):
        """A call that raised is recorded FAILED and runs again next time."""
        calls = []

        @zt.step
        def flaky(n=1):
            calls.append(n)
            if len(calls) == 1:
                raise RuntimeError("first try fails")
            return n

        with pytest.raises(RuntimeError):
            flaky()
        results = [flaky(), flaky()]
        expected = ([1, 1], [1, 1], ["FAILED", "COMPLETE", "CACHED"])
        actual = (results, calls, states("flaky"))
        assert expected == actual

    def test_mutating_a_result_does_not_change_the_cache(self):
        """The returned and the served values are the caller's own: editing them changes nothing."""

        @zt.step
        def table(n=2):
            return {"rows": list(range(n))}

        first = table()
        first["rows"].append(99)
        second = table()
        second["rows"].append(98)
        third = table()
        expected = ({"rows": [0, 1]}, ["COMPLETE", "CACHED", "CACHED"])
        actual = (third, states("table"))
        assert expected == actual

    def test_hit_carries_the_original_metrics(self):
        """A CACHED record repeats the metrics the original call logged."""

        @zt.step
        def score(n=1):
            zt.log_metrics(accuracy=0.75, n=n)
            return n

        score()
        score()
        zt.flush()
        metrics = {"accuracy": 0.75, "n": 1}
        expected = [("COMPLETE", metrics), ("CACHED", metrics)]
        actual = [(r.state, r.metrics) for r in zt.find(step="score")]
        assert expected == actual

    def test_class_step_constructor_params(self):
        """A class step hits for equal constructor params and misses when one changes."""
        calls = []

        @zt.step
        class Scaler:
            def __init__(self, factor=2):
                self.factor = factor

            def run(self, data):
                calls.append(self.factor)
                return bytes(b * self.factor for b in data)

        results = [
            Scaler().run(b"\x01\x02"),
            Scaler(factor=2).run(b"\x01\x02"),
            Scaler(factor=3).run(b"\x01\x02"),
        ]
        expected = (
            [b"\x02\x04", b"\x02\x04", b"\x03\x06"],
            [2, 3],
            ["COMPLETE", "CACHED", "COMPLETE"],
        )
        actual = (results, calls, states("Scaler"))
        assert expected == actual

    # -- inputs ---------------------------------------------------------------

    def test_bytes_input_change_misses_and_same_content_hits(self):
        """A bytes input is hashed by content: other bytes run, equal bytes (a new object) hit."""
        calls = []

        @zt.step
        def size(blob):
            calls.append(blob)
            return len(blob)

        size(b"abc")
        size(b"abd")
        size(bytes(bytearray(b"abc")))
        expected = ([b"abc", b"abd"], ["COMPLETE", "COMPLETE", "CACHED"])
        actual = (calls, states("size"))
        assert expected == actual

    def test_numpy_input_content_change_misses_and_same_content_hits(self):
        """An array input is hashed by content, dtype and shape; an equal copy hits."""
        calls = []

        @zt.step
        def mean(values):
            calls.append(values.tolist())
            return float(values.mean())

        base = np.arange(6, dtype=np.float64)
        mean(base)
        mean(base.copy())  # same content: hit
        changed = base.copy()
        changed[3] = 30.0
        mean(changed)  # content changed
        mean(base.astype(np.float32))  # dtype changed
        mean(base.reshape(2, 3))  # shape changed
        expected = (
            [
                [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                [0.0, 1.0, 2.0, 30.0, 4.0, 5.0],
                [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]],
            ],
            ["COMPLETE", "CACHED", "COMPLETE", "COMPLETE", "COMPLETE"],
        )
        actual = (calls, states("mean"))
        assert expected == actual

    # -- unhashable inputs ------------------------------------------------------

    def test_unhashable_lock_is_a_clear_error(self):
        """A lock passed as an input cannot be fingerprinted: the error names it and ignore=."""
        calls = []

        @zt.step
        def guarded(lock, n=1):
            calls.append(n)
            return n

        with pytest.raises(UnhashableInputError) as info:
            guarded(threading.Lock())
        message = str(info.value)
        expected = (True, True, True, [])
        actual = ("'lock'" in message, "@step(ignore=['lock'])" in message, "guarded" in message,
                  calls)
        assert expected == actual

    def test_unhashable_open_file_is_a_clear_error(self, tmp_path):
        """An open file object as an input is an UnhashableInputError naming the argument."""

        @zt.step
        def read_all(handle):
            return handle.read()

        path = tmp_path / "data.txt"
        path.write_text("hello")
        with path.open() as handle, pytest.raises(UnhashableInputError) as info:
            read_all(handle)
        message = str(info.value)
        expected = (True, True, True)
        actual = (isinstance(info.value, TypeError), "'handle'" in message,
                  "ignore=['handle']" in message)
        assert expected == actual

    def test_ignore_makes_an_unhashable_input_work(self):
        """@step(ignore=["lock"]) leaves the lock out of the fingerprint: runs once, then hits."""
        calls = []

        @zt.step(ignore=["lock"])
        def guarded(lock, n=1):
            with lock:
                calls.append(n)
            return n * 10

        results = [guarded(threading.Lock(), n=1), guarded(threading.Lock(), n=1)]
        expected = ([10, 10], [1], ["COMPLETE", "CACHED"])
        actual = (results, calls, states("guarded"))
        assert expected == actual

    # -- a damaged cache --------------------------------------------------------

    @pytest.mark.parametrize(
        ("damage", "warning"),
        [
            pytest.param(
                lambda f: (f / "output.json").write_bytes(
                    (f / "output.json").read_bytes().replace(b"2", b"7")
                ),
                "corrupt",
                id="edited-output",
            ),
            pytest.param(lambda f: (f / "output.json").unlink(), "", id="deleted-output"),
            pytest.param(shutil.rmtree, None, id="deleted-entry-folder"),
            pytest.param(lambda f: (f / "meta.json").write_text("{not json"), "", id="bad-meta"),
        ],
    )
    def test_damaged_entry_misses_and_is_replaced(self, caplog, damage, warning):
        """A damaged cache entry is a miss (with a warning unless it is simply gone), then new.

        ``warning``: a phrase the one warning contains; None: no warning.
        """
        calls = []

        @zt.step
        def table(n=3):
            calls.append(n)
            return {"rows": list(range(n))}

        table()
        damage(output_folder(table))
        with caplog.at_level(logging.INFO, logger="zentrack"):
            rerun = table()
        warnings = zentrack_warnings(caplog.records)
        third = table()
        expected = (
            [{"rows": [0, 1, 2]}] * 2,
            [3, 3],
            0 if warning is None else 1,
            True,
            ["COMPLETE", "COMPLETE", "CACHED"],
        )
        actual = (
            [rerun, third],
            calls,
            len(warnings),
            warning is None or warning in warnings[0],
            states("table"),
        )
        assert expected == actual, warnings

    def test_same_size_corruption_misses(self):
        """A flipped byte that keeps the file size is still caught by the sha256."""
        calls = []

        @zt.step
        def blob(n=4):
            calls.append(n)
            return bytes(range(n))

        blob()
        data = output_folder(blob) / "output.bin"
        raw = bytearray(data.read_bytes())
        raw[0] ^= 0xFF
        data.write_bytes(bytes(raw))
        expected = (bytes(range(4)), [4, 4], ["COMPLETE", "COMPLETE"])
        actual = (blob(), calls, states("blob"))
        assert expected == actual

    def test_tampered_pickle_is_never_unpickled(self, caplog):
        """A pickle whose bytes changed is rejected before loading: its payload never runs."""
        make_point(x=1.0, y=2.0)
        data = output_folder(make_point, x=1.0, y=2.0) / "output.pkl"
        data.write_bytes(pickle.dumps(Trap()))
        with caplog.at_level(logging.INFO, logger="zentrack"):
            result = make_point(x=1.0, y=2.0)
        warnings = zentrack_warnings(caplog.records)
        expected = (Point(1.0, 2.0), [], ["make_point", "make_point"], 1)
        actual = (result, UNPICKLED, RUNS, len(warnings))
        assert expected == actual

    def test_entry_meta_names_the_call(self):
        """Each entry's meta.json names its step, fingerprint and the data's sha256."""
        prep(n=2)
        folder = output_folder(prep, n=2)
        meta = json.loads((folder / "meta.json").read_text())
        fingerprint = zt.fingerprint(prep, n=2)
        expected = ("prep", fingerprint, "json", 64, fingerprint)
        actual = (meta["step"], meta["fingerprint"], meta["materializer"], len(meta["sha256"]),
                  folder.name)
        assert expected == actual

    # -- code changes, each variant in a fresh interpreter ---------------------

    def _run_variants(
        self, run_python, store_path, tmp_path, variants: list[dict[str, str]]
    ) -> tuple[list[object], list[str], list[str]]:
        """Write each variant of the user's modules, run ``work()`` in a subprocess."""
        code = tmp_path / "code"
        code.mkdir(exist_ok=True)
        runs_file = tmp_path / "runs.txt"
        results = []
        for files in variants:
            for name, text in files.items():
                (code / name).write_text(text)
            results.append(
                run_step_process(
                    run_python, store_path, "stepmod:work", path=code, runs_file=runs_file
                )
            )
        return results, runs_in(runs_file), states("work")

    def test_fresh_process_hits_the_persisted_cache(self, run_python, store_path, tmp_path):
        """A call made in one interpreter is served in the next one and in this one."""
        runs_file = tmp_path / "runs.txt"
        results = [
            run_step_process(run_python, store_path, "tests.cache_steps:prep", {"n": 4},
                             runs_file=runs_file)
            for _ in range(2)
        ]
        here = prep(n=4)
        expected = ([[0.0, 1.0, 2.0, 3.0]] * 2, [0.0, 1.0, 2.0, 3.0], ["prep"], [],
                    ["COMPLETE", "CACHED", "CACHED"])
        actual = (results, here, runs_in(runs_file), RUNS, states("prep"))
        assert expected == actual

    @pytest.mark.parametrize(("variants", "expected"), CODE_CHANGES)
    def test_code_change_between_processes(
        self, run_python, store_path, tmp_path, variants, expected
    ):
        """Each variant of the user's files runs in a fresh interpreter: hit or miss as listed."""
        files = [
            {name: work_module(**text) if isinstance(text, dict) else text
             for name, text in variant.items()}
            for variant in variants
        ]
        assert expected == self._run_variants(run_python, store_path, tmp_path, files)

    # -- code changes inside one long-lived process (a notebook, autoreload) ----

    @pytest.fixture
    def user_modules(self, tmp_path, monkeypatch):
        """A folder on sys.path for modules written by the test; they are forgotten after."""
        folder = tmp_path / "user_modules"
        folder.mkdir()
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.setattr(sys, "dont_write_bytecode", True)
        before = set(sys.modules)
        yield folder
        for name in set(sys.modules) - before:
            sys.modules.pop(name, None)

    def test_helper_reloaded_in_process_misses(self, user_modules):
        """Reloading an edited helper module (what %autoreload does) makes the step run again."""
        suffix = user_modules.parent.name.replace("-", "_")
        helpers_name, step_name = f"helpers_{suffix}", f"stepmod_{suffix}"
        (user_modules / f"{helpers_name}.py").write_text("def scale(n):\n    return n * 2\n")
        (user_modules / f"{step_name}.py").write_text(
            "import zentrack as zt\n"
            f"import {helpers_name}\n\n\n"
            "@zt.step\n"
            "def reloaded(n=2):\n"
            f"    return {helpers_name}.scale(n)\n"
        )
        importlib.invalidate_caches()
        helpers = importlib.import_module(helpers_name)
        stepmod = importlib.import_module(step_name)
        first = stepmod.reloaded()
        (user_modules / f"{helpers_name}.py").write_text("def scale(n):\n    return n * 300\n")
        importlib.reload(helpers)
        second = stepmod.reloaded()
        expected = (4, 600, ["COMPLETE", "COMPLETE"])
        actual = (first, second, states("reloaded"))
        assert expected == actual

    def test_constant_rebound_in_process_misses(self, user_modules):
        """Rebinding a module constant the step reads (a notebook cell) makes the step run again."""
        name = "constmod_" + user_modules.parent.name.replace("-", "_")
        (user_modules / f"{name}.py").write_text(
            "import zentrack as zt\n\n"
            "FACTOR = 2\n\n\n"
            "@zt.step\n"
            "def rebound(n=2):\n"
            "    return n * FACTOR\n"
        )
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        first = module.rebound()
        module.FACTOR = 3
        second = module.rebound()
        expected = (4, 6, ["COMPLETE", "COMPLETE"])
        actual = (first, second, states("rebound"))
        assert expected == actual

    def test_constant_deleted_then_defined_again_is_followed(self, user_modules):
        """del FACTOR (the call fails), FACTOR = 3, FACTOR = 4: each value runs the step."""
        name = "delmod_" + user_modules.parent.name.replace("-", "_")
        (user_modules / f"{name}.py").write_text(
            "import zentrack as zt\n\nFACTOR = 2\n\n\n"
            "@zt.step\ndef scaled(n=2):\n    return n * FACTOR\n"
        )
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        results: list[object] = [module.scaled()]
        del module.FACTOR
        with pytest.raises(NameError):
            module.scaled()
        for factor in (3, 4, 3):
            module.FACTOR = factor
            results.append(module.scaled())
        expected = ([4, 6, 8, 6], ["COMPLETE", "FAILED", "COMPLETE", "COMPLETE", "CACHED"])
        assert expected == (results, states("scaled"))

    def test_threads_calling_while_a_constant_is_rebound_never_cache_a_wrong_output(
        self, user_modules
    ):
        """4 threads call while the main thread rebinds RATE: afterwards every value is right.

        Each value is bound once (a value bound again while a call runs, A-B-A,
        cannot be told from an unchanged one by identity checks).
        """
        name = "racemod_" + user_modules.parent.name.replace("-", "_")
        (user_modules / f"{name}.py").write_text(
            "import zentrack as zt\n\nRATE = 0\n\n\n"
            "@zt.step\ndef rated(n=10):\n    return n * RATE\n"
        )
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        stop = threading.Event()

        def call() -> None:
            while not stop.is_set():
                module.rated()

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            for i in range(400):
                module.RATE = i
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        wrong = {}
        for rate in range(400):
            module.RATE = rate
            if module.rated() != 10 * rate:
                wrong[rate] = module.rated()
        assert wrong == {}

    # -- turning the cache off --------------------------------------------------

    def test_cache_false_always_runs(self):
        """@step(cache=False) runs every call and records each as COMPLETE."""
        calls = []

        @zt.step(cache=False)
        def fresh(n=1):
            calls.append(n)
            return n

        results = [fresh(), fresh()]
        expected = ([1, 1], [1, 1], ["COMPLETE", "COMPLETE"])
        actual = (results, calls, states("fresh"))
        assert expected == actual

    # -- logging ----------------------------------------------------------------

    def test_one_info_line_per_hit_and_no_warnings(self, caplog):
        """Each hit logs one INFO line on the "zentrack" logger; the happy path warns nothing."""

        @zt.step
        def double(x=2):
            return x * 2

        with caplog.at_level(logging.INFO, logger="zentrack"):
            double(x=1)
            double(x=1)
            double(x=1)
            double(x=2)
            zt.flush()
        ours = [r for r in caplog.records if r.name == "zentrack"]
        expected = ([logging.INFO, logging.INFO], [True, True], [])
        actual = (
            [r.levelno for r in ours],
            ["cache hit" in r.getMessage() for r in ours],
            [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING],
        )
        assert expected == actual


class TestInit:
    """``zt.init(cache=...)`` and ``$ZENTRACK_CACHE``."""

    def test_cache_false_always_runs(self, store_path):
        """init(store, cache=False) turns hits off for every step."""
        zt.init(store_path, cache=False)
        calls = []

        @zt.step
        def double(x=2):
            calls.append(x)
            return x * 2

        results = [double(), double()]
        expected = ([4, 4], [2, 2], ["COMPLETE", "COMPLETE"])
        actual = (results, calls, states("double"))
        assert expected == actual

    def test_artifacts_folder_is_used(self, store_path, tmp_path):
        """init(artifacts=...) keeps the outputs there, and hits are served from there."""
        folder = tmp_path / "outputs"
        zt.init(store_path, artifacts=folder)
        prep(n=2)
        prep(n=2)
        zt.flush()
        records = zt.find(step="prep")
        expected = (["COMPLETE", "CACHED"], [True, True], ["prep"])
        actual = (
            [r.state for r in records],
            [Path(r.output_uri).parent.parent == folder for r in records],
            RUNS,
        )
        assert expected == actual

    @pytest.mark.parametrize("value", ["0", "false", "off"])
    def test_env_turns_the_cache_off(self, store_path, monkeypatch, value):
        """ZENTRACK_CACHE=0 (set before init) turns hits off."""
        monkeypatch.setenv("ZENTRACK_CACHE", value)
        zt.init(store_path)
        calls = []

        @zt.step
        def double(x=2):
            calls.append(x)
            return x * 2

        results = [double(), double()]
        expected = ([4, 4], [2, 2], ["COMPLETE", "COMPLETE"])
        actual = (results, calls, states("double"))
        assert expected == actual

    def test_env_in_a_fresh_process(self, run_python, store_path, tmp_path):
        """ZENTRACK_CACHE=0 in another interpreter's environment makes it run, not hit."""
        runs_file = tmp_path / "runs.txt"
        run_step_process(run_python, store_path, "tests.cache_steps:prep", runs_file=runs_file)
        done = run_python(
            RUNNER,
            str(store_path), "-", "tests.cache_steps:prep", "{}",
            env={"ZT_RUNS": str(runs_file), "ZENTRACK_CACHE": "0"},
        )
        expected = (0, ["prep", "prep"], ["COMPLETE", "COMPLETE"])
        actual = (done.returncode, runs_in(runs_file), states("prep"))
        assert expected == actual


class TestNoCache:
    """``with zt.no_cache():`` per-call opt-out."""

    def test_calls_inside_run_and_record_complete(self):
        """Inside the block a cached call runs again and is recorded COMPLETE."""
        calls = []

        @zt.step
        def double(x=2):
            calls.append(x)
            return x * 2

        double()
        with zt.no_cache():
            inside = double()
        expected = (4, [2, 2], ["COMPLETE", "COMPLETE"])
        actual = (inside, calls, states("double"))
        assert expected == actual

    def test_calls_after_the_block_hit_again(self):
        """The opt-out ends with the block."""
        calls = []

        @zt.step
        def double(x=2):
            calls.append(x)
            return x * 2

        double()
        with zt.no_cache():
            pass
        double()
        expected = ([2], ["COMPLETE", "CACHED"])
        actual = (calls, states("double"))
        assert expected == actual

    def test_output_is_stored_for_later_hits(self):
        """A call inside the block refreshes the cache: the same call after it is a hit."""
        calls = []

        @zt.step
        def double(x=2):
            calls.append(x)
            return x * 2

        with zt.no_cache():
            double()
        after = double()
        expected = (4, [2], ["COMPLETE", "CACHED"])
        actual = (after, calls, states("double"))
        assert expected == actual

    def test_refreshed_entry_points_at_the_new_execution(self):
        """After a refresh, later hits are linked to the execution made inside the block."""

        @zt.step
        def double(x=2):
            return x * 2

        double()
        with zt.no_cache():
            double()
        double()
        records = zt.lookup(zt.fingerprint(double))
        expected = (["COMPLETE", "COMPLETE", "CACHED"], records[1].execution_id)
        actual = ([r.state for r in records], records[2].cached_execution_id)
        assert expected == actual


class TestCacheCommand:
    """``zentrack cache [info|clear] [--step NAME]``."""

    def test_clear_one_step_removes_only_its_entries(self, store_path):
        """`cache clear --step prep` drops prep's outputs; make_point is still served."""
        prep(n=2)
        prep(n=3)
        make_point()
        done = zentrack_cli(store_path, "cache", "clear", "--step", "prep")
        prep(n=2)
        prep(n=3)
        make_point()
        expected = (
            0,
            "removed 2 cached outputs of step 'prep'\n",
            ["prep", "prep", "make_point", "prep", "prep"],
            ["COMPLETE", "CACHED"],
        )
        actual = (done.returncode, done.stdout, RUNS, states("make_point"))
        assert expected == actual

    def test_clear_everything(self, store_path):
        """`cache clear` without --step drops every output: every step runs again."""
        prep(n=2)
        make_point()
        done = zentrack_cli(store_path, "cache", "clear")
        prep(n=2)
        make_point()
        expected = (0, "removed 2 cached outputs\n", ["prep", "make_point"] * 2)
        actual = (done.returncode, done.stdout, RUNS)
        assert expected == actual

    def test_info_counts_entries(self, store_path):
        """`cache info` prints how many outputs are cached (of one step with --step), then each."""
        prep(n=2)
        prep(n=3)
        make_point()
        everything = zentrack_cli(store_path, "cache", "info")
        only_prep = zentrack_cli(store_path, "cache", "info", "--step", "prep")
        expected = ("3 cached outputs in", "2 cached outputs in", 4, 3)
        actual = (
            everything.stdout.splitlines()[0][:19],
            only_prep.stdout.splitlines()[0][:19],
            len(everything.stdout.splitlines()),
            len(only_prep.stdout.splitlines()),
        )
        assert expected == actual

