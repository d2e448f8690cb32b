"""Tests for zentrack._step.values: tracked types and their canonical and exact text forms."""

from __future__ import annotations

import enum
import inspect
import json
import math

import numpy as np
import pytest
from hypothesis import given

from tests.strategies import param_mappings, tracked_values, typed
from zentrack._step.params import ParamEncoder, Signature
from zentrack._step.values import (
    canonical_json,
    copy_value,
    decode_exact,
    describe_type,
    exact_params,
    exact_value,
    is_tracked,
    untag,
)


class Colour(enum.IntEnum):
    RED = 1


def canonical_params(params: dict) -> str:
    """The canonical params text a step's encoder writes for a call with these params."""
    kind = inspect.Parameter.KEYWORD_ONLY
    signature = Signature(inspect.Signature([inspect.Parameter(n, kind) for n in params]))
    canonical, _, inputs = ParamEncoder("s", signature, None, frozenset()).encode(params)
    assert inputs == {}
    return canonical


def round_trip(params: dict) -> dict:
    """Write ``params`` in the exact form and read them back."""
    return decode_exact(exact_params(params, canonical_params(params)))


class TestIsTracked:
    @given(tracked_values)
    def test_every_tracked_value_is_accepted(self, value):
        """Scalars and nested lists, tuples and str-keyed dicts of them are tracked."""
        assert True is is_tracked(value)

    @pytest.mark.parametrize(
        "value",
        [
            np.float64(0.5),
            np.int64(1),
            np.array([1, 2]),
            {1, 2},
            b"bytes",
            object(),
            Colour.RED,
            {1: "int key"},
            [1, [2, {"k": b"deep"}]],
            (1, object()),
        ],
        ids=repr,
    )
    def test_other_values_are_rejected(self, value):
        """Subclasses, NumPy scalars, sets, bytes and non-str keys are not tracked."""
        assert False is is_tracked(value)


class TestDescribeType:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (b"x", "bytes"),
            (np.array([1]), "numpy.ndarray"),
            ([1, b"x"], "list containing bytes"),
            ((1, {2}), "tuple containing set"),
            ({1: 2}, "dict with a int key 1"),
            ({"a": [b"x"]}, "dict containing list containing bytes at key 'a'"),
        ],
        ids=repr,
    )
    def test_names_the_offending_type(self, value, expected):
        """The description names the non-tracked type, inside containers too."""
        assert expected == describe_type(value)


class TestCanonicalJson:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, "null"),
            (True, "true"),
            (False, "false"),
            (1, "1"),
            (1.0, "1.0"),
            (0, "0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-7, "1e-07"),
            (1 / 3, "0.3333333333333333"),
            (float("nan"), "NaN"),
            (float("inf"), "Infinity"),
            (-float("inf"), "-Infinity"),
            (2**70, "1180591620717411303424"),
            ("é\\\0", '"\\u00e9\\\\\\u0000"'),
            ((1, 2), "[1,2]"),
            ([1e-7, float("nan"), True], "[1e-07,NaN,true]"),
            ({"b": 1, "a": [None]}, '{"a":[null],"b":1}'),
        ],
        ids=repr,
    )
    def test_documented_spelling(self, value, expected):
        """Each value has the canonical spelling documented in docs/fingerprint.md."""
        assert expected == canonical_json(value)

    def test_one_float_and_true_differ(self):
        """1, 1.0 and True have three different canonical texts."""
        expected = 3
        assert expected == len({canonical_json(1), canonical_json(1.0), canonical_json(True)})


class TestCanonicalParams:
    @given(param_mappings)
    def test_identical_to_json_module(self, params):
        """The step's hand-rolled encoder is byte-identical to json with sorted keys."""
        expected = json.dumps(params, sort_keys=True, separators=(",", ":"), allow_nan=True)
        assert expected == canonical_params(params)

    @given(param_mappings)
    def test_independent_of_key_order(self, params):
        """Parameters given in any order have the same canonical text."""
        reordered = dict(reversed(list(params.items())))
        assert canonical_params(params) == canonical_params(reordered)


class TestExactParams:
    @given(param_mappings)
    def test_round_trip_is_exact(self, params):
        """decode_exact(exact_params(p)) gives back p with every type and bit intact."""
        assert typed(params) == typed(round_trip(params))

    def test_flat_params_reuse_the_canonical_text(self):
        """Without tuples or tag-like dicts the exact text is the canonical text."""
        params = {"lr": 0.1, "layers": [64, 32], "name": "x"}
        canonical = canonical_params(params)
        assert canonical == exact_params(params, canonical)

    @pytest.mark.parametrize(
        "params",
        [
            {"shape": (64, 32)},
            {"nested": [(1,), {"t": ((),)}]},
            {"d": {"__tuple__": [1, 2]}},
            {"d": {"__dict__": 1}},
            {"d": {"__dict__": {"__tuple__": (1,)}}},
            {"d": {"__tuple__": (1.0, True), "other": None}},
        ],
        ids=repr,
    )
    def test_tuples_and_tag_like_dicts_read_back(self, params):
        """Tuples come back as tuples and dicts that look like tags as dicts."""
        assert typed(params) == typed(round_trip(params))

    @pytest.mark.parametrize(
        "params",
        [{"__tuple__": [1, 2]}, {"__dict__": 1}, {"__dict__": {"a": 1}}],
        ids=repr,
    )
    def test_parameter_named_like_a_tag_reads_back(self, params):
        """A single parameter named __tuple__ or __dict__ reads back as that parameter."""
        assert typed(params) == typed(round_trip(params))


class TestDecodeExact:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ('{"a":1,"b":1.0,"c":true}', {"a": 1, "b": 1.0, "c": True}),
            ('{"t":{"__tuple__":[1,[2]]}}', {"t": (1, [2])}),
            ('{"x":-0.0,"y":NaN,"z":-Infinity}', {"x": -0.0, "y": math.nan, "z": -math.inf}),
            ('{"d":{"__dict__":{"__tuple__":[1]}}}', {"d": {"__tuple__": [1]}}),
        ],
        ids=repr,
    )
    def test_reads_documented_form(self, text, expected):
        """The documented exact form decodes to the original values and types."""
        assert typed(expected) == typed(decode_exact(text))


class TestExactValue:
    @given(tracked_values)
    def test_round_trip_is_exact(self, value):
        """A single value survives exact_value and decode_exact unchanged."""
        assert typed(value) == typed(decode_exact(exact_value(value)))


class TestUntag:
    def test_plain_json_is_unchanged(self):
        """Parsed JSON without tags is returned equal."""
        data = {"a": [1, {"b": None}], "c": "__tuple__"}
        assert data == untag(json.loads(json.dumps(data)))


class TestCopyValue:
    @given(tracked_values)
    def test_copy_is_equal(self, value):
        """The copy has the same values and types."""
        assert typed(value) == typed(copy_value(value))

    def test_copy_is_independent(self):
        """Mutating the original containers leaves the copy untouched."""
        original = {"layers": [64, 32], "nested": {"k": [1]}}
        copy = copy_value(original)
        original["layers"].append(16)
        original["nested"]["k"].append(2)
        expected = {"layers": [64, 32], "nested": {"k": [1]}}
        assert expected == copy
