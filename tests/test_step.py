"""Tests for zentrack._step.decorator: the @step decorator on functions, methods and classes."""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import multiprocessing
import pickle

import attrs
import pytest

import zentrack as zt
from tests.steps_for_tests import TrainerStep, square, train
from zentrack.exceptions import ParameterTypeError


def logged(fn):
    """A second, unrelated decorator built with functools.wraps."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        inner.calls += 1
        return fn(*args, **kwargs)

    inner.calls = 0
    return inner


class Boom(Exception):
    """The error a failing step raises."""


class Interrupt(BaseException):
    """A BaseException that is not an Exception, like KeyboardInterrupt."""


class TestStepOnFunctions:
    def test_bare_form_tracks_and_returns(self):
        """@step without arguments tracks the call and returns its result."""

        @zt.step
        def add(a, b=2):
            return a + b

        actual = (add(1), [r.params for r in zt.find(step="add")])
        expected = (3, [{"a": 1, "b": 2}])
        assert expected == actual

    def test_called_form_uses_the_options(self):
        """@step(name=..., version=...) records under the given name."""

        @zt.step(name="adder", version="2", cache=False)
        def add(a, b=2):
            return a + b

        add(1, b=5)
        expected = ([{"a": 1, "b": 5}], [])
        actual = ([r.params for r in zt.find(step="adder")], zt.find(step="add"))
        assert expected == actual

    def test_keeps_the_function_metadata(self):
        """Name, docstring, module, qualname, __wrapped__ and signature are kept."""

        def fit(data, *, lr: float = 0.01, epochs: int = 1) -> float:
            """Fit something."""
            return lr

        tracked = zt.step(fit)
        expected = (
            "fit",
            "Fit something.",
            fit.__module__,
            fit.__qualname__,
            fit,
            inspect.signature(fit),
        )
        actual = (
            tracked.__name__,
            tracked.__doc__,
            tracked.__module__,
            tracked.__qualname__,
            tracked.__wrapped__,
            inspect.signature(tracked),
        )
        assert expected == actual

    def test_spec_attribute_and_fingerprint_method(self):
        """The step carries its spec under __zentrack_step__ and a .fingerprint method."""
        expected = ("train", True)
        actual = (train.__zentrack_step__.name, callable(train.fingerprint))
        assert expected == actual

    def test_decorating_twice_changes_nothing(self):
        """Applying @step to a step returns it unchanged."""
        assert train is zt.step(train)

    @pytest.mark.parametrize("name", ["", "x" * 201, 3])
    def test_bad_name_is_a_value_error(self, name):
        """An empty, overlong or non-string name is rejected at decoration."""
        with pytest.raises(ValueError, match="name"):
            zt.step(name=name)(lambda: None)

    @pytest.mark.parametrize("name", ["a#2", "#", "train#"])
    def test_hash_in_name_is_a_value_error(self, name):
        """'#' marks a repeated call's config key (a#2), so a step name cannot hold it."""
        with pytest.raises(ValueError, match="must not contain '#'") as caught:
            zt.step(name=name)(lambda: None)
        assert repr(name) in str(caught.value)

    def test_hash_in_a_class_step_name_is_a_value_error(self):
        """Class steps follow the same rule."""

        class Fit:
            def run(self):
                return None

        with pytest.raises(ValueError, match="must not contain '#'"):
            zt.step(name="fit#2")(Fit)

    def test_named_lambda_is_a_step(self):
        """A lambda with a name decorates (its ``__name__`` is ``<lambda>``) and tracks."""
        lam = zt.step(name="lam")(lambda x=1: x + 1)

        expected = (3, [{"x": 2}], "lam_Params", {"x": 1})
        actual = (
            lam(2),
            [r.params for r in zt.find(step="lam")],
            lam.Params.__name__,
            attrs.asdict(lam.Params()),
        )
        assert expected == actual

    @pytest.mark.parametrize(
        ("name", "class_name"),
        [("my step-1", "my_step_1_Params"), ("1st", "_1st_Params"), ("trainer", "trainer_Params")],
    )
    def test_params_class_is_named_after_the_step(self, name, class_name):
        """Any printable step name gives an identifier for the Params class."""

        def fit(lr=0.1):
            return lr

        tracked = zt.step(name=name)(fit)
        expected = (class_name, 0.2)
        assert expected == (tracked.Params.__name__, tracked(lr=0.2))

    def test_non_callable_is_a_type_error(self):
        """Decorating something that is not callable raises TypeError."""
        with pytest.raises(TypeError):
            zt.step(42)

    def test_entry_option_is_for_classes_only(self):
        """entry= on a function step raises ValueError."""
        with pytest.raises(ValueError):
            zt.step(entry="run")(lambda: None)

    def test_wrong_call_fails_like_the_function(self):
        """A call the function would reject raises Python's TypeError and records nothing."""
        with pytest.raises(TypeError, match="missing a required argument"):
            train()
        expected = 0
        assert expected == zt.flush()

    def test_failure_reaches_the_caller_unchanged(self):
        """The step's exception is re-raised as the same object, and recorded as FAILED."""
        error = Boom("no convergence")

        @zt.step
        def fit(lr=0.1):
            raise error

        with pytest.raises(Boom) as info:
            fit(lr=0.5)
        (record,) = zt.find(step="fit")
        expected = (True, "FAILED", "Boom: no convergence", {"lr": 0.5})
        actual = (info.value is error, record.state, record.error, record.params)
        assert expected == actual

    def test_base_exception_is_recorded_as_canceled(self):
        """A BaseException that is not an Exception is recorded as CANCELED and re-raised."""

        @zt.step
        def fit(lr=0.1):
            raise Interrupt()

        with pytest.raises(Interrupt):
            fit()
        expected = ["CANCELED"]
        assert expected == [r.state for r in zt.find(step="fit")]


