"""Fingerprint scheme v1: what a cached result is keyed by.

    sha256( "zentrack-fingerprint-v1" NUL
            step name NUL identity NUL
            canonical params NUL
            canonical inputs )

``identity`` is ``version:<v>`` when the step declares a version, else
``code:<digest of its normalised code>``.  ``canonical params`` is the
canonical JSON of the parameters (see :mod:`zentrack._step.values`);
``canonical inputs`` the canonical JSON of ``{input name: digest}``.
The full description, with golden values, is in ``docs/fingerprint.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Final

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
    """Finish a fingerprint from a primed hasher and the per-call components."""
    h = primed.copy()
    h.update(f"{params_canonical}\0{inputs_canonical}".encode())
    return str(h.hexdigest())
