"""MLMD's value hazards (MLMD_NOTES.md) as parameter values, metrics and names.

Each hazard must either read back exactly through zentrack or be refused
with a clear error before anything is written; it must never abort the
process (MLMD aborts with SIGABRT on a Value with no field set), and a plain
``ml_metadata`` reader must still list every execution and context of the
store afterwards.  Everything is written from a subprocess, whose exit code
tells an abort (-6) from a clean exit.
"""

from __future__ import annotations

import json

import pytest

import zentrack as zt
from tests.reliability_workers import (
    HAZARD_NAMES,
    HAZARD_VALUES,
    LONG_PARAM,
    hazard,
    output,
    worker,
)
from tests.strategies import typed

LABELS = sorted(HAZARD_VALUES)
NAME_LABELS = sorted(HAZARD_NAMES)


@pytest.fixture(scope="module")
def hazard_store(tmp_path_factory):
    """One store, written once by a subprocess with every hazard value (module-wide)."""
    directory = tmp_path_factory.mktemp("hazards")
    path = directory / "metadata.sqlite"
    done = worker("hazard_values", str(path))
    return path, done


@pytest.fixture
def hazard_records(hazard_store):
    """Make the hazard store the active one for this test; return its path."""
    path, _ = hazard_store
    zt.init(path)
    return path


def clean_exit(done):
    """'ok' for exit code 0 without a traceback, else what happened."""
    if done.returncode == 0 and "Traceback" not in done.stderr:
        return "ok"
    last = [line for line in done.stderr.splitlines() if line.strip()][-1:] or [""]
    return f"exit code {done.returncode}: {last[0][:300]}"


def plain_verdict(report, done=None, store=None):
    """'ok' if a plain MLMD reader lists everything with no empty Value, else the problem."""
    plain = report.get("plain")
    if plain is None and store is not None:
        plain = output(worker("census", str(store))).get("plain")
    if plain == {"store": "absent"}:
        return "ok"
    if not isinstance(plain, dict):
        return f"no plain census (worker said {report})"
    problems = {
        kind: plain.get(kind)
        for kind in ("executions", "contexts", "artifacts")
        if not isinstance(plain.get(kind), int)
    }
    if plain.get("empty_values"):
        problems["empty_values"] = plain["empty_values"]
    return "ok" if not problems else f"plain ml_metadata reader failed: {problems}"


class TestValueHazards:
    def test_writer_exits_cleanly_and_plain_reader_lists_everything(self, hazard_store):
        """The writer exits 0 (no SIGABRT); plain MLMD lists every execution and context."""
        _, done = hazard_store
        report = output(done)
        plain = report.get("plain", {})
        expected = ("ok", len(HAZARD_VALUES), "ok", 2 * len(HAZARD_VALUES) + 1)
        actual = (
            clean_exit(done),
            report.get("done"),
            plain_verdict(report),
            plain.get("executions"),
        )
        assert expected == actual

    @pytest.mark.parametrize("label", LABELS)
    def test_parameter_value_reads_back_exactly(self, hazard_records, label):
        """find() returns the value with its exact type and bits, inside and outside a run."""
        value = HAZARD_VALUES[label]
        found = [r for r in zt.find(step="hazard") if r.params.get("label") == label]
        expected = [typed(value)] * 2
        assert expected == [typed(r.params["value"]) for r in found]

    @pytest.mark.parametrize("label", LABELS)
    def test_metric_value_reads_back_exactly(self, hazard_records, label):
        """A metric logged with the value reads back exactly."""
        value = HAZARD_VALUES[label]
        found = [r for r in zt.find(step="hazard") if r.params.get("label") == label]
        expected = [typed(value)] * 2
        assert expected == [typed(r.metrics.get("m")) for r in found]

    @pytest.mark.parametrize("label", LABELS)
    def test_lookup_by_fingerprint_finds_both_calls(self, hazard_records, label):
        """lookup(fingerprint) computed in this process finds the subprocess's two calls."""
        value = HAZARD_VALUES[label]
        found = zt.lookup(zt.fingerprint(hazard, label=label, value=value))
        expected = [typed(value)] * 2
        assert expected == [typed(r.params["value"]) for r in found]

    @pytest.mark.parametrize("label", LABELS)
    def test_run_parameter_reads_back_exactly(self, hazard_records, label):
        """run.params and the run's step params keep the value exactly."""
        value = HAZARD_VALUES[label]
        runs = [r for r in zt.runs(pipeline="hazard_run") if r.params.get("label") == label]
        expected = [("COMPLETE", typed(value), [typed(value)])]
        actual = [
            (r.state, typed(r.params["value"]), [typed(s.params["value"]) for s in r.steps])
            for r in runs
        ]
        assert expected == actual

    def test_parameter_name_of_300_characters_reads_back(self, hazard_records):
        """A 300-character parameter name (a valid identifier) is stored and read back."""
        expected = [{LONG_PARAM: 0.25}]
        assert expected == [r.params for r in zt.find(step="long_param")]


