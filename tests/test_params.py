"""Tests for zentrack._step.params: what is a parameter, how calls bind, frozen params."""

from __future__ import annotations

import inspect

import attrs
import numpy as np
import pytest

import zentrack as zt
from tests.steps_for_tests import TrainerStep, train
from tests.strategies import typed
from zentrack._step.params import (
    ParamEncoder,
    Signature,
    check_params,
    make_params_class,
    param_type_error,
)
from zentrack._step.values import TRACKED_TYPES_TEXT
from zentrack.exceptions import ParameterTypeError

TRACKED_EXAMPLES = [
    1,
    -(2**70),
    0.5,
    float("nan"),
    "relu",
    True,
    None,
    [64, 32],
    (1, "a"),
    {"a": [1, {"b": (None, 2.5)}]},
    [],
    {},
]


class Unknown:
    """A type zentrack does not track."""

    def __repr__(self) -> str:
        return "Unknown()"


def assert_clear_message(error: ParameterTypeError, step: str, param: str, kind: str) -> None:
    """Check the error names the step, the parameter, the type found and the allowed types."""
    message = str(error)
    expected = {"step": True, "parameter": True, "type": True, "allowed types": True}
    actual = {
        "step": repr(step) in message,
        "parameter": repr(param) in message,
        "type": kind in message,
        "allowed types": TRACKED_TYPES_TEXT in message,
    }
    assert expected == actual, message


class TestClassStepParams:
    @pytest.mark.parametrize("value", TRACKED_EXAMPLES, ids=repr)
    def test_tracked_types_are_accepted(self, value):
        """Every tracked type is accepted as a class-step parameter."""
        trainer = TrainerStep(hidden_layers=value)
        assert typed(value) == typed(trainer.params.hidden_layers)

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            (np.complex64(1j), "numpy.complex64"),
            (np.array([1.0]), "numpy.ndarray"),
            (Unknown(), "tests.test_params.Unknown"),
            ({1, 2}, "set"),
            ([1, b"x"], "list containing bytes"),
        ],
        ids=repr,
    )
    def test_untracked_value_raises_a_clear_type_error(self, value, kind):
        """A non-tracked value fails at construction, naming step, parameter and types."""
        with pytest.raises(ParameterTypeError) as info:
            TrainerStep(lr=value)
        assert_clear_message(info.value, "TrainerStep", "lr", kind)

    def test_self_referencing_value_raises_a_clear_type_error(self):
        """A list that contains itself is rejected with ParameterTypeError, not a crash."""
        cyclic: list = []
        cyclic.append(cyclic)
        with pytest.raises(ParameterTypeError):
            TrainerStep(hidden_layers=cyclic)

    def test_error_is_a_type_error(self):
        """ParameterTypeError is a TypeError, so existing handlers still catch it."""
        with pytest.raises(TypeError):
            TrainerStep(lr=np.array([0.1]))

    def test_nothing_runs_or_is_recorded_on_error(self):
        """The user's __init__ does not run and the store stays empty."""
        runs = []

        @zt.step
        class Step:
            def __init__(self, lr=0.1):
                runs.append(lr)

            def run(self):
                return None

        with pytest.raises(ParameterTypeError):
            Step(lr=Unknown())
        expected = ([], 0, [])
        assert expected == (runs, zt.flush(), zt.find())

    def test_positional_keyword_and_default_bind_alike(self):
        """Giving a value by position, by keyword or by default gives equal params."""
        by_default = TrainerStep()
        by_position = TrainerStep(1, 0.0)
        by_keyword = TrainerStep(dropout_chance=0.0, batch_size=1)
        assert by_default.params == by_position.params == by_keyword.params

    def test_params_hold_every_keyword_argument(self):
        """t.params has every __init__ argument, given or defaulted."""
        trainer = TrainerStep(lr=0.1, hidden_layers=[64, 32])
        expected = {
            "batch_size": 1,
            "dropout_chance": 0.0,
            "epochs": 1,
            "hidden_activation": "relu",
            "hidden_layers": [64, 32],
            "last_activation": "sigmoid",
            "loss": "mse",
            "lr": 0.1,
            "metrics": None,
            "output_units": 1,
        }
        assert expected == attrs.asdict(trainer.params)

    def test_params_are_frozen(self):
        """Assigning to a parameter raises attrs' FrozenInstanceError."""
        trainer = TrainerStep(lr=0.1)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            trainer.params.lr = 0.2  # type: ignore[misc]

    def test_params_are_an_attrs_instance_of_the_step_params_class(self):
        """t.params is an instance of the attrs class TrainerStep.Params."""
        trainer = TrainerStep()
        expected = (True, True)
        assert expected == (
            attrs.has(type(trainer.params)),
            isinstance(trainer.params, TrainerStep.Params),
        )

    def test_params_are_copies(self):
        """Mutating a list after construction does not change the params."""
        layers = [64, 32]
        trainer = TrainerStep(hidden_layers=layers)
        layers.append(16)
        expected = [64, 32]
        assert expected == trainer.params.hidden_layers

    def test_user_init_still_runs(self):
        """The class's own __init__ runs with the given arguments."""
        trainer = TrainerStep(batch_size=4, lr=0.5)
        expected = (4, 0.5)
        assert expected == (trainer.batch_size, trainer.lr)

    def test_wrong_call_raises_pythons_type_error(self):
        """An unknown keyword argument fails like it would without @step."""
        with pytest.raises(TypeError, match="unexpected keyword argument 'nope'"):
            TrainerStep(nope=1)


