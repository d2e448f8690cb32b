"""What a step is, once decorated: its spec, and a call described without running it.

Everything that can be computed once per step is computed at decoration
time or, for the code digest, at the first call (:meth:`StepSpec.primed`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Final

import attrs

from zentrack._record.line import step_tail
from zentrack._step.content_hash import input_digest
from zentrack._step.fingerprint import fingerprint, inputs_text, prime_step
from zentrack._step.params import ParamEncoder, Signature, compile_with_signature
from zentrack._step.source_names import source_of
from zentrack._step.values import NONFINITE_JSON, int_repr

#: The namespaced attribute holding a step's :class:`StepSpec`.
SPEC_ATTR: Final = "__zentrack_step__"

INSTANCE_ATTR: Final = "__zentrack_params_text__"



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
        #: What a call of the tracked entry binds: the function's own signature,
        #: or a class step's entry method (its inputs), set by the decorator.
        self.entry_signature = signature
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
        self.state: tuple[Any, Callable[[], bool] | None] = (None, None)
        #: The journal line's step keys, after the per-call ones (see :func:`step_tail`).
        self.tail = ""
        #: A class step's entry: ``(*args, **kwargs) -> inputs' digests text`` or
        #: None (see :meth:`compile_inputs_plan`); set by the decorator.
        self.entry_digests: Callable[..., str | None] | None = None
        #: Argument names as JSON strings (see :meth:`inputs_canonical`).
        self._names_json: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<StepSpec {self.name!r} from {self.source}>"

    def primed(self) -> Any:
        """The sha256 state after the step's fixed components.

        Computed on first use, and again whenever a module-level name the code
        digest followed is rebound (a reloaded helper module, a constant
        changed in a notebook): a stale digest would serve a stale cache hit.
        """
        primed, unchanged = self.state
        if primed is None or (unchanged is not None and not unchanged()):
            primed, _ = self.prime()
        return primed

    def prime(self) -> tuple[Any, Callable[[], bool] | None]:
        """Digest the code (and what it uses) and hash the fixed components (see
        :func:`~zentrack._step.fingerprint.prime_step`); return ``state``."""
        primed, unchanged, parts, self.code = prime_step(self.target, self.name, self.version)
        self.code_parts = {k: v[:16] for k, v in parts.items()}
        self.tail = step_tail(self.name, self.source, self.code, self.code_parts, self.version)
        self.state = (primed, unchanged)
        return primed, unchanged

    def digest_inputs(self, inputs: Mapping[str, Any]) -> dict[str, str]:
        """Content digests of the call's inputs, by argument name."""
        return {key: input_digest(self.name, key, value) for key, value in inputs.items()}

    def inputs_canonical(self, inputs: Mapping[str, Any]) -> str:
        """``inputs_text(self.digest_inputs(inputs))``, byte for byte, on the hot path.

        An int or bool input (``t.run(1)``) is its own digest, ``"=1"``: it is
        written inline, and argument names are escaped once per step.  Nearly
        half of a class step's entry overhead went to the general route.
        """
        names = self._names_json
        parts = []
        for key in sorted(inputs) if len(inputs) > 1 else inputs:
            value = inputs[key]
            kind = type(value)
            if kind is int:
                digest = f'"={int_repr(value)}"'
            elif kind is bool:
                digest = '"=true"' if value else '"=false"'
            else:
                digest = encode_basestring_ascii(input_digest(self.name, key, value))
            name = names.get(key)
            if name is None:
                name = names[key] = encode_basestring_ascii(key)
            parts.append(f"{name}:{digest}")
        return "{" + ",".join(parts) + "}"

    def compile_inputs_plan(self, signature: Signature) -> Callable[..., str] | None:
        """Generate a class step entry's ``(*args, **kwargs) -> inputs_canonical(inputs)``.

        It takes the entry point's arguments (Python binds them, defaults
        applied; ``ignore=`` names left out) and returns the same text as
        :meth:`inputs_canonical`, byte for byte, with ints, bools and floats
        written inline; None for signatures with ``*args``/``**kwargs``.
        A ``TypeError`` or ``ValueError`` it raises: use the general route.
        """
        if signature._header is None:
            return None
        scope: dict[str, Any] = {
            "_zt_type": type,
            "_zt_int": int,
            "_zt_bool": bool,
            "_zt_float": float,
            "_zt_repr": repr,  # int.__repr__/float.__repr__ on exact types
            "_zt_nf": NONFINITE_JSON,
            "_zt_es": encode_basestring_ascii,
            "_zt_digest": input_digest,
            "_zt_step": self.name,
        }
        lines, parts = [], []
        names = sorted(n for n in signature.names if n not in self.ignored)
        for i, name in enumerate(names):
            key, part = f"_zt_k{i}", f"_zt_p{i}"
            escaped = encode_basestring_ascii(name)
            scope[key] = f"{escaped}:"
            scope[f"_zt_t{i}"], scope[f"_zt_f{i}"] = f'{escaped}:"=true"', f'{escaped}:"=false"'
            parts.append(part)
            lines += [  # f-strings: one allocation per part (an exact int formats as its repr)
                f"_zt_y = _zt_type({name})",
                f"if _zt_y is _zt_int: {part} = f'{{{key}}}\"={{{name}}}\"'",
                f"elif _zt_y is _zt_bool: {part} = _zt_t{i} if {name} else _zt_f{i}",
                "elif _zt_y is _zt_float:",
                f"    {part} = _zt_repr({name})",
                f"    if {part}[-1] in 'nf': {part} = _zt_nf[{part}]",
                f"    {part} = f'{{{key}}}\"={{{part}}}\"'",
                f"else: {part} = {key} + _zt_es(_zt_digest(_zt_step, {escaped}, {name}))",
            ]
        lines.append("return f'{{" + ",".join(f"{{{part}}}" for part in parts) + "}}'")
        return compile_with_signature(signature, "\n".join(lines), scope)

    def encode(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[
        str, str, dict[str, Any]
    ]:
        """Bind a function call: ``(canonical params, exact params, inputs)``."""
        return self.encoder.encode_call(args, kwargs)



def instance_texts(spec: StepSpec, instance: Any) -> tuple[str, str]:
    """A class-step instance's canonical and exact params, computed once per instance."""
    cached = getattr(instance, INSTANCE_ATTR, None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    frozen = instance.params
    bound = {name: getattr(frozen, name) for name in spec.signature.all_names}
    canonical, exact, _ = spec.encoder.encode(bound)
    with contextlib.suppress(AttributeError):  # __slots__ without room: recompute per call
        object.__setattr__(instance, INSTANCE_ATTR, (canonical, exact))
    return canonical, exact



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



@attrs.frozen
class Prospect:
    """A call described without running it: what its fingerprint is made of."""

    spec: StepSpec
    exact: str
    inputs: dict[str, str]
    fingerprint: str



def prospect_of(spec: StepSpec, canonical: str, exact: str, inputs: Mapping[str, Any]) -> Prospect:
    digests = spec.digest_inputs(inputs) if inputs else {}
    text = inputs_text(digests) if digests else "{}"
    return Prospect(spec, exact, digests, fingerprint(spec.primed(), canonical, text))



def spec_of(target: Any) -> StepSpec | None:
    """Return the spec of a step function, step class or step-class instance."""
    spec = getattr(target, SPEC_ATTR, None)
    return spec if isinstance(spec, StepSpec) else None
