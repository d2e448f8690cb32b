"""Records of tracked calls: the journal line and the value users read.

A journal line is one compact JSON object; the hot path builds it with an
f-string from pieces it already has, and :func:`parse_line` reads it back.
Keys: ``v`` line version, ``id`` record id, ``fp`` fingerprint, ``p`` exact
params, ``i`` input digests, ``st`` state, ``t0``/``t1`` start and end in
nanoseconds since the epoch, ``run`` run id, ``m`` metrics, ``err`` error,
``step``, ``src`` source, ``code`` code digest, ``ver`` version.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from zentrack._step.values import untag

#: Journal line format version, written into every line as ``"v"``.
LINE_VERSION = 1


@attrs.frozen(repr=False)
class Record:
    """One tracked call as stored: a read-only view of an MLMD Execution.

    Attributes:
        step: the step's name.
        fingerprint: the call's fingerprint (sha256 hex).
        params: the parameters, with their exact values and types.
        state: ``"COMPLETE"``, ``"FAILED"``, ``"CACHED"``, ...
        metrics: metrics logged during the call.
        execution_id: the MLMD Execution id (``None`` until flushed).
        run_id: the pipeline run it belongs to, if any.
    """

    step: str
    fingerprint: str
    params: dict[str, Any]
    state: str
    metrics: dict[str, Any] = attrs.field(factory=dict)
    execution_id: int | None = None
    run_id: str | None = None
    record_id: str = ""
    source: str = ""
    inputs: dict[str, str] = attrs.field(factory=dict)
    code: str = ""
    version: str | None = None
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0
    cached_execution_id: int | None = None
    cached_record_id: str | None = None
    key: str | None = None
    code_parts: dict[str, str] = attrs.field(factory=dict)
    output_uri: str | None = None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return (
            f"Record(step={self.step!r}, state={self.state}, "
            f"fingerprint={self.fingerprint[:12]}…, execution_id={self.execution_id}, "
            f"params={{{params}}})"
        )


def parse_line(line: bytes | str) -> dict[str, Any]:
    """Decode a journal line, params restored to their exact types."""
    data: dict[str, Any] = json.loads(line)
    if data.get("v") != LINE_VERSION:
        raise ValueError(f"unsupported journal line version {data.get('v')!r}")
    return data


def record_from_line(data: dict[str, Any], execution_id: int | None = None) -> Record:
    """Build a :class:`Record` from a parsed journal line."""
    return Record(
        step=data["step"],
        fingerprint=data["fp"],
        params=untag(data["p"]) if data["p"] else {},
        state=data["st"],
        metrics=untag(data.get("m") or {}),
        execution_id=execution_id,
        run_id=data.get("run"),
        record_id=data["id"],
        source=data.get("src", ""),
        inputs=data.get("i") or {},
        code=data.get("code", ""),
        version=data.get("ver"),
        error=data.get("err"),
        started=data.get("t0", 0) / 1e9,
        ended=data.get("t1", 0) / 1e9,
        cached_record_id=data.get("cached"),
        key=data.get("key"),
        code_parts=data.get("cp") or {},
        output_uri=(data.get("out") or {}).get("uri"),
    )
