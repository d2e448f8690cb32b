"""Runs read back from their contexts: built only for the runs a listing returns.

A run's steps are read when first asked for, so a listing costs one read
for all runs, not one more per run.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from zentrack._record.line import RUN_KIND, parse_line, run_annotations
from zentrack._runs.lists import RunList
from zentrack._runs.matching import matcher
from zentrack._runs.pipeline import Run
from zentrack._step.values import untag
from zentrack._store.candidates import STARTED, Condition, Order
from zentrack._store.schema import PROP_RECORD

log = logging.getLogger("zentrack")
#: The order of ``zt.runs``: newest first.
NEWEST: Final = Order(STARTED, descending=True)


def run_from_context(store: Any, context: Any) -> Run[Any]:
    """The run an MLMD run context records; its steps are read when first asked for.

    Raises:
        ValueError: the context's record is not a valid run line (someone who
            can write the store wrote it).
    """
    props = context.custom_properties
    text = props[PROP_RECORD].string_value if PROP_RECORD in props else None
    return run_from_record(store, context.id, context.name, text)


def run_from_record(store: Any, context_id: int, run_id: str, text: str | None) -> Run[Any]:
    """The run a run context's record (its ``zentrack.record`` text) describes.

    Listing runs then costs one read for all of them, not one more per run:
    ``zt.runs(tags=...)`` and the viewer's list read steps only for the runs
    they use.

    Raises:
        ValueError: the record is not a valid run line (someone who can write
            the store wrote it).
    """
    data: dict[str, Any] = {"id": run_id, "st": "RUNNING", "pipeline": ""}
    if text is not None:
        data = parse_line(text)
        if data.get("kind") != RUN_KIND:
            raise ValueError("the record is not a run line")
    config = data.get("config")
    metrics, tags, note = run_annotations(data)
    return Run(
        id=run_id,
        pipeline=data.get("pipeline", ""),
        state=data.get("st", "RUNNING"),
        steps=None,
        loader=functools.partial(store.run_steps, context_id),
        params=untag(data.get("p") or {}),
        config_path=Path(config) if config else None,
        started=data.get("t0", 0) / 1e9,
        ended=data["t1"] / 1e9 if data.get("t1") else None,
        source=data.get("src", ""),
        error=data.get("err"),
        context_id=context_id,
        run_metrics=metrics,
        tags=tags,
        notes=note,
        config_sha256=data.get("config_sha256"),
    )


def read_runs(
    store: Any,
    pipeline: str | None = None,
    *,
    state: str | None = None,
    tags: Mapping[str, str | None] | None = None,
    conditions: Sequence[Condition] = (),
    order: Order = NEWEST,
    limit: int | None = None,
) -> RunList:
    """:func:`runs` without the flush first (a reader that flushes on its own terms).

    On SQLite the conditions narrow the runs read in SQL (then each run is
    confirmed exactly).  Without conditions, tags or another order, only the
    runs returned are built.  A stored run whose record is not a valid run
    line (someone who can write the store changed it) is left out, with one
    warning naming it.
    """
    wanted = dict(tags or {})
    matchers = [matcher(c) for c in conditions]
    rows = store.run_rows(pipeline, tuple(conditions))
    if not matchers and not wanted and order.key == STARTED:
        rows.sort(key=lambda row: (_started(row[2]), row[1]), reverse=order.descending)
        chosen: list[Run[Any]] = []
        for run in _built(store, rows):
            if state is None or run.state == state:
                chosen.append(run)
                if limit is not None and len(chosen) >= limit:
                    break
        return RunList(chosen)
    found = [
        run
        for run in _built(store, rows)
        if (state is None or run.state == state)
        and all(run.tags.get(k) == v for k, v in wanted.items())
        and all(m(run.params, run.run_metrics) for m in matchers)
    ]
    if order.key != STARTED and found:
        _warn_if_unordered(found, order.key)
    return RunList(order.sort(found, _run_facts)[:limit])


def _warn_if_unordered(found: Sequence[Run[Any]], key: str) -> None:
    """An order on a name no run has as a param or run metric would be silently no order."""
    if any(key in run.params or key in run.run_metrics for run in found):
        return
    steps = sorted({s.step for run in found[:20] for s in run.steps if key in s.metrics})
    hint = (
        f"it is a metric of step {steps[0]!r}: zt.find(step={steps[0]!r}, "
        f"order_by='-{key}') orders those calls, `zentrack compare --best {key}` the runs"
        if steps
        else "check the spelling (zt.runs()[0].params and .run_metrics list the names)"
    )
    log.warning(
        "zentrack: runs(): no run has a pipeline param or run metric %r, so order_by orders "
        "nothing (runs without the value come oldest first); %s.",
        key,
        hint,
    )


def _started(text: str | None) -> float:
    """A run record's start time, as :func:`run_from_record` reads it (0 when unreadable)."""
    try:
        t0 = json.loads(text).get("t0", 0) if text else 0
        return t0 / 1e9 if type(t0) is int else 0.0
    except (ValueError, AttributeError, RecursionError):
        return 0.0


def _built(store: Any, rows: Sequence[tuple[int, str, str | None]]) -> Iterator[Run[Any]]:
    """The runs of context rows, in order; unreadable ones left out with one warning."""
    unreadable = []
    for context_id, name, text in rows:
        try:
            yield run_from_record(store, context_id, name, text)
        except (ValueError, TypeError, AttributeError) as exc:
            unreadable.append(f"{name!r} ({exc})")
    if unreadable:
        log.warning(
            "zentrack: %d stored run(s) hold no valid zentrack run record and are left out: "
            "%s. Someone who can write the store changed them; inspect them with ml_metadata.",
            len(unreadable),
            "; ".join(unreadable[:3]) + ("; ..." if len(unreadable) > 3 else ""),
        )


def _run_facts(run: Run[Any]) -> tuple[Mapping[str, Any], Mapping[str, Any], float, Any]:
    return run.params, run.run_metrics, run.started, run.id
