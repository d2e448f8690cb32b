"""The ``@step`` decorator: functions, methods and classes.

One tracked call flows: bind arguments (:mod:`._params`) -> canonical params
(:mod:`._values`) -> fingerprint (:mod:`._fingerprint`) -> run -> one
journal line to the tracker (:mod:`._tracker`), which flushes to MLMD later.
Everything that can be computed once per step is computed at decoration
time or, for the code digest, at the first call.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring_ascii
from time import time_ns
from typing import Any, Final, ParamSpec, Protocol, TypeVar, overload

import attrs

from zentrack._cache.lineage import register as register_output
from zentrack._cache.outputs import cache_disabled
from zentrack._record import tracker as _tracker
from zentrack._runs import context as _context
from zentrack._runs.context import TRACKING_CODES, RunState, current_run
from zentrack._step.code_digest import Binding, bindings_check, code_parts, combined_digest
from zentrack._step.content_hash import input_digest
from zentrack._step.fingerprint import fingerprint, identity, inputs_text, step_hasher
from zentrack._step.params import (
    ParamEncoder,
    Signature,
    callable_signature,
    check_params,
    make_params_class,
    params_class_name,
)
from zentrack._step.source_names import source_of
from zentrack._step.values import SCALAR_TYPES, copy_value, exact_value, untag

_get_run = current_run.get
#: ``(run id, config key)`` of a step call that belongs to a pipeline run.
RunKey = tuple[str, str]
log = logging.getLogger("zentrack")

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
C = TypeVar("C", bound=type)

#: The namespaced attribute holding a step's :class:`StepSpec`.
SPEC_ATTR: Final = "__zentrack_step__"
_INSTANCE_ATTR: Final = "__zentrack_params_text__"
_KEY_ATTR: Final = "__zentrack_run_key__"
_SELF_NAMES: Final = ("self", "cls")


class Step(Protocol[P, R_co]):
    """What ``@step`` turns a function into, as type checkers see it."""

    __zentrack_step__: StepSpec

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def fingerprint(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Return the call's fingerprint without running the step."""
        ...


class StepDecorator(Protocol):
    """What ``@step(...)`` with options returns."""

    @overload
    def __call__(self, target: C, /) -> C: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, target: Callable[P, R], /) -> Step[P, R]: ...


def _no_prospect(*args: Any, **kwargs: Any) -> Prospect:
    raise TypeError("this step is not fully decorated yet")