def _name_verdict(report, expected_found):
    """'ok' if the name was refused before writing or read back exactly, else what happened."""
    if "rejected" in report:
        plain = report.get("plain", {})
        if plain == {"store": "absent"} or plain.get("executions") == 0:
            return "ok"
        return f"rejected ({report['rejected']}) but something was written: {plain}"
    if not report:
        return "the worker printed nothing (it raised)"
    got = {k: report.get(k) for k in expected_found}
    return "ok" if got == expected_found else f"read back {got}"


class TestNameHazards:
    @pytest.mark.parametrize("label", NAME_LABELS)
    def test_step_name(self, store_path, label):
        """A step named by a hazard is refused at decoration or reads back under that name."""
        name = HAZARD_NAMES[label]
        done = worker("hazard_step_name", str(store_path), label)
        report = output(done)
        verdict = _name_verdict(
            report,
            {
                "returned": 42,
                "found": [[name, {"x": 41}]],
                "all": [["a", {"x": 1}], [name, {"x": 41}]],
            },
        )
        expected = ("ok", "ok", "ok")
        actual = (clean_exit(done), verdict, plain_verdict(report, done, store_path))
        assert expected == actual

    @pytest.mark.parametrize("label", NAME_LABELS)
    def test_pipeline_name(self, store_path, label):
        """A pipeline named by a hazard is refused at decoration or its run reads back."""
        name = HAZARD_NAMES[label]
        done = worker("hazard_pipeline_name", str(store_path), label)
        report = output(done)
        verdict = _name_verdict(
            report, {"returned": 0.25, "found": [[name, "COMPLETE", {"lr": 0.25}, 1]]}
        )
        expected = ("ok", "ok", "ok")
        actual = (clean_exit(done), verdict, plain_verdict(report, done, store_path))
        assert expected == actual

    @pytest.mark.parametrize("label", NAME_LABELS)
    def test_metric_name(self, store_path, label):
        """A metric named by a hazard reads back under that name."""
        name = HAZARD_NAMES[label]
        done = worker("hazard_metric_name", str(store_path), label)
        report = output(done)
        verdict = _name_verdict(report, {"returned": 3, "found": [{name: 0.5}]})
        expected = ("ok", "ok", "ok")
        actual = (clean_exit(done), verdict, plain_verdict(report, done, store_path))
        assert expected == actual


def test_hazard_values_cover_the_notes():
    """The value list keeps every hazard MLMD_NOTES.md names (guards against trimming it)."""
    kinds = {
        "nan": lambda v: v != v,
        "inf": lambda v: v == float("inf"),
        "-inf": lambda v: v == float("-inf"),
        "1e-7": lambda v: v == 1e-7,
        "-0.0": lambda v: type(v) is float and str(v) == "-0.0",
        "1/3": lambda v: v == 1 / 3,
        "int > 64 bits": lambda v: type(v) is int and abs(v) >= 2**64,
        "NUL": lambda v: type(v) is str and "\0" in v,
        "backslash": lambda v: type(v) is str and "\\" in v,
        "100 kB": lambda v: type(v) is str and len(v) >= 100_000,
        "mlmd-struct::": lambda v: type(v) is str and v.startswith("mlmd-struct::"),
        "lone surrogate": lambda v: type(v) is str and any(0xD800 <= ord(c) < 0xE000 for c in v),
        "255+ chars": lambda v: type(v) is str and len(v) > 255,
    }
    covered = {kind for kind, test in kinds.items() if any(test(v) for v in HAZARD_VALUES.values())}
    expected = set(kinds)
    assert expected == covered, json.dumps(sorted(set(kinds) - covered))
