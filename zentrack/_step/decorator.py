"""The ``@step`` decorator: functions, methods and classes.

One tracked call flows: bind arguments (:mod:`.params`) -> canonical params
(:mod:`.values`) -> fingerprint (:mod:`.fingerprint`) -> cache check, run and
journal line (:mod:`.track`) -> the tracker (:mod:`zentrack._record.tracker`),
which flushes to MLMD later.  What a step is once decorated is in
:mod:`.spec`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, Final, ParamSpec, Protocol, TypeVar, overload

from zentrack._runs import context as _context
from zentrack._runs.context import RunState, current_run
from zentrack._step.callers_line import about_callers_line
from zentrack._step.params import (
    Signature,
    callable_signature,
    check_params,
    make_params_class,
    params_class_name,
)
from zentrack._step.spec import (
    INSTANCE_ATTR,
    SPEC_ATTR,
    Prospect,
    StepSpec,
    check_name,
    instance_texts,
    prospect_of,
    spec_of,
)
from zentrack._step.track import apply_override, call_in_run, track
from zentrack._step.values import copy_value

_get_run = current_run.get

P = ParamSpec("P")

P2 = ParamSpec("P2")

T = TypeVar("T")

R = TypeVar("R")

R_co = TypeVar("R_co", covariant=True)

C = TypeVar("C", bound=type)

_KEY_ATTR: Final = "__zentrack_run_key__"

_SELF_NAMES: Final = ("self", "cls")



class Step(Protocol[P, R_co]):
    """What ``@step`` turns a function into, as type checkers see it.

    A step defined in a class body is a method: read through an instance it
    binds like any function (``__get__``), so ``model.fit(data)`` type-checks
    without ``self``.  The bound method has no ``.fingerprint`` of its own;
    use ``zentrack.fingerprint(model.fit, data)`` or
    ``Model.fit.fingerprint(model, data)``.
    """

    __zentrack_step__: StepSpec

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def fingerprint(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Return the call's fingerprint without running the step."""
        ...

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Step[P, R_co]: ...
    @overload
    def __get__(
        self: Step[Concatenate[T, P2], R], instance: T, owner: type[Any] | None = None, /
    ) -> BoundStep[P2, R]: ...



