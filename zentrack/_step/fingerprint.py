"""Fingerprint scheme v1: what a cached result is keyed by, and where it is computed.

    sha256( "zentrack-fingerprint-v1" NUL
            step name NUL identity NUL
            canonical params NUL
            canonical inputs )

``identity`` is ``version:<v>`` when the step declares a version, else
``code:<digest of its normalised code>``.  ``canonical params`` is the
canonical JSON of the parameters (see :mod:`zentrack._step.values`);
``canonical inputs`` the canonical JSON of ``{input name: digest}``.
The full description, with golden values, is in ``docs/fingerprint.md``.

Computed in two parts: :func:`prime_step` digests a step's code and hashes
the fixed components once per step (again if a name its code uses is
rebound), and :func:`fingerprint` finishes it per call from the canonical
params and inputs (see :func:`zentrack._step.track.track`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from zentrack._step.code_digest import Binding, bindings_check, code_parts, combined_digest

SCHEME: Final = 1
_PREFIX: Final = b"zentrack-fingerprint-v1\0"


def identity(version: str | None, code: str) -> str:
    """Return the identity component: the declared version wins over code."""
    return f"version:{version}" if version is not None else f"code:{code}"


def step_hasher(name: str, identity_text: str) -> Any:
    """Return a sha256 object primed with the step's fixed components.

    The tracked call copies it and adds only what varies per call.
    """
    return hashlib.sha256(_PREFIX + f"{name}\0{identity_text}\0".encode())


def inputs_text(digests: Mapping[str, str]) -> str:
    """Return the canonical inputs component from ``{name: content digest}``.

    Byte-identical to the canonical JSON of the mapping, built by hand: it
    is on the hot path of every call with inputs.
    """
    if not digests:
        return "{}"
    return (
        "{"
        + ",".join(
            f"{encode_basestring_ascii(k)}:{encode_basestring_ascii(digests[k])}"
            for k in sorted(digests)
        )
        + "}"
    )


def fingerprint(primed: Any, params_canonical: str, inputs_canonical: str) -> str:
    """Finish a fingerprint from a primed hasher and the per-call components.

    :func:`zentrack._step.track.track` has these three lines inlined (the
    hot path); tests/test_fingerprint.py holds both to the golden digests.
    """
    h = primed.copy()
    h.update(f"{params_canonical}\0{inputs_canonical}".encode())
    digest: str = h.hexdigest()
    return digest


def prime_step(
    target: Callable[..., Any], name: str, version: str | None
) -> tuple[Any, Callable[[], bool] | None, dict[str, str], str]:
    """Digest a step's code (and what it uses) and hash the fixed components.

    Returns:
        ``(primed hasher, unchanged, code parts, code digest)``: ``unchanged()``
        tells whether the module-level names the code digest followed are
        still bound as they were (None: it followed none).
    """
    for _ in range(5):  # a name rebound while digesting: digest again
        found: list[Binding] = []
        parts = code_parts(target, bindings=found)
        unchanged = bindings_check(list({(id(b[0]), b[1]): b for b in found}.values()))
        if unchanged is None or unchanged():
            break
    code = combined_digest(parts)
    return step_hasher(name, identity(version, code)), unchanged, parts, code
