"""Hypothesis strategies for tracked values, and an exact comparison helper.

``typed`` turns a value into a structure in which ``==`` is exact: it keeps
``1``, ``1.0`` and ``True`` apart, tuples apart from lists, tells ``-0.0``
from ``0.0`` and makes NaN equal to itself.
"""

from __future__ import annotations

import keyword
from typing import Any

from hypothesis import strategies as st

#: Any text, lone surrogates included (a valid ``str`` is a tracked value).
any_text = st.text(st.characters(codec=None, categories=None), max_size=30)

#: Dict keys, with the names the exact encoding uses as tags mixed in.
dict_keys = st.one_of(any_text, st.sampled_from(["__tuple__", "__dict__", "", "a.b"]))

#: Scalars of every tracked type, with the awkward values over-represented.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**90), max_value=2**90),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-7, 1 / 3, 1.0, float("nan"), float("inf"), -float("inf")]),
    any_text,
    st.sampled_from(["mlmd-struct::x", "a\\b", "nul\0byte", "ünïcødé ✓", "null", "1"]),
)

#: Every tracked value: scalars and lists, tuples and str-keyed dicts of them, nested.
tracked_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(dict_keys, children, max_size=4),
    ),
    max_leaves=12,
)

#: Python identifiers usable as keyword-argument (parameter) names.
param_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name)
)

#: A mapping of parameter names to tracked values, as a step call binds it.
param_mappings = st.dictionaries(param_names, tracked_values, max_size=6)


def typed(value: Any) -> Any:
    """Return a form of ``value`` whose ``==`` compares types and floats exactly."""
    kind = type(value)
    if kind is float:
        return ("float", repr(value))
    if kind is list or kind is tuple:
        return (kind.__name__, [typed(item) for item in value])
    if kind is dict:
        return ("dict", {key: typed(item) for key, item in value.items()})
    return (kind.__name__, value)
