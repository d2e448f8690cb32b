"""Pipeline runs as MLMD Contexts: written from run lines, changed by annotation lines.

A run's context is always written whole from its data (the run line, plus
the folded annotations under ``a``): MLMD's ``put_contexts`` replaces every
custom property of a context it updates, so a property left out would be
deleted.  :func:`set_run_properties` is that one rule, shared by the run
lines, the annotations and the reconciler marking dead runs FAILED.  An
updated context keeps its id (and so its executions and its parent).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from zentrack._record.line import merge_annotation, run_annotations, valid_annotation
from zentrack._step.values import untag
from zentrack._store.artifacts import nodes_by_external_ids
from zentrack._store.schema import (
    METRIC_PREFIX,
    PIPELINE_CONTEXT,
    PROP_CONFIG,
    PROP_ERROR,
    PROP_NOTE,
    PROP_PIPELINE,
    PROP_RECORD,
    PROP_STATE,
    RUN_CONTEXT,
    TAG_PREFIX,
    set_native,
)

log = logging.getLogger("zentrack")

#: Run states by how final they are: a replayed older line never wins.
_RUN_ORDER: Final = {"RUNNING": 0, "COMPLETE": 1, "CANCELED": 1, "FAILED": 1}
#: Finds (or creates) a context type's id by name.
TypeIds = Callable[[str], int]


def prop(node: Any, name: str) -> str | None:
    """Read a string custom property without creating it (``props[k]`` would)."""
    props = node.custom_properties
    return str(props[name].string_value) if name in props else None


def run_external_id(run_id: str) -> str:
    """The external id of a run's context."""
    return f"{RUN_CONTEXT}/{run_id}"


def set_run_properties(context: Any, data: dict[str, Any]) -> None:
    """Write every custom property of a run's context from its data, replacing any there.

    The pipeline's params under their own names (native types), then
    ``zentrack.pipeline``, ``zentrack.state``, ``zentrack.record`` (``data``
    as JSON), ``zentrack.config`` and ``zentrack.error`` when set, and what
    annotations made of the run: ``zentrack.metric.<name>`` (native),
    ``zentrack.tag.<key>`` (string) and ``zentrack.note`` (string).
    """
    props = context.custom_properties
    props.clear()
    for name, value in untag(data.get("p") or {}).items():
        set_native(props[name], value)
    props[PROP_PIPELINE].string_value = data.get("pipeline") or ""
    props[PROP_STATE].string_value = data["st"]
    props[PROP_RECORD].string_value = json.dumps(data, separators=(",", ":"))
    if data.get("config"):
        props[PROP_CONFIG].string_value = data["config"]
    if data.get("err"):
        props[PROP_ERROR].string_value = data["err"]
    metrics, tags, note = run_annotations(data)
    for name, value in metrics.items():
        set_native(props[METRIC_PREFIX + name], value)
    for key, text in tags.items():
        set_native(props[TAG_PREFIX + key], text)
    if note is not None:
        set_native(props[PROP_NOTE], note)


def _record_of(context: Any) -> dict[str, Any]:
    """A run context's stored record; one someone broke in the store reads as empty.

    Anyone who can write the store can write this property: a value that is
    not a JSON object must not make every later flush of that run fail.
    """
    try:
        data = json.loads(prop(context, PROP_RECORD) or "{}")
    except (ValueError, RecursionError):
        data = None
    return data if isinstance(data, dict) else {"id": context.name}