class StepSpec:
    """Everything about one step that does not change between calls."""

    def __init__(
        self,
        target: Callable[..., Any],
        *,
        name: str,
        version: str | None,
        cache: bool,
        signature: Signature,
        declared: frozenset[str] | None,
        ignored: frozenset[str],
        is_class: bool,
        params_class: type,
        inspected: inspect.Signature,
    ) -> None:
        self.target = target
        self.name = name
        self.version = version
        self.cache = cache
        self.signature = signature
        self.declared = declared
        self.ignored = ignored
        #: The ``inspect`` signature behind ``signature`` (for config overrides).
        self.inspected = inspected
        self.encoder = ParamEncoder(
            name, signature, declared, frozenset() if is_class else ignored
        )
        self.is_class = is_class
        self.params_class = params_class
        #: ``module.QualName`` for configs and records (``__main__`` named by its
        #: importable name when it has one); never part of the fingerprint.
        self.source = source_of(target)
        self.code = ""
        #: Short digests of the step's code and of each helper it uses.
        self.code_parts: dict[str, str] = {}
        #: Describes a call without running it: ``(*args, **kwargs) -> Prospect``
        #: (class steps: ``(instance, *args, **kwargs)``).
        self.prospect: Callable[..., Prospect] = _no_prospect
        #: ``(sha256 state after the fixed components, check)``: the check tells
        #: whether the module-level names the code digest followed are still
        #: bound as they were (None: it followed none).  One attribute, so a
        #: thread never pairs one digest with another digest's check.
        self._state: tuple[Any, Callable[[], bool] | None] = (None, None)
        self._tail = ""

    def __repr__(self) -> str:
        return f"<StepSpec {self.name!r} from {self.source}>"

    def primed(self) -> Any:
        """The sha256 state after the step's fixed components.

        Computed on first use, and again whenever a module-level name the code
        digest followed is rebound (a reloaded helper module, a constant
        changed in a notebook): a stale digest would serve a stale cache hit.
        """
        primed, unchanged = self._state
        if primed is None or (unchanged is not None and not unchanged()):
            primed, _ = self._prime()
        return primed

    def _prime(self) -> tuple[Any, Callable[[], bool] | None]:
        """Digest the code (and what it uses) and hash the fixed components."""
        for _ in range(5):  # a name rebound while digesting: digest again
            found: list[Binding] = []
            parts = code_parts(self.target, bindings=found)
            unchanged = bindings_check(list({(id(b[0]), b[1]): b for b in found}.values()))
            if unchanged is None or unchanged():
                break
        self.code_parts = {k: v[:16] for k, v in parts.items()}
        self.code = combined_digest(parts)
        primed = step_hasher(self.name, identity(self.version, self.code))
        self._tail = (
            f',"step":{encode_basestring_ascii(self.name)},'
            f'"src":{encode_basestring_ascii(self.source)},"code":"{self.code}",'
            f'"cp":{json.dumps(self.code_parts, sort_keys=True)},'
            f'"ver":{json.dumps(self.version)}'
        )
        self._state = (primed, unchanged)
        return primed, unchanged

    def digest_inputs(self, inputs: Mapping[str, Any]) -> dict[str, str]:
        """Content digests of the call's inputs, by argument name."""
        return {key: input_digest(self.name, key, value) for key, value in inputs.items()}

    def encode(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[
        str, str, dict[str, Any]
    ]:
        """Bind a function call: ``(canonical params, exact params, inputs)``."""
        return self.encoder.encode_call(args, kwargs)


def _instance_texts(spec: StepSpec, instance: Any) -> tuple[str, str]:
    """A class-step instance's canonical and exact params, computed once per instance."""
    cached = getattr(instance, _INSTANCE_ATTR, None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    frozen = instance.params
    bound = {name: getattr(frozen, name) for name in spec.signature.all_names}
    canonical, exact, _ = spec.encoder.encode(bound)
    with contextlib.suppress(AttributeError):  # __slots__ without room: recompute per call
        object.__setattr__(instance, _INSTANCE_ATTR, (canonical, exact))
    return canonical, exact


def _track(
    spec: StepSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    canonical: str,
    exact: str,
    inputs: Mapping[str, Any],
    key: RunKey | None = None,
) -> Any:
    """Fingerprint, run and record one call: the hot path shared by all steps.

    Kept flat on purpose: every helper call here costs a measurable share of
    the few microseconds a tracked call may add (benchmarks/bench_hot_path.py).
    """
    tracker = _tracker._active or _tracker.active()
    primed, unchanged = spec._state
    if primed is None or (unchanged is not None and not unchanged()):
        primed, unchanged = spec._prime()  # first call, or a helper/constant was rebound
    digests = inputs_text(spec.digest_inputs(inputs)) if inputs else "{}"
    hasher = primed.copy()  # inlined _fingerprint.fingerprint(): the same bytes
    hasher.update(f"{canonical}\0{digests}".encode())
    fp: str = hasher.hexdigest()
    cache = tracker.outputs if spec.cache and tracker.cache else None
    if cache is not None and not cache_disabled():
        hit = cache.get(fp)
        if hit is not None:
            return _serve_hit(tracker, spec, fp, exact, digests, key, *hit)
    metrics: dict[str, Any] = {}  # filled by log_metrics(), found by its frame walk
    started = time_ns()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        state = "FAILED" if isinstance(exc, Exception) else "CANCELED"
        error = json.dumps(f"{type(exc).__qualname__}: {exc}"[:4000])
        tracker.record(
            f'{{"v":1,"id":"{tracker.id_prefix}{next(tracker.ids)}","fp":"{fp}","p":{exact},'
            f'"i":{digests},"st":"{state}","t0":{started},"t1":{time_ns()},"err":{error}'
            f"{_extra(metrics, key)}{spec._tail}}}\n"
        )
        raise
    if cache is not None and unchanged is not None and not unchanged():
        cache = None  # a name the digest followed was rebound mid-call: do not cache
    if cache is None:
        tracker.record(
            f'{{"v":1,"id":"{tracker.id_prefix}{next(tracker.ids)}","fp":"{fp}","p":{exact},'
            f'"i":{digests},"st":"COMPLETE","t0":{started},"t1":{time_ns()}'
            f"{_extra(metrics, key) if metrics or key is not None else ''}{spec._tail}}}\n"
        )
    else:
        ended = time_ns()
        record_id = f"{tracker.id_prefix}{next(tracker.ids)}"
        meta = cache.put(fp, result, record_id, spec.name, metrics)
        tracker.record(
            f'{{"v":1,"id":"{record_id}","fp":"{fp}","p":{exact},"i":{digests},'
            f'"st":"COMPLETE","t0":{started},"t1":{ended}{_output(meta)}'
            f"{_extra(metrics, key)}{spec._tail}}}\n"
        )
    if type(result) not in SCALAR_TYPES:
        register_output(result, fp)
    return result


def _output(meta: Mapping[str, Any] | None) -> str:
    """The ``out`` key of a journal line: where the call's output is cached."""
    if meta is None:
        return ""
    out = {k: meta[k] for k in ("uri", "materializer", "type", "sha256", "size")}
    return f',"out":{json.dumps(out)}'


def _serve_hit(
    tracker: _tracker.Tracker,
    spec: StepSpec,
    fp: str,
    exact: str,
    digests: str,
    key: RunKey | None,
    meta: dict[str, Any],
    value: Any,
) -> Any:
    """Return a cached output, recording the call as a CACHED execution."""
    now = time_ns()
    original = json.dumps(meta.get("record"))
    tracker.record(
        f'{{"v":1,"id":"{tracker.id_prefix}{next(tracker.ids)}","fp":"{fp}","p":{exact},'
        f'"i":{digests},"st":"CACHED","t0":{now},"t1":{now},"cached":{original}'
        f"{_output(meta)}{_extra(untag(meta.get('metrics') or {}), key)}{spec._tail}}}\n"
    )
    log.info("zentrack: cache hit for step %r (fingerprint %s…)", spec.name, fp[:12])
    if type(value) not in SCALAR_TYPES:
        register_output(value, fp)
    return value


TRACKING_CODES.add(_track.__code__)


def _extra(metrics: Mapping[str, Any], key: RunKey | None) -> str:
    """The optional keys of a journal line: run id, config key and metrics."""
    text = ""
    if key is not None:
        text = (
            f',"run":{encode_basestring_ascii(key[0])},"key":{encode_basestring_ascii(key[1])}'
        )
    return text + f',"m":{exact_value(dict(metrics))}' if metrics else text


def _apply_override(
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    override: Mapping[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Replace argument values by a config's args (a config takes precedence)."""
    bound = signature.bind(*args, **kwargs)
    for name, value in override.items():
        bound.arguments[name] = value
    return bound.args, bound.kwargs


def _call_in_run(
    spec: StepSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run: RunState,
    skip: int,
) -> Any:
    """A function step's call inside a pipeline run: keyed, maybe overridden."""
    key = run.next_key(spec.name)
    override = run.overrides.get(key)
    if override:
        own, kwargs = _apply_override(spec.inspected, args[skip:], kwargs, override)
        args = args[:skip] + own
    canonical, exact, inputs = spec.encoder.encode_call(args[skip:], kwargs)
    run.entries[key] = (spec.source, exact)
    return _track(spec, fn, args, kwargs, canonical, exact, inputs, (run.id, key))


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


def check_name(what: str, name: object) -> None:
    """Refuse names MLMD would truncate or mangle (NUL, control characters, bad UTF-8).

    ``#`` is refused too: a step's second call in a run is keyed ``name#2`` in
    the run's config, so a step named ``a#2`` would share a key with step
    ``a``'s second call (pipeline names follow the same rule).
    """
    ok = isinstance(name, str) and 0 < len(name) <= 200 and name.isprintable()
    if ok and isinstance(name, str):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            ok = False
    if not ok or (isinstance(name, str) and name.startswith("mlmd-struct::")):
        raise ValueError(
            f"{what} must be 1 to 200 printable characters, valid UTF-8, not starting "
            f"with 'mlmd-struct::' (got {name!r:.80}); choose a plain name."
        )
    if isinstance(name, str) and "#" in name:
        raise ValueError(
            f"{what} must not contain '#', which marks repeated calls in a run's config keys "
            f"(trainer#2 is step trainer's second call) (got {name!r:.80}); choose a name "
            "without '#'."
        )


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

    if drop_self:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = _get_run() or _context.lone_run
            if run is not None:
                return _call_in_run(spec, fn, args, kwargs, run, 1)
            return _track(spec, fn, args, kwargs, *encode(args[1:], kwargs))

        def prospect(*args: Any, **kwargs: Any) -> Prospect:
            return _prospect(spec, *encode(args[1:], kwargs))

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            run = _get_run() or _context.lone_run
            if run is not None:
                return _call_in_run(spec, fn, args, kwargs, run, 0)
            return _track(spec, fn, args, kwargs, *encode(args, kwargs))

        def prospect(*args: Any, **kwargs: Any) -> Prospect:
            return _prospect(spec, *encode(args, kwargs))

    def fingerprint_of(*args: Any, **kwargs: Any) -> str:
        """Return the fingerprint of this call without running the step."""
        return prospect(*args, **kwargs).fingerprint

    spec.prospect = prospect
    setattr(wrapper, SPEC_ATTR, spec)
    wrapper.fingerprint = fingerprint_of  # type: ignore[attr-defined]
    wrapper.Params = params_class  # type: ignore[attr-defined]
    return wrapper


@attrs.frozen
class Prospect:
    """A call described without running it: what its fingerprint is made of."""

    spec: StepSpec
    exact: str
    inputs: dict[str, str]
    fingerprint: str


def _prospect(spec: StepSpec, canonical: str, exact: str, inputs: Mapping[str, Any]) -> Prospect:
    digests = spec.digest_inputs(inputs) if inputs else {}
    text = inputs_text(digests) if digests else "{}"
    return Prospect(spec, exact, digests, fingerprint(spec.primed(), canonical, text))


def _key_instance(spec: StepSpec, instance: Any, run: RunState, key: str) -> str:
    """Give a class-step instance its config key in ``run``, and its config entry.

    The mark ``(run id, key, stand-in)`` left on the instance keeps the key for
    its later calls in the run; the stand-in is ``None`` here (see
    ``_decorate_class``'s ``join_run`` for instances that get one).
    """
    _, exact = _instance_texts(spec, instance)
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

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        run = _get_run() or _context.lone_run
        key = None
        if run is not None:
            key = run.next_key(name)
            override = run.overrides.get(key)
            if override:
                args, kwargs = _apply_override(spec.inspected, args, kwargs, override)
        values = check_params(name, init_signature.bind(args, kwargs))
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
        args, kwargs = _apply_override(spec.inspected, bound.args, bound.kwargs, override)
        params = params_class(**check_params(name, init_signature.bind(args, kwargs)))
        canonical, _, _ = spec.encoder.encode(
            {n: getattr(params, n) for n in spec.signature.all_names}
        )
        if canonical == _instance_texts(spec, instance)[0]:
            return instance
        standin = copy.copy(instance)
        with contextlib.suppress(AttributeError):
            object.__setattr__(standin, _INSTANCE_ATTR, None)
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
        canonical, exact = _instance_texts(spec, self)
        inputs = entry_signature.bind(args, kwargs)
        if spec.ignored:
            inputs = {k: v for k, v in inputs.items() if k not in spec.ignored}
        run = _get_run() or _context.lone_run
        if run is None:
            return _track(spec, method, (self, *args), kwargs, canonical, exact, inputs)
        mark = getattr(self, _KEY_ATTR, None)
        if mark is None or mark[0] != run.id:
            mark = join_run(self, run)
        target = self
        if mark[2] is not None:  # built before a config run that changes its args
            target = mark[2]
            canonical, exact = _instance_texts(spec, target)
        return _track(
            spec, method, (target, *args), kwargs, canonical, exact, inputs, (run.id, mark[1])
        )

    def prospect(self: Any, *args: Any, **kwargs: Any) -> Prospect:
        canonical, exact = _instance_texts(spec, self)
        inputs = entry_signature.bind(args, kwargs)
        inputs = {k: v for k, v in inputs.items() if k not in spec.ignored}
        return _prospect(spec, canonical, exact, inputs)

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


def spec_of(target: Any) -> StepSpec | None:
    """Return the spec of a step function, step class or step-class instance."""
    spec = getattr(target, SPEC_ATTR, None)
    return spec if isinstance(spec, StepSpec) else None



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
