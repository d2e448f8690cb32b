"""How records and runs are printed: aligned text for people, ``--json`` for programs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import zentrack as zt


def record_row(record: zt.Record) -> dict[str, Any]:
    """A record as a JSON object."""
    return {
        "execution_id": record.execution_id,
        "step": record.step,
        "state": record.state,
        "fingerprint": record.fingerprint,
        "run_id": record.run_id,
        "params": record.params,
        "metrics": record.metrics,
    }


def print_records(records: Sequence[zt.Record], as_json: bool) -> None:
    """One line per record (id, step, state, short fingerprint, params | metrics), or JSON."""
    if as_json:
        print_json([record_row(r) for r in records])
        return
    if not records:
        print("no records")
        return
    for r in records:
        params = " ".join(f"{k}={v!r}" for k, v in r.params.items())
        metrics = " ".join(f"{k}={v!r}" for k, v in r.metrics.items())
        line = f"{r.execution_id:>6}  {r.step:<16} {r.state:<9} {r.fingerprint[:12]}  {params}"
        print(line + (f"  | {metrics}" if metrics else ""))


def run_row(run: zt.Run[Any]) -> dict[str, Any]:
    """A run as a JSON object (times in seconds since the epoch), its steps keyed."""
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "state": run.state,
        "started": run.started or None,
        "ended": run.ended,
        "params": run.params,
        "metrics": run.run_metrics,
        "tags": run.tags,
        "note": run.notes,
        "config_path": str(run.config_path) if run.config_path else None,
        "error": run.error,
        "steps": [record_row(r) | {"key": r.key} for r in run.steps],
    }


def print_run_result(run: zt.Run[Any], as_json: bool) -> None:
    """What ``config run`` and ``rerun`` print: the new run's id, state and config."""
    if as_json:
        print_json(run_row(run))
    else:
        print(f"run {run.id}: {run.state}; config {run.config_path}")


def print_json(data: Any) -> None:
    """Indented JSON; values JSON cannot hold are written as their repr."""
    print(json.dumps(data, indent=2, default=repr))