def upsert_runs(
    mlmd: Any, type_ids: TypeIds, lines: Sequence[dict[str, Any]], referenced: set[str]
) -> dict[str, int]:
    """Create or update run contexts from run lines; return run id -> context id.

    A run's later line (its end) wins over its earlier one (its start).  A
    run that step or annotation lines name but whose own lines are not
    written yet (they may sit in another process's journal) gets a
    placeholder, completed when its lines arrive.  Annotations already folded
    into a context (``a``) are kept when its run line is written.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    latest: dict[str, dict[str, Any]] = {}
    for line in lines:
        previous = latest.get(line["id"])
        if previous is None or _RUN_ORDER.get(line["st"], 0) >= _RUN_ORDER.get(
            previous["st"], 0
        ):
            latest[line["id"]] = line
    ids = set(latest) | referenced
    data: dict[str, Any]
    existing = nodes_by_external_ids(mlmd, "contexts", (run_external_id(i) for i in ids))
    run_type = type_ids(RUN_CONTEXT)
    contexts = []
    order = []
    for run_id in sorted(ids):
        current = existing.get(run_external_id(run_id))
        found = latest.get(run_id)
        if found is None:
            if current is not None:
                continue
            data = {"id": run_id, "pipeline": "", "st": "RUNNING"}
        elif current is not None and _RUN_ORDER.get(found["st"], 0) < _RUN_ORDER.get(
            prop(current, PROP_STATE) or "", 0
        ):
            continue  # an older line replayed after a newer one
        else:
            data = {k: v for k, v in found.items() if k != "a"}
            folded = _record_of(current).get("a") if current is not None else None
            if folded:
                data["a"] = folded
        context = pb.Context(type_id=run_type, name=run_id, external_id=run_external_id(run_id))
        if current is not None:
            context.id = current.id
        set_run_properties(context, data)
        contexts.append(context)
        order.append((run_id, data.get("pipeline") or ""))
    ids_by_run = {
        run_id: existing[run_external_id(run_id)].id
        for run_id in ids
        if run_external_id(run_id) in existing
    }
    if contexts:
        written = mlmd.put_contexts(contexts)
        for (run_id, _), context_id in zip(order, written, strict=True):
            ids_by_run[run_id] = context_id
        parents = [(ids_by_run[run_id], pipeline) for run_id, pipeline in order if pipeline]
        link_pipelines(mlmd, type_ids, parents)
    return ids_by_run


def annotate_runs(mlmd: Any, lines: Iterable[dict[str, Any]]) -> int:
    """Fold annotation lines into their runs' contexts (which exist: see :func:`upsert_runs`).

    Lines are applied oldest first; a malformed one (hand-edited, or from a
    newer zentrack) is logged and skipped, never fatal.  Returns how many
    were applied.
    """
    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for line in lines:
        (good if valid_annotation(line) else bad).append(line)
    if bad:
        log.warning(
            "zentrack: skipped %d malformed run annotation line(s), e.g. %.120r", len(bad), bad[0]
        )
    if not good:
        return 0
    good.sort(key=lambda line: line["t"])
    existing = nodes_by_external_ids(
        mlmd, "contexts", {run_external_id(line["run"]) for line in good}
    )
    changed: dict[str, tuple[Any, dict[str, Any]]] = {}
    for line in good:
        key = run_external_id(line["run"])
        if key not in changed:
            if key not in existing:
                continue  # cannot happen after upsert_runs; never fatal
            changed[key] = (existing[key], _record_of(existing[key]))
        context, data = changed[key]
        data["a"] = merge_annotation(data.get("a") or {}, line)
        data.setdefault("id", line["run"])
        data.setdefault("st", "RUNNING")
    for context, data in changed.values():
        set_run_properties(context, data)
    if changed:
        mlmd.put_contexts([context for context, _ in changed.values()])
    return len(good)


def link_pipelines(mlmd: Any, type_ids: TypeIds, runs: Sequence[tuple[int, str]]) -> None:
    """Make each run context a child of its pipeline's context (idempotent)."""
    from ml_metadata import errors
    from ml_metadata.proto import metadata_store_pb2 as pb

    if not runs:
        return
    names = {pipeline for _, pipeline in runs}
    found = nodes_by_external_ids(mlmd, "contexts", (f"{PIPELINE_CONTEXT}/{n}" for n in names))
    missing = [n for n in sorted(names) if f"{PIPELINE_CONTEXT}/{n}" not in found]
    ids = {c.name: c.id for c in found.values()}
    if missing:
        type_id = type_ids(PIPELINE_CONTEXT)
        new = [
            pb.Context(type_id=type_id, name=n, external_id=f"{PIPELINE_CONTEXT}/{n}")
            for n in missing
        ]
        ids.update(zip(missing, mlmd.put_contexts(new), strict=True))
    links = [pb.ParentContext(child_id=run, parent_id=ids[p]) for run, p in runs]
    for link in links:  # one at a time: an existing link must not fail the others
        with contextlib.suppress(errors.AlreadyExistsError):
            mlmd.put_parent_contexts([link])


def mark_run(mlmd: Any, run_id: str, state: str, error: str) -> None:
    """Set a run's final state (used for runs whose process died), keeping the rest."""
    current = nodes_by_external_ids(mlmd, "contexts", [run_external_id(run_id)]).get(
        run_external_id(run_id)
    )
    if current is None:
        return
    data = _record_of(current)
    data.update(st=state, err=error)
    set_run_properties(current, data)
    mlmd.put_contexts([current])
