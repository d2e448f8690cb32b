"""A step that does not cache leaves its fingerprint to the reader of its journal line.

The call does not need the fingerprint (nothing is looked up), so its line
holds no ``fp`` when its params text is the canonical one; the reader
(a flush, a past-journal write) computes it from the line's own ``p`` and
``i`` texts, step name, code digest and version.  These tests hold the
computed fingerprint to the one the public API gives for the same call,
and the record stored in MLMD to the line it would have been with ``fp``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings

import zentrack as zt
from tests.strategies import scalars, tracked_values
from zentrack._cache.lineage import lineage_of
from zentrack._record.line import parse_line, step_line, with_fingerprint
from zentrack._step.spec import SPEC_ATTR
from zentrack._store.location import parse
from zentrack._store.schema import PROP_FINGERPRINT, PROP_RECORD


@zt.step(cache=False)
def lean(x: Any = None, *, lr: Any = 0.01, name: Any = "a") -> Any:
    return x


@zt.step(cache=False)
class LeanModel:
    def __init__(self, width: Any = 1, tag: Any = "t") -> None:
        self.width = width

    def run(self, data: Any, scale: Any = 1.0) -> Any:
        return scale


def journal_lines(store_path: Path) -> list[bytes]:
    """Every line in the store's journals (unwritten capacity cut off)."""
    directory = parse(store_path).journal_dir
    assert directory is not None
    lines: list[bytes] = []
    for path in sorted(directory.glob("*.jsonl")):
        lines += path.read_bytes().split(b"\0", 1)[0].splitlines()
    return lines


AWKWARD = [
    0.0,
    -0.0,
    float("nan"),
    float("inf"),
    -float("inf"),
    1 / 3,
    2**70,
    -(2**63),
    True,
    None,
    "nul\0byte",
    "ünïcødé ✓",
    'quote " and \\ backslash',
    "\ud800 lone",
    "mlmd-struct::x",
]


def test_the_line_has_no_fp_and_its_reader_computes_the_apis_fingerprint(store_path):
    """Awkward scalars through a function step and a class entry: every fingerprint matches."""
    model = LeanModel(width=2**70, tag="ü")
    expected_fps = []
    for value in AWKWARD:
        lean(value, lr=value)
        expected_fps.append(zt.fingerprint(lean, value, lr=value))
        model.run(value, scale=value)
        expected_fps.append(zt.fingerprint(model, value, scale=value))
    lines = journal_lines(store_path)
    parsed = [parse_line(line)["fp"] for line in lines]
    stored = [r.fingerprint for r in zt.find(step="lean") + zt.find(step="LeanModel")]
    expected = (False, expected_fps, sorted(expected_fps))
    actual = (any(b'"fp"' in line for line in lines), parsed, sorted(stored))
    assert expected == actual


def test_mlmd_keeps_the_line_with_its_fingerprint(store_path, plain_store):
    """The record JSON in MLMD is the line with ``fp`` where a caching step's line has it."""
    lean(3, lr=0.5)
    (line,) = journal_lines(store_path)
    fp = zt.fingerprint(lean, 3, lr=0.5)
    zt.flush()
    (execution,) = plain_store().get_executions_by_type("zentrack.step.lean")
    props = execution.custom_properties
    text = line.decode()
    head, rest = text.split('","p":', 1)
    expected = (f'{head}","fp":"{fp}","p":{rest}', fp, fp)
    actual = (
        props[PROP_RECORD].string_value,
        props[PROP_FINGERPRINT].string_value,
        json.loads(props[PROP_RECORD].string_value)["fp"],
    )
    assert expected == actual


def test_params_whose_canonical_text_differs_keep_fp_in_the_line(store_path):
    """A tuple's exact text is tagged, its canonical one is not: the call writes ``fp`` itself."""
    lean((1, 2), lr=[1, (2, 3)])
    (line,) = journal_lines(store_path)
    expected = (True, zt.fingerprint(lean, (1, 2), lr=[1, (2, 3)]))
    actual = (b'"fp":"' in line, parse_line(line)["fp"])
    assert expected == actual


def test_a_caching_step_still_writes_fp(store_path):
    @zt.step
    def cached(x: int) -> int:
        return x

    cached(4)
    (line,) = journal_lines(store_path)
    assert (True, zt.fingerprint(cached, 4)) == (b'"fp":"' in line, parse_line(line)["fp"])


def test_a_non_scalar_output_is_known_to_lineage_by_its_calls_fingerprint(store_path):
    """Lineage registers an output under its call's fingerprint, computed for it on the spot."""

    @zt.step(cache=False)
    def make(n: int) -> list[int]:
        return list(range(n))

    made = make(3)
    (record,) = zt.find(step="make")
    expected = (zt.fingerprint(make, 3), zt.fingerprint(make, 3))
    assert expected == (lineage_of(made), record.fingerprint)


@settings(max_examples=200, deadline=None)
@given(x=tracked_values, lr=scalars, name=tracked_values)
def test_the_reader_computes_what_the_call_would_have(x, lr, name):
    """For any values: a line without fp parses to the call's fingerprint, and gets it back."""
    spec = getattr(lean, SPEC_ATTR)
    fp = zt.fingerprint(lean, x, lr=lr, name=name)  # primes the step: its tail is set
    canonical, exact, inputs = spec.encoder.encode_call((x,), {"lr": lr, "name": name})
    digests = spec.inputs_canonical(inputs) if inputs else "{}"
    with_fp = step_line("ab-1", fp, exact, digests, "COMPLETE", 1, 2, "", spec.tail)
    without = step_line("ab-1", None, exact, digests, "COMPLETE", 1, 2, "", spec.tail)
    data = parse_line(without)
    if canonical == exact:  # the only lines written without fp
        assert (fp, with_fp) == (data["fp"], with_fingerprint(without, data))
    else:  # its text hashes other bytes: the call must write fp (it does, see above)
        assert data["fp"] != fp


@pytest.mark.parametrize(
    "line",
    [
        '{"v":1,"id":"x-1","p":{"a":1},"st":"COMPLETE","step":"s","code":"c"}',  # no "i"
        '{"v":1,"id":"x-1","st":"COMPLETE","p":{"a":1},"i":{},"step":"s","code":"c"}',  # order
        '{"v":1, "id":"x-1","p":{"a":1},"i":{},"st":"COMPLETE","step":"s","code":"c"}',  # space
        '{"v":1,"id":"x-1","p":{"a":1},"i":{},"st":"COMPLETE","step":1,"code":"c"}',  # step
        '{"v":1,"id":"x-1","p":{"a":1},"i":{},"st":"COMPLETE","step":"s","ver":2}',  # ver
    ],
)
def test_a_line_without_fp_not_laid_out_as_written_is_refused(line):
    with pytest.raises(ValueError, match="no 'fp'"):
        parse_line(line)
