"""The step-line checks written out for speed agree with the schema table, key by key."""

from __future__ import annotations

from typing import Any

import pytest

from zentrack._record.line import LINE_VERSION, validate_line

OUTPUT = {"uri": "u", "materializer": "m", "type": "t", "sha256": "s", "size": 1}
VALID: dict[str, Any] = {
    "v": LINE_VERSION, "id": "abc-1", "fp": "a" * 64, "p": {"lr": 0.1}, "st": "COMPLETE",
    "step": "train", "t0": 1, "t1": 2, "src": "m:f", "code": "c", "i": {"x": "d"},
    "m": {"acc": 0.9}, "run": "r1", "key": "train", "cp": {}, "ver": "1", "err": None,
    "cached": None, "out": OUTPUT,
}
VALUES: list[Any] = [
    None, 0, 1, -1, True, 1.5, "", "x", "x" * 201, "a\x00b", "COMPLETE", "CACHED", "BOGUS",
    "f" * 64, "F" * 64, [], ["x"], {}, {"a": "b"}, {"a": 1}, OUTPUT, {**OUTPUT, "size": "1"},
    {"uri": "u"}, 10**30,
]
ABSENT = object()


def outcome(data: dict[str, Any], inline: bool) -> str:
    try:
        validate_line(data, inline=inline)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__
    return "accepted"


@pytest.mark.parametrize("key", sorted(set(VALID) - {"v"}))
def test_every_value_of_every_key_gets_the_schemas_answer(key: str) -> None:
    """Each key set to each value, or left out: inline checks and schema loop agree."""
    cases = []
    for value in [*VALUES, ABSENT]:
        data = {k: v for k, v in VALID.items() if k != key}
        if value is not ABSENT:
            data[key] = value
        cases.append((repr(value)[:30], outcome(data, True), outcome(data, False)))
    disagreeing = [case for case in cases if case[1] != case[2]]
    assert disagreeing == []
    assert {"accepted"} < {case[2] for case in cases}  # some values pass, some do not


def test_the_valid_line_passes_both_ways() -> None:
    """The base line is valid, so each case above changes one key only."""
    assert (outcome(VALID, True), outcome(VALID, False)) == ("accepted", "accepted")
