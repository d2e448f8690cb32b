"""Signature analysis, argument binding and frozen parameter records.

The signature is analysed once, at decoration time; a tracked call then only
maps its arguments to names and fills in defaults (:meth:`Signature.bind`),
which is several times cheaper than :meth:`inspect.Signature.bind`.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Final

import attrs

from zentrack._step.values import (
    MISSING,
    NONFINITE_JSON,
    NOT_TRACKED,
    TAG_KEYS,
    TRACKED_TYPES_TEXT,
    a_described,
    as_tracked,
    canonical_json,
    copy_value,
    exact_params,
    float_repr,
    huge_int,
    int_repr,
    is_tracked,
    short_repr,
)
from zentrack.exceptions import ParameterTypeError

_EMPTY: Final = inspect.Parameter.empty


def param_type_error(step: str, name: str, value: object) -> ParameterTypeError:
    """Build the one error every non-tracked parameter value gets."""
    return ParameterTypeError(
        f"Step {step!r}: parameter {name!r} must be of a tracked type ({TRACKED_TYPES_TEXT}) "
        f"(got {short_repr(value)} that is {a_described(value)}); pass it as a plain "
        "value, or make it an input of the step's entry point instead of a parameter."
    )


def huge_int_error(step: str, name: str, value: int) -> ParameterTypeError:
    """The error of a parameter holding an int too long to write as text."""
    digits = sys.get_int_max_str_digits()
    return ParameterTypeError(
        f"Step {step!r}: parameter {name!r} holds an int of more than {digits} digits "
        f"({value.bit_length()} bits), which Python cannot write as text, so it cannot be "
        "fingerprinted or stored; pass it as a str, or make it an input of the step."
    )


#: Names of the generated code's own locals and globals start with this;
#: a signature with a parameter named so gets no generated code.
_GEN: Final = "_zt_"


def _def_header(signature: inspect.Signature) -> str | None:
    """The parameter list of a ``def`` with ``signature``'s names and kinds, defaults aside.

    None for a signature a generated function cannot copy (variadics are
    handled by :meth:`Signature._bind_variadic`; names that could clash with
    the generated code's).
    """
    parts: list[str] = []
    previous = None
    for p in signature.parameters.values():
        if p.name.startswith(_GEN) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            return None
        if previous is p.POSITIONAL_ONLY and p.kind is not p.POSITIONAL_ONLY:
            parts.append("/")
        if p.kind is p.KEYWORD_ONLY and previous is not p.KEYWORD_ONLY:
            parts.append("*")
        parts.append(p.name)
        previous = p.kind
    if previous is inspect.Parameter.POSITIONAL_ONLY:
        parts.append("/")
    return ", ".join(parts)


def compile_with_signature(
    signature: Signature, body: str, scope: dict[str, Any]
) -> Callable[..., Any]:
    """A function taking exactly ``signature``'s arguments (its defaults too), running ``body``.

    Python's own argument binding, in C, replaces a hand-written one on the
    hot path; a call it rejects raises ``TypeError`` as the function would.
    ``body`` reads the arguments by name and ``scope``'s names (all starting
    with ``_zt_``) as globals.
    """
    assert signature._header is not None
    source = f"def _zt_generated({signature._header}):\n" + "".join(
        f"    {line}\n" for line in body.splitlines()
    )
    namespace: dict[str, Any] = {"__builtins__": {}, **scope}
    exec(compile(source, "<zentrack generated binder>", "exec"), namespace)
    generated: Any = namespace["_zt_generated"]
    defaults, positional = signature.defaults, signature.positional
    generated.__defaults__ = tuple(defaults[n] for n in positional if n in defaults) or None
    generated.__kwdefaults__ = {
        n: defaults[n] for n in signature.names if n not in positional and n in defaults
    } or None
    return generated  # type: ignore[no-any-return]


class Signature:
    """A callable's parameters, pre-digested for fast binding.

    Args:
        signature: the signature to bind against (``self`` already removed).
    """

    __slots__ = (
        "_all_positional",
        "_bind_fast",
        "_bind_slow",
        "_header",
        "_keywords",
        "_simple",
        "defaults",
        "names",
        "positional",
        "var_keyword",
        "var_positional",
    )

    def __init__(self, signature: inspect.Signature) -> None:
        positional: list[str] = []
        names: list[str] = []
        defaults: dict[str, Any] = {}
        self.var_positional: str | None = None
        self.var_keyword: str | None = None
        for p in signature.parameters.values():
            if p.kind is p.VAR_POSITIONAL:
                self.var_positional = p.name
                continue
            if p.kind is p.VAR_KEYWORD:
                self.var_keyword = p.name
                continue
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                positional.append(p.name)
            names.append(p.name)
            if p.default is not _EMPTY:
                defaults[p.name] = p.default
        self.positional: tuple[str, ...] = tuple(positional)
        self.names: tuple[str, ...] = tuple(names)
        self.defaults: dict[str, Any] = defaults
        self._keywords = frozenset(
            p.name
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        self._bind_slow = signature.bind
        self._simple = self.var_positional is None and self.var_keyword is None
        #: len(positional) when every name is positional, else -1 (see :meth:`bind`).
        self._all_positional = len(positional) if len(positional) == len(names) else -1
        #: ``def`` header of a function with this signature (see :func:`compile_with_signature`).
        self._header = _def_header(signature) if self._simple else None
        self._bind_fast: Callable[..., dict[str, Any]] | None = None
        if self._header is not None:
            entries = ", ".join(f"{encode_basestring_ascii(n)}: {n}" for n in names)
            self._bind_fast = compile_with_signature(self, f"return {{{entries}}}", {})

    @property
    def all_names(self) -> tuple[str, ...]:
        """Every name :meth:`bind` returns: named parameters, then variadic ones."""
        extra = tuple(n for n in (self.var_positional, self.var_keyword) if n is not None)
        return self.names + extra

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Map a call's arguments to parameter names, defaults applied.

        ``*args`` become one tuple under their own name and ``**kwargs`` one
        dict.  A call the function itself would reject raises the same
        ``TypeError`` Python gives, before anything runs.
        """
        fast = self._bind_fast
        if fast is not None:
            try:  # Python binds; a call it rejects gets inspect's message below
                return fast(*args, **kwargs)
            except TypeError:
                pass
        if self._simple:
            count = len(args)
            if count == self._all_positional and not kwargs:  # run(x): every name given
                return dict(zip(self.positional, args, strict=True))
            if count > len(self.positional) or (kwargs and not kwargs.keys() <= self._keywords):
                self._bind_slow(*args, **kwargs)  # raises the interpreter's TypeError
            bound = self.defaults.copy()
            if count:
                if kwargs and not kwargs.keys().isdisjoint(self.positional[:count]):
                    self._bind_slow(*args, **kwargs)
                bound.update(zip(self.positional, args, strict=False))
            if kwargs:
                bound.update(kwargs)
            if len(bound) != len(self.names):
                self._bind_slow(*args, **kwargs)
            return bound
        return self._bind_variadic(args, kwargs)

    def _bind_variadic(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        positional = self.positional
        if len(args) > len(positional) and self.var_positional is None:
            self._bind_slow(*args, **kwargs)
        bound = dict(zip(positional, args, strict=False))  # extra args checked above
        extra: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in bound or key not in self._keywords:
                if self.var_keyword is None or key in bound:
                    self._bind_slow(*args, **kwargs)
                extra[key] = value
            else:
                bound[key] = value
        for key, default in self.defaults.items():
            if key not in bound:
                bound[key] = default
        if len(bound) < len(self.names):
            self._bind_slow(*args, **kwargs)
        if self.var_positional is not None:
            bound[self.var_positional] = tuple(args[len(positional) :])
        if self.var_keyword is not None:
            bound[self.var_keyword] = extra
        return bound


def params_class_name(step: str) -> str:
    """The ``__name__`` of a function step's Params class, built from the step's name.

    attrs compiles code that spells the class name, so it must be an
    identifier: ``__name__`` will not do (a lambda's is ``<lambda>``), and
    a step name may hold any printable character.  Anything outside
    ``[A-Za-z0-9_]`` becomes ``_``; a leading digit gets a ``_`` before it.
    """
    stem = re.sub(r"[^A-Za-z0-9_]", "_", step)
    return f"{'_' if stem[:1].isdigit() else ''}{stem}_Params"


def make_params_class(
    step: str, class_name: str, names: Iterable[str], defaults: Mapping[str, Any]
) -> type:
    """Build the frozen, slotted attrs class holding one step's parameters.

    Fields are keyword-only, in signature order, with the signature's defaults;
    ``attrs.asdict`` and ``attrs.evolve`` work on its instances as usual.
    """

    def _validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is NOT_TRACKED:
            raise param_type_error(step, attribute.name, value)

    def _field(name: str) -> Any:
        def convert(value: Any) -> Any:
            plain = as_tracked(value)
            if plain is NOT_TRACKED:
                raise param_type_error(step, name, value)
            return plain

        return attrs.field(
            default=defaults.get(name, attrs.NOTHING),
            kw_only=True,
            converter=convert,
            validator=_validate,
        )

    fields = {name: _field(name) for name in names}
    cls = attrs.make_class(class_name, fields, frozen=True, slots=True)
    cls.__module__ = __name__
    return cls


def check_params(step: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every value as a parameter and return private copies."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        plain = as_tracked(value)
        if plain is NOT_TRACKED:
            raise param_type_error(step, name, value)
        huge = huge_int(plain)
        if huge is not None:
            raise huge_int_error(step, name, huge)
        checked[name] = copy_value(plain)
    return checked


class ParamEncoder:
    """Splits a call into parameters and inputs and encodes the params.

    One pass over the names in sorted order builds the canonical text (the
    hot path of a tracked call): scalars are encoded inline, defaults that
    are scalars were encoded at decoration time, and only calls with
    containers take the slower exact-form path.

    Args:
        step: the step's name, for errors.
        signature: the signature calls are bound against.
        declared: names that must be parameters (``None``: decide by type).
        ignored: names left out of both.
    """

    __slots__ = (
        "_fixed_inputs",
        "_order",
        "_plan",
        "_required",
        "_strict",
        "_tag_named",
        "signature",
        "step",
    )

    def __init__(
        self,
        step: str,
        signature: Signature,
        declared: frozenset[str] | None,
        ignored: frozenset[str],
    ) -> None:
        kept = [n for n in signature.all_names if n not in ignored]
        candidates = kept if declared is None else [n for n in kept if n in declared]
        self.step = step
        self.signature = signature
        defaults = signature.defaults
        self._order = tuple(
            (n, encode_basestring_ascii(n) + ":", self._default_text(n, defaults))
            for n in sorted(candidates)
        )
        self._fixed_inputs = tuple(n for n in kept if n not in candidates)
        self._strict = declared is not None
        self._required = tuple(n for n in signature.names if n not in defaults)
        # A lone parameter named like a tag needs the exact form's wrapping.
        self._tag_named = bool(TAG_KEYS.intersection(candidates))
        self._plan = self._compile_plan(signature) if not self._tag_named else None

    def _compile_plan(self, signature: Signature) -> Callable[..., Any] | None:
        """Generate this signature's encoder for calls whose params are all scalars.

        It takes the call's arguments as the step does (Python binds them) and
        returns what :meth:`_encode` returns, byte for byte, or None when a
        value needs the general route (a container, a NumPy scalar, a
        non-tracked value under ``params=``).  Per parameter, in sorted
        order: the default object itself -> its text encoded at decoration;
        an int, float, str, bool or None -> its text inline; a value of
        another type -> an input, as :meth:`_encode` decides.
        """
        if signature._header is None:
            return None
        scope: dict[str, Any] = {  # repr() is int.__repr__/float.__repr__ on exact types, faster
            "_zt_ir": repr,
            "_zt_fr": repr,
            "_zt_es": encode_basestring_ascii,
            "_zt_nf": NONFINITE_JSON,
        }
        lines = ["_zt_in = {}"]
        parts = []
        for i, (name, prefix, default_text) in enumerate(self._order):
            key, part = f"_zt_k{i}", f"_zt_p{i}"
            scope[key] = "," + prefix
            parts.append(part)
            checks = [
                f"if _zt_y is _zt_int: {part} = f'{{{key}}}{{{name}}}'",  # an int's str is its repr
                "elif _zt_y is _zt_float:",
                f"    {part} = _zt_fr({name})",
                f"    if {part}[-1] in 'nf': {part} = _zt_nf[{part}]",
                f"    {part} = f'{{{key}}}{{{part}}}'",
                f"elif _zt_y is _zt_str: {part} = {key} + _zt_es({name})",
                f"elif _zt_y is _zt_bool: {part} = {key} + ('true' if {name} else 'false')",
                f"elif {name} is None: {part} = {key} + 'null'",
            ]
            if self._strict:
                checks.append("else: return None")
            else:
                checks += [
                    "elif _zt_y in _zt_containers or _zt_y.__module__ == 'numpy': return None",
                    "else:",
                    f"    {part} = ''",
                    f"    _zt_in[{encode_basestring_ascii(name)}] = {name}",
                ]
            if default_text is not None:
                scope[f"_zt_d{i}"] = signature.defaults[name]
                scope[f"_zt_t{i}"] = "," + default_text
                lines += [f"if {name} is _zt_d{i}: {part} = _zt_t{i}", "else:"]
                lines += [f"    _zt_y = _zt_type({name})", *(f"    {c}" for c in checks)]
            else:
                lines += [f"_zt_y = _zt_type({name})", *checks]
        lines += [f"_zt_in[{encode_basestring_ascii(n)}] = {n}" for n in self._fixed_inputs]
        joined = "".join(f"{{{part}}}" for part in parts)  # f-strings: one allocation each
        lines += [f"_zt_c = f'{joined}'", "_zt_c = f'{{{_zt_c[1:]}}}'"]
        lines.append("return _zt_c, _zt_c, _zt_in")
        scope.update(
            _zt_type=type,
            _zt_int=int,
            _zt_float=float,
            _zt_str=str,
            _zt_bool=bool,
            _zt_containers=(list, tuple, dict),
        )
        return compile_with_signature(signature, "\n".join(lines), scope)

    @staticmethod
    def _default_text(name: str, defaults: Mapping[str, Any]) -> str | None:
        """Pre-encode an immutable scalar default; containers stay per call."""
        if name not in defaults:
            return None
        value = defaults[name]
        if type(value) in (int, float, str, bool, type(None)):
            return encode_basestring_ascii(name) + ":" + canonical_json(value)
        return None

    def encode_call(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        """Bind a call and return ``(canonical params, exact params, inputs)``."""
        plan = self._plan
        if plan is not None:
            try:  # the common shapes; None or an error: the general route decides
                encoded = plan(*args, **kwargs)
            except (TypeError, ValueError):
                encoded = None
            if encoded is not None:
                return encoded  # type: ignore[no-any-return]
        return self.encode_general(args, kwargs)

    @property
    def plan(self) -> Callable[..., tuple[str, str, dict[str, Any]] | None] | None:
        """The generated encoder of all-scalar calls (see :meth:`_compile_plan`), if any.

        Called with the step's own arguments; None, ``TypeError`` or
        ``ValueError``: use :meth:`encode_general`.
        """
        return self._plan

    def encode_general(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        """:meth:`encode_call` without the generated encoder: any call, any value."""
        signature = self.signature
        if (
            not signature._simple
            or len(args) > len(signature.positional)
            or (kwargs and not kwargs.keys() <= signature._keywords)
        ):
            return self.encode(signature.bind(args, kwargs))
        count = len(args)
        positional = signature.positional
        if count == 0:
            given = {}
        elif count == 1:  # the common shapes skip the cost of zip()
            given = {positional[0]: args[0]}
        elif count == 2:
            given = {positional[0]: args[0], positional[1]: args[1]}
        else:
            given = dict(zip(positional, args, strict=False))
        if kwargs:
            if given and not kwargs.keys().isdisjoint(given):
                signature._bind_slow(*args, **kwargs)  # "multiple values" TypeError
            given.update(kwargs)
        for name in self._required:
            if name not in given:
                signature._bind_slow(*args, **kwargs)  # "missing argument" TypeError
        return self._encode(given, signature.defaults)

    def encode(self, bound: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """Return ``(canonical params, exact params, inputs)`` of a bound call."""
        return self._encode(bound, bound)

    def _encode(
        self, given: Mapping[str, Any], defaults: Mapping[str, Any]
    ) -> tuple[str, str, dict[str, Any]]:
        try:
            parts = []
            inputs: dict[str, Any] = {}
            converted: dict[str, Any] = {}
            containers = False
            for name, prefix, default_text in self._order:
                value = given.get(name, MISSING)
                if value is MISSING:
                    if default_text is not None:
                        parts.append(default_text)
                        continue
                    value = defaults[name]
                kind = type(value)
                if kind is float:
                    text = float_repr(value)
                    if text[-1] in "nf":
                        text = NONFINITE_JSON[text]
                elif kind is int:
                    text = int_repr(value)
                elif kind is str:
                    text = encode_basestring_ascii(value)
                elif kind is bool:
                    text = "true" if value else "false"
                elif value is None:
                    text = "null"
                elif is_tracked(value):
                    text = canonical_json(value)
                    containers = True
                else:
                    plain = as_tracked(value)  # NumPy scalars, also inside containers
                    if plain is not NOT_TRACKED:
                        converted[name] = plain
                        text = canonical_json(plain)
                        containers = True
                    elif self._strict:
                        raise param_type_error(self.step, name, value)
                    else:
                        inputs[name] = value
                        continue
                parts.append(prefix + text)
            for name in self._fixed_inputs:
                inputs[name] = given[name] if name in given else defaults[name]
            canonical = "{" + ",".join(parts) + "}"
            if not containers and not self._tag_named:
                return canonical, canonical, inputs
            params = {
                n: converted[n] if n in converted else given[n] if n in given else defaults[n]
                for n, _, _ in self._order
                if n not in inputs
            }
            return canonical, exact_params(params, canonical), inputs
        except ValueError:  # str() of an int over Python's digit limit
            for name, value in given.items():
                huge = huge_int(value)
                if huge is not None:
                    raise huge_int_error(self.step, name, huge) from None
            raise


def callable_signature(fn: Callable[..., Any], drop_self: bool) -> inspect.Signature:
    """Return ``fn``'s signature, without its first parameter for methods."""
    signature = inspect.signature(fn)
    if drop_self:
        params = list(signature.parameters.values())[1:]
        signature = signature.replace(parameters=params)
    return signature