class TestStepOnMethods:
    def test_method_binds_and_tracks(self):
        """A @step method gets self, and self is neither a param nor an input."""

        class Model:
            def __init__(self):
                self.seen = []

            @zt.step
            def fit(self, data, lr=0.1):
                self.seen.append(lr)
                return lr * 2

        model = Model()
        result = model.fit(b"data", lr=0.25)
        (record,) = zt.find(step="fit")
        expected = (0.5, [0.25], {"lr": 0.25}, ["data"])
        actual = (result, model.seen, record.params, list(record.inputs))
        assert expected == actual

    def test_method_on_two_instances(self):
        """Each instance's call is tracked separately."""

        class Model:
            @zt.step
            def fit(self, lr=0.1):
                return id(self)

        first, second = Model(), Model()
        expected = [id(first), id(second)]
        assert expected == [first.fit(lr=0.1), second.fit(lr=0.2)]
        expected = [{"lr": 0.1}, {"lr": 0.2}]
        assert expected == [r.params for r in zt.find(step="fit")]


class TestStepUnderAnotherDecorator:
    def test_outer_wraps_decorator_keeps_the_step_reachable(self):
        """A functools.wraps decorator on top keeps the spec, .fingerprint and tracking."""

        @logged
        @zt.step
        def fit(data, lr=0.1):
            return lr

        predicted = zt.fingerprint(fit, b"d", lr=0.3)
        result = fit(b"d", lr=0.3)
        (record,) = zt.find(step="fit")
        expected = (0.3, 1, "fit", predicted, predicted)
        actual = (
            result,
            fit.calls,
            fit.__zentrack_step__.name,
            fit.fingerprint(b"d", lr=0.3),
            record.fingerprint,
        )
        assert expected == actual

    def test_step_on_top_of_another_decorator(self):
        """@step over a functools.wraps decorator sees the original signature."""

        @zt.step
        @logged
        def fit(data, lr=0.1):
            return lr

        fit(b"d")
        expected = [{"lr": 0.1}]
        assert expected == [r.params for r in zt.find(step="fit")]


