"""Fingerprint scheme v1: what a cached result is keyed by.

    sha256( "zentrack-fingerprint-v1" NUL
            step name NUL identity NUL
            canonical params NUL
            canonical inputs )

``identity`` is ``version:<v>`` when the step declares a version, else
``code:<digest of its normalised code>``.  ``canonical params`` is the
canonical JSON of the parameters (see :mod:`zentrack._values`);
``canonical inputs`` the canonical JSON of ``{input name: digest}``.
The full description, with golden values, is in ``docs/fingerprint.md``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

from zentrack._values import canonical_json

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


def fingerprint(primed: Any, params_canonical: str, inputs: Mapping[str, str]) -> str:
    """Finish a fingerprint from a primed hasher, params text and input digests."""
    h = primed.copy()
    if inputs:
        h.update(f"{params_canonical}\0{canonical_json(dict(inputs))}".encode())
    else:
        h.update(f"{params_canonical}\0{{}}".encode())
    return str(h.hexdigest())