class TestFunctionStepParams:
    def test_tracked_values_are_params_others_inputs(self):
        """Tracked values become params; other values are inputs, digested by content."""
        train(np.arange(3), lr=0.5)
        (record,) = zt.find(step="train")
        expected = ({"lr": 0.5, "epochs": 1}, ["data"])
        assert expected == (record.params, list(record.inputs))

    def test_declared_params_reject_untracked_values(self):
        """With params=[...], a non-tracked value for a declared name is a clear TypeError."""
        runs = []

        @zt.step(params=["lr"])
        def fit(data, lr=0.1):
            runs.append(lr)

        with pytest.raises(ParameterTypeError) as info:
            fit([1, 2], lr=np.array([0.1]))
        assert_clear_message(info.value, "fit", "lr", "numpy.ndarray")
        expected = ([], 0)
        assert expected == (runs, zt.flush())

    def test_declared_params_leave_other_arguments_as_inputs(self):
        """With params=[...], an undeclared tracked value is an input, not a parameter."""

        @zt.step(params=["lr"])
        def fit(data, lr=0.1):
            return None

        fit([1, 2, 3], lr=0.2)
        (record,) = zt.find(step="fit")
        expected = ({"lr": 0.2}, ["data"])
        assert expected == (record.params, list(record.inputs))

    def test_declared_unknown_name_is_a_value_error(self):
        """Declaring a parameter the function does not have fails at decoration."""
        with pytest.raises(ValueError, match="nope"):

            @zt.step(params=["nope"])
            def fit(data, lr=0.1):
                return None

    def test_positional_keyword_and_default_record_alike(self):
        """Calls spelling the same arguments differently record equal params."""

        @zt.step
        def fit(a, b=2, *, c=3):
            return None

        fit(1)
        fit(1, 2)
        fit(a=1, b=2, c=3)
        expected = [{"a": 1, "b": 2, "c": 3}] * 3
        assert expected == [r.params for r in zt.find(step="fit")]


class TestSignatureBind:
    def bind(self, fn, *args, **kwargs):
        return Signature(inspect.signature(fn)).bind(args, kwargs)

    def test_applies_defaults(self):
        """Missing arguments get their defaults."""

        def fn(a, b=2, *, c=3):
            return None

        expected = {"a": 1, "b": 2, "c": 3}
        assert expected == self.bind(fn, 1)

    def test_matches_inspect_for_varargs(self):
        """*args and **kwargs bind under their own names, as a tuple and a dict."""

        def fn(a, /, b=2, *rest, c=3, **extra):
            return None

        expected = {"a": 1, "b": 5, "rest": (6, 7), "c": 3, "extra": {"a": 9, "z": 0}}
        assert expected == self.bind(fn, 1, 5, 6, 7, a=9, z=0)

    @pytest.mark.parametrize(
        ("args", "kwargs"),
        [((), {}), ((1, 2, 3), {}), ((1,), {"a": 1}), ((1,), {"zz": 1})],
        ids=repr,
    )
    def test_rejects_what_python_rejects(self, args, kwargs):
        """A call Python would reject raises the same TypeError message."""

        def fn(a, b=2):
            return None

        with pytest.raises(TypeError) as expected:
            inspect.signature(fn).bind(*args, **kwargs)
        with pytest.raises(TypeError) as actual:
            self.bind(fn, *args, **kwargs)
        assert str(expected.value) == str(actual.value)


def _outcome(call):
    """``("ok", value)`` or ``("error", type, message)`` of ``call()``."""
    try:
        return ("ok", call())
    except Exception as exc:
        return ("error", type(exc), str(exc))


