"""Signature analysis, argument binding and frozen parameter records.

The signature is analysed once, at decoration time; a tracked call then only
maps its arguments to names and fills in defaults (:meth:`Signature.bind`),
which is several times cheaper than :meth:`inspect.Signature.bind`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from zentrack._values import TRACKED_TYPES_TEXT, copy_value, describe_type, is_tracked
from zentrack.exceptions import ParameterTypeError

_EMPTY: Final = inspect.Parameter.empty


def param_type_error(step: str, name: str, value: object) -> ParameterTypeError:
    """Build the one error every non-tracked parameter value gets."""
    return ParameterTypeError(
        f"Step {step!r}: parameter {name!r} must be of a tracked type ({TRACKED_TYPES_TEXT}) "
        f"(got {value!r:.80} that is a {describe_type(value)}); pass it as a plain value, "
        "or make it an input of the step's entry point instead of a parameter."
    )


class Signature:
    """A callable's parameters, pre-digested for fast binding.

    Args:
        signature: the signature to bind against (``self`` already removed).
    """

    __slots__ = (
        "_bind_slow",
        "_keywords",
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

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Map a call's arguments to parameter names, defaults applied.

        ``*args`` become one tuple under their own name and ``**kwargs`` one
        dict.  A call the function itself would reject raises the same
        ``TypeError`` Python gives, before anything runs.
        """
        positional = self.positional
        if len(args) > len(positional) and self.var_positional is None:
            self._bind_slow(*args, **kwargs)  # raises the interpreter's TypeError
        bound = dict(zip(positional, args))
        extra: dict[str, Any] | None = None
        for key, value in kwargs.items():
            if key in bound or key not in self._keywords:
                if self.var_keyword is None or key in bound:
                    self._bind_slow(*args, **kwargs)
                if extra is None:
                    extra = {}
                extra[key] = value
            else:
                bound[key] = value
        if len(bound) < len(self.names):
            for key, default in self.defaults.items():
                if key not in bound:
                    bound[key] = default
            if len(bound) < len(self.names):
                self._bind_slow(*args, **kwargs)
        if self.var_positional is not None:
            bound[self.var_positional] = tuple(args[len(positional) :])
        if self.var_keyword is not None:
            bound[self.var_keyword] = extra or {}
        return bound


def make_params_class(
    step: str, class_name: str, names: Iterable[str], defaults: Mapping[str, Any]
) -> type:
    """Build the frozen, slotted attrs class holding one step's parameters.

    Fields are keyword-only, in signature order, with the signature's defaults;
    ``attrs.asdict`` and ``attrs.evolve`` work on its instances as usual.
    """

    def _validate(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not is_tracked(value):
            raise param_type_error(step, attribute.name, value)

    fields = {
        name: attrs.field(
            default=defaults.get(name, attrs.NOTHING), kw_only=True, validator=_validate
        )
        for name in names
    }
    cls = attrs.make_class(class_name, fields, frozen=True, slots=True)
    cls.__module__ = __name__
    return cls


def check_params(step: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate every value as a parameter and return private copies."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if not is_tracked(value):
            raise param_type_error(step, name, value)
        checked[name] = copy_value(value)
    return checked


def split_arguments(
    bound: Mapping[str, Any],
    declared: frozenset[str] | None,
    ignored: frozenset[str],
    step: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a function call's bound arguments into parameters and inputs.

    Without a declaration, tracked values are parameters and the rest inputs;
    with one, the declared names must hold tracked values.
    """
    params: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    for name, value in bound.items():
        if name in ignored:
            continue
        if declared is None:
            if type(value) in _FAST_SCALARS or is_tracked(value):
                params[name] = value
            else:
                inputs[name] = value
        elif name in declared:
            if not is_tracked(value):
                raise param_type_error(step, name, value)
            params[name] = value
        else:
            inputs[name] = value
    return params, inputs


_FAST_SCALARS: Final = frozenset({int, float, str, bool, type(None)})


def callable_signature(fn: Callable[..., Any], drop_self: bool) -> inspect.Signature:
    """Return ``fn``'s signature, without its first parameter for methods."""
    signature = inspect.signature(fn)
    if drop_self:
        params = list(signature.parameters.values())[1:]
        signature = signature.replace(parameters=params)
    return signature