class BoundStep(Protocol[P, R_co]):
    """A step method read through an instance: called without ``self``."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...



class StepDecorator(Protocol):
    """What ``@step(...)`` with options returns."""

    @overload
    def __call__(self, target: C, /) -> C: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, target: Callable[P, R], /) -> Step[P, R]: ...



def _no_plan(*args: Any, **kwargs: Any) -> None:
    """Stands in for a step without a generated encoder (see ``ParamEncoder.plan``)."""
    return None



def _step_name(target: Any, name: str | None) -> str:
    if name is None:
        name = str(target.__name__)
        if not name.isidentifier():
            raise ValueError(
                f"@step cannot name {target!r:.80} after its __name__ {name!r}; give it a "
                "name with @step(name=...)."
            )
    check_name("@step(name=...)", name)
    return name



def _decorate_function(
    fn: Callable[..., Any],
    name: str,
    version: str | None,
    cache: bool,
    params: Iterable[str] | None,
    ignore: Iterable[str],
) -> Callable[..., Any]:
    raw = inspect.signature(fn)
    first = next(iter(raw.parameters), None)
    drop_self = first in _SELF_NAMES and "." in fn.__qualname__
    inspected = callable_signature(fn, drop_self=drop_self)
    signature = Signature(inspected)
    declared = frozenset(params) if params is not None else None
    unknown = (declared or frozenset()).union(ignore) - set(raw.parameters)
    if unknown:
        raise ValueError(
            f"Step {name!r}: {sorted(unknown)} in params=/ignore= are not arguments of "
            f"{fn.__qualname__}{raw}; fix the names."
        )
    params_class = make_params_class(
        name,
        params_class_name(name),
        [n for n in signature.names if declared is None or n in declared],
        signature.defaults,
    )
    params_class.__module__ = fn.__module__
    params_class.__qualname__ = f"{fn.__qualname__}.Params"
    spec = StepSpec(
        fn,
        name=name,
        version=version,
        cache=cache,
        signature=signature,
        declared=declared,
        ignored=frozenset(ignore),
        is_class=False,
        params_class=params_class,
        inspected=inspected,
    )
    encode = spec.encoder.encode_call
    general = spec.encoder.encode_general
    plan = spec.encoder.plan or _no_plan

    if drop_self:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = _get_run() or _context.lone_run
            if run is not None:
                return call_in_run(spec, fn, args, kwargs, run, 1)
            try:  # spec.encoder.encode_call inlined: a call layer less on the hot path
                encoded = plan(*args[1:], **kwargs)
            except (TypeError, ValueError):
                encoded = None
            canonical, exact, inputs = encoded or general(args[1:], kwargs)
            return track(spec, fn, args, kwargs, canonical, exact, inputs)  # no *: a plain call

        def prospect(*args: Any, **kwargs: Any) -> Prospect:
            return prospect_of(spec, *encode(args[1:], kwargs))

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = _get_run() or _context.lone_run
            if run is not None:
                return call_in_run(spec, fn, args, kwargs, run, 0)
            try:  # spec.encoder.encode_call inlined: a call layer less on the hot path
                encoded = plan(*args, **kwargs)
            except (TypeError, ValueError):
                encoded = None
            canonical, exact, inputs = encoded or general(args, kwargs)
            return track(spec, fn, args, kwargs, canonical, exact, inputs)  # no *: a plain call

        def prospect(*args: Any, **kwargs: Any) -> Prospect:
            return prospect_of(spec, *encode(args, kwargs))

    def fingerprint_of(*args: Any, **kwargs: Any) -> str:
        """Return the fingerprint of this call without running the step."""
        return prospect(*args, **kwargs).fingerprint

    spec.prospect = prospect
    setattr(wrapper, SPEC_ATTR, spec)
    wrapper.fingerprint = fingerprint_of  # type: ignore[attr-defined]
    wrapper.Params = params_class  # type: ignore[attr-defined]
    return wrapper



def _key_instance(spec: StepSpec, instance: Any, run: RunState, key: str) -> str:
    """Give a class-step instance its config key in ``run``, and its config entry.

    The mark ``(run id, key, stand-in)`` left on the instance keeps the key for
    its later calls in the run; the stand-in is ``None`` here (see
    ``_decorate_class``'s ``join_run`` for instances that get one).
    """
    _, exact = instance_texts(spec, instance)
    run.entries[key] = (spec.source, exact)
    with contextlib.suppress(AttributeError):
        object.__setattr__(instance, _KEY_ATTR, (run.id, key, None))
    return key



def _entry_name(cls: type, entry: str | None) -> str:
    if entry is not None:
        if not callable(getattr(cls, entry, None)):
            raise ValueError(f"Step class {cls.__qualname__} has no method {entry!r} (entry=).")
        return entry
    for candidate in ("run", "__call__"):
        if candidate in dir(cls) and callable(getattr(cls, candidate)):
            if candidate == "__call__" and cls.__call__ is type.__call__:
                continue
            return candidate
    raise ValueError(
        f"Step class {cls.__qualname__} has no run() or __call__() method to track; "
        "add one, or name the entry point with @step(entry='method_name')."
    )



def _decorate_class(
    cls: C,
    name: str,
    version: str | None,
    cache: bool,
    entry: str | None,
    ignore: Iterable[str],
) -> C:
    init: Callable[..., None] = cls.__init__  # type: ignore[misc]
    if init is object.__init__:  # no constructor of its own: a step without params
        inspected = inspect.Signature()
    else:
        inspected = callable_signature(init, drop_self=True)
    init_signature = Signature(inspected)
    field_names = list(init_signature.names)
    if init_signature.var_positional is not None:
        raise ValueError(
            f"Step class {cls.__qualname__}: __init__ takes *{init_signature.var_positional}, "
            "which cannot be named parameters; use keyword arguments."
        )
    if init_signature.var_keyword is not None:
        field_names.append(init_signature.var_keyword)
    params_class = make_params_class(name, "Params", field_names, init_signature.defaults)
    params_class.__module__ = cls.__module__
    params_class.__qualname__ = f"{cls.__qualname__}.Params"

    entry_name = _entry_name(cls, entry)
    method = getattr(cls, entry_name)
    spec = StepSpec(
        cls,
        name=name,
        version=version,
        cache=cache,
        signature=init_signature,
        declared=None,
        ignored=frozenset(ignore),
        is_class=True,
        params_class=params_class,
        inspected=inspected,
    )
    entry_signature = Signature(callable_signature(method, drop_self=True))
    spec.entry_signature = entry_signature
    digests_of = spec.compile_inputs_plan(entry_signature) or _no_plan
    spec.entry_digests = digests_of

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        run = _get_run() or _context.lone_run
        key = None
        if run is not None:
            key = run.next_key(name)
            override = run.overrides.get(key)
            if override:
                args, kwargs = apply_override(spec.inspected, args, kwargs, override)
        try:
            values = check_params(name, init_signature.bind(args, kwargs))
        except TypeError as exc:  # a bad call of the user's: their line, not ours, matters
            __tracebackhide__ = True
            raise about_callers_line(exc.with_traceback(None)) from None
        object.__setattr__(self, "params", params_class(**values))
        if run is not None and key is not None:
            _key_instance(spec, self, run, key)
        init(self, *args, **kwargs)

    def configured(instance: Any, override: Mapping[str, Any]) -> Any:
        """``instance`` itself if a config's args leave its params as they are, else a stand-in.

        The stand-in is a shallow copy of the instance (so attributes set after
        construction are kept) on which ``__init__`` runs again with the
        instance's params overridden by the config's args, exactly as a
        constructor call inside the run would have received them.  The
        instance itself is left as it is.
        """
        frozen = instance.params
        given = {n: copy_value(getattr(frozen, n)) for n in init_signature.names}
        if init_signature.var_keyword is not None:
            given[init_signature.var_keyword] = copy_value(
                getattr(frozen, init_signature.var_keyword)
            )
        bound = inspect.BoundArguments(spec.inspected, given)
        args, kwargs = apply_override(spec.inspected, bound.args, bound.kwargs, override)
        params = params_class(**check_params(name, init_signature.bind(args, kwargs)))
        canonical, _, _ = spec.encoder.encode(
            {n: getattr(params, n) for n in spec.signature.all_names}
        )
        if canonical == instance_texts(spec, instance)[0]:
            return instance
        standin = copy.copy(instance)
        with contextlib.suppress(AttributeError):
            object.__setattr__(standin, INSTANCE_ATTR, None)
        object.__setattr__(standin, "params", params)
        init(standin, *args, **kwargs)
        return standin

    def join_run(instance: Any, run: RunState) -> tuple[str, str, Any]:
        """Key the first call in ``run`` of an instance built outside it.

        A config run's args for that key apply through a stand-in (see
        :func:`configured`), which the instance's later calls in the run reuse.
        """
        key = run.next_key(name)
        override = run.overrides.get(key)
        target = configured(instance, override) if override else instance
        _key_instance(spec, target, run, key)
        mark = (run.id, key, None if target is instance else target)
        with contextlib.suppress(AttributeError):
            object.__setattr__(instance, _KEY_ATTR, mark)
        return mark

    @functools.wraps(method)
    def tracked_entry(self: Any, *args: Any, **kwargs: Any) -> Any:
        # the instance's cached texts read here: a call less on the hot path
        canonical, exact = getattr(self, INSTANCE_ATTR, None) or instance_texts(spec, self)
        run = _get_run() or _context.lone_run
        if run is None:
            try:  # the inputs' digests text at once; anything unusual: the general route
                digests = digests_of(*args, **kwargs)
            except (TypeError, ValueError):
                digests = None
            if digests is not None:
                return track(spec, method, (self, *args), kwargs, canonical, exact, digests)
        inputs = entry_signature.bind(args, kwargs)
        if spec.ignored:
            inputs = {k: v for k, v in inputs.items() if k not in spec.ignored}
        if run is None:
            return track(spec, method, (self, *args), kwargs, canonical, exact, inputs)
        mark = getattr(self, _KEY_ATTR, None)
        if mark is None or mark[0] != run.id:
            mark = join_run(self, run)
        target = self
        if mark[2] is not None:  # built before a config run that changes its args
            target = mark[2]
            canonical, exact = instance_texts(spec, target)
        return track(
            spec, method, (target, *args), kwargs, canonical, exact, inputs, (run.id, mark[1])
        )

    def prospect(self: Any, *args: Any, **kwargs: Any) -> Prospect:
        canonical, exact = instance_texts(spec, self)
        inputs = entry_signature.bind(args, kwargs)
        inputs = {k: v for k, v in inputs.items() if k not in spec.ignored}
        return prospect_of(spec, canonical, exact, inputs)

    spec.prospect = prospect
    cls.__init__ = __init__  # type: ignore[misc]
    setattr(cls, entry_name, tracked_entry)
    setattr(cls, SPEC_ATTR, spec)
    cls.Params = params_class  # type: ignore[attr-defined]
    return cls



@overload
def step(fn: C, /) -> C: ...  # type: ignore[overload-overlap]

@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...

@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    cache: bool = True,
    params: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    entry: str | None = None,
) -> StepDecorator: ...

def step(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    cache: bool = True,
    params: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    entry: str | None = None,
) -> Any:
    """Track every call of a function, method or class as an MLMD Execution.

    Args:
        fn: the function or class (given by the bare ``@step`` form).
        name: the step's name in the store (default: ``__name__``); no ``#``,
            which marks repeated calls in config keys (``trainer#2``).
        version: replaces the code digest in the fingerprint: bump it to
            invalidate cached results by hand, keep it to survive refactors.
        cache: ``False`` never serves this step from the cache.
        params: function steps only: the argument names that are parameters
            (their values must be of a tracked type); the rest are inputs.
            Default: every argument whose value is of a tracked type.
        ignore: argument names left out of the fingerprint and the record.
        entry: class steps only: the tracked method (default ``run``, else
            ``__call__``).

    Returns:
        The function wrapped (same signature, plus ``.fingerprint(...)``), or
        the class patched in place (``__init__`` freezes its keyword arguments
        into ``self.params``; the entry point is tracked).
    """
    if version is not None and not isinstance(version, str):
        version = str(version)

    def decorate(target: Any) -> Any:
        if not callable(target):
            raise TypeError(
                f"@step decorates functions, methods and classes (got {target!r:.80} that is "
                f"a {type(target).__qualname__})."
            )
        if hasattr(target, SPEC_ATTR) and not isinstance(target, type):
            return target
        if not hasattr(target, "__qualname__") or not hasattr(target, "__module__"):
            raise TypeError(
                f"@step needs a function or class defined with def/class (got {target!r:.80}); "
                "wrap it in a def so zentrack can name and fingerprint it."
            )
        step_name = _step_name(target, name)
        if isinstance(target, type):
            if params is not None:
                raise ValueError(
                    f"Step class {target.__qualname__}: params= is for function steps; every "
                    "__init__ argument of a class step is a parameter."
                )
            return _decorate_class(target, step_name, version, cache, entry, ignore)
        if entry is not None:
            raise ValueError("@step(entry=...) is for class steps only.")
        return _decorate_function(target, step_name, version, cache, params, ignore)

    return decorate if fn is None else decorate(fn)



def describe_call(target: Any, /, *args: Any, **kwargs: Any) -> Prospect:
    """Describe ``target(*args, **kwargs)`` (or ``instance.run(...)``) without running it."""
    if inspect.ismethod(target) and spec_of(target.__func__) is not None:
        return describe_call(target.__func__, target.__self__, *args, **kwargs)
    spec = spec_of(target)
    if spec is not None and not spec.is_class:
        return spec.prospect(*args, **kwargs)
    spec = spec_of(type(target))
    if spec is not None:
        return spec.prospect(target, *args, **kwargs)
    raise TypeError(
        f"Expected a function decorated with @step or an instance of a step class "
        f"(got {target!r:.80} that is a {type(target).__qualname__})."
    )



def fingerprint_call(target: Any, /, *args: Any, **kwargs: Any) -> str:
    """Return the fingerprint a call would have, without running anything.

    ``target`` is a step function (``fingerprint(train, data, lr=0.1)``), a
    bound step method, or an instance of a step class
    (``fingerprint(trainer, data)``, for its entry point).
    """
    return describe_call(target, *args, **kwargs).fingerprint