PLAN_VALUES = [
    0, -7, 2**70, 0.02, float("nan"), -float("inf"), -0.0, True, None, "é\"\n", "x" * 80,
    [1, (2,)], {"a": 1}, np.float32(0.5), np.int64(3), Unknown(), b"x",
]  # fmt: skip


class TestGeneratedEncoder:
    """The generated all-scalar encoder and entry digests equal the general route, byte for byte."""

    @pytest.mark.parametrize(
        "declared", [None, frozenset({"lr", "opt"})], ids=["by-type", "params="]
    )
    def test_encode_call_equals_the_general_route(self, declared):
        def fn(data, lr=0.1, /, opt=None, *, type="t", n=1):
            return None

        encoder = ParamEncoder("s", Signature(inspect.signature(fn)), declared, frozenset({"n"}))
        assert encoder.plan is not None
        calls = [((v,), {"opt": w}) for v in PLAN_VALUES for w in PLAN_VALUES]
        calls += [((v, w), {"type": v, "n": w}) for v in PLAN_VALUES for w in PLAN_VALUES]
        calls += [((), {}), ((1, 2, 3, 4), {}), ((1,), {"data": 1}), ((1,), {"zz": 1})]
        fast = [_outcome(lambda a=a, k=k: encoder.encode_call(a, k)) for a, k in calls]
        general = [_outcome(lambda a=a, k=k: encoder.encode_general(a, k)) for a, k in calls]
        assert general == fast
        # the all-scalar call is the generated encoder's own, not a fallback
        if declared is None:
            text, inputs = '{"lr":0.5,"opt":null,"type":"t"}', {"data": b"raw"}
        else:
            text, inputs = '{"lr":0.5,"opt":null}', {"data": b"raw", "type": "t"}
        assert (text, text, inputs) == encoder.plan(b"raw", 0.5, type="t", n=[1])

    def test_entry_digests_equal_inputs_canonical(self):
        @zt.step(ignore=["quiet"])
        class Entry:
            def run(self, x, y=2, *, quiet=False):
                return x

        spec = Entry.__zentrack_step__
        plan = spec.compile_inputs_plan(spec.entry_signature)
        assert plan is not None
        for x in PLAN_VALUES:
            for y in PLAN_VALUES:
                general = _outcome(lambda x=x, y=y: spec.inputs_canonical({"x": x, "y": y}))
                assert (x, y, general) == (x, y, _outcome(lambda x=x, y=y: plan(x, y, quiet=True)))


class TestCheckParams:
    def test_returns_private_copies(self):
        """The checked values are equal copies, not the caller's containers."""
        values = {"layers": [1, 2]}
        checked = check_params("s", values)
        assert (values, False) == (checked, checked["layers"] is values["layers"])

    def test_rejects_untracked(self):
        """A non-tracked value raises ParameterTypeError."""
        with pytest.raises(ParameterTypeError):
            check_params("s", {"x": Unknown()})


class TestIgnoredArguments:
    def test_ignored_arguments_are_neither_params_nor_inputs(self):
        """Names in ignore= are left out of the record's params and inputs."""

        @zt.step(ignore=["verbose", "callback"])
        def fit(data, lr=0.1, verbose=True, callback=None):
            return None

        fit(np.zeros(2), lr=0.2, callback=print)
        (record,) = zt.find(step="fit")
        expected = ({"lr": 0.2}, ["data"])
        assert expected == (record.params, list(record.inputs))


class TestMakeParamsClass:
    def test_builds_frozen_keyword_only_class_with_defaults(self):
        """The class has keyword-only fields in order, with defaults, and is frozen."""
        cls = make_params_class("s", "Params", ["a", "b"], {"b": 2})
        instance = cls(a=1)
        expected = (["a", "b"], {"a": 1, "b": 2})
        assert expected == (
            [f.name for f in attrs.fields(cls)],
            attrs.asdict(instance),
        )
        with pytest.raises(TypeError):
            cls(1)

    def test_validates_each_field(self):
        """Constructing with a non-tracked value raises ParameterTypeError."""
        cls = make_params_class("s", "Params", ["a"], {})
        with pytest.raises(ParameterTypeError):
            cls(a=Unknown())


class TestParamTypeError:
    def test_message(self):
        """The message names step, parameter, value, type and allowed types."""
        error = param_type_error("trainer", "lr", np.float64(0.5))
        assert_clear_message(error, "trainer", "lr", "numpy.float64")