class TestStepOnClasses:
    def test_class_is_patched_in_place(self):
        """@step returns the class itself, with its name and docstring."""

        class Fit:
            """Doc."""

            def __init__(self, lr=0.1):
                self.lr = lr

            def run(self):
                return self.lr

        expected = (Fit, "Fit", "Doc.")
        tracked = zt.step(Fit)
        assert expected == (tracked, tracked.__name__, tracked.__doc__)

    def test_run_is_tracked_with_all_params(self):
        """Calling run records the constructor's params and returns run's result."""
        trainer = TrainerStep(batch_size=2, hidden_layers=[64, 32])
        result = trainer.run([1, 2, 3])
        (record,) = zt.find(step="TrainerStep")
        expected = (6, "COMPLETE", 2, [64, 32], 10)
        actual = (
            result,
            record.state,
            record.params["batch_size"],
            record.params["hidden_layers"],
            len(record.params),
        )
        assert expected == actual

    def test_call_entry_point(self):
        """A class with __call__ and no run is tracked through __call__."""

        @zt.step
        class Scale:
            def __init__(self, factor=2):
                self.factor = factor

            def __call__(self, x):
                return x * self.factor

        expected = (6, [{"factor": 3}])
        actual = (Scale(factor=3)(2), [r.params for r in zt.find(step="Scale")])
        assert expected == actual

    def test_named_entry_point(self):
        """@step(entry=...) tracks the named method."""

        @zt.step(entry="fit")
        class Model:
            def __init__(self, lr=0.1):
                self.lr = lr

            def fit(self, data):
                return self.lr

        expected = (0.1, ["Model"])
        actual = (Model().fit([1]), [r.step for r in zt.find(step="Model")])
        assert expected == actual

    def test_class_without_init_is_a_step_without_params(self):
        """A class step that defines no __init__ has empty params and is tracked."""

        @zt.step
        class Constant:
            def run(self):
                return 1

        expected = (1, [{}])
        actual = (Constant().run(), [r.params for r in zt.find(step="Constant")])
        assert expected == actual

    def test_params_option_is_rejected_for_classes(self):
        """params= is for function steps; on a class it raises ValueError."""
        with pytest.raises(ValueError):

            @zt.step(params=["lr"])
            class Model:
                def __init__(self, lr=0.1):
                    self.lr = lr

                def run(self):
                    return None

    def test_untracked_param_error_names_the_class(self):
        """A non-tracked constructor value names the class step in the error."""
        with pytest.raises(ParameterTypeError, match="'TrainerStep'"):
            TrainerStep(loss=len)


class TestPickling:
    def test_function_step_pickles_by_reference(self):
        """A module-level step function pickles as a reference to itself."""
        assert train is pickle.loads(pickle.dumps(train))

    def test_class_step_instance_pickles(self):
        """A class-step instance round-trips through pickle and still tracks."""
        trainer = TrainerStep(lr=0.1, hidden_layers=[8, 4])
        copy = pickle.loads(pickle.dumps(trainer))
        expected = (trainer.params, zt.fingerprint(trainer, [1]), 1)
        actual = (copy.params, zt.fingerprint(copy, [1]), copy.run([1]))
        assert expected == actual
        expected = [{"lr": 0.1}]
        assert expected == [{"lr": r.params["lr"]} for r in zt.find(step="TrainerStep")]

    @pytest.mark.parametrize("method", ["fork", "spawn"])
    def test_runs_in_a_process_pool(self, method, store_path, monkeypatch):
        """Steps run in pool workers; the parent finds every worker's record after flush."""
        monkeypatch.setenv("ZENTRACK_STORE", str(store_path))
        context = multiprocessing.get_context(method)
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
            results = list(pool.map(square, range(8)))
        zt.flush()
        expected = ([x * x for x in range(8)], list(range(8)))
        actual = (results, sorted(r.params["x"] for r in zt.find(step="square")))
        assert expected == actual
