"""Output artifacts and the events linking them to executions: the lineage MLMD readers see.

Each cached output is one ``zentrack.Output`` artifact, keyed by the
fingerprint of the call that produced it; the call gets an OUTPUT event on
it and every later call given that output an INPUT event (KFP's convention:
the event path names the input).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Any

from zentrack._store.schema import OUTPUT_ARTIFACT, OUTPUT_PROPS, PROP_FINGERPRINT, PROP_OUTPUT_SIZE


def nodes_by_external_ids(mlmd: Any, kind: str, external_ids: Iterable[str]) -> dict[str, Any]:
    """MLMD nodes (``kind``: executions, contexts, artifacts) by external id.

    One indexed read; ids that are not stored are simply absent (some of
    MLMD's lookups raise NotFoundError for them instead).
    """
    from ml_metadata import errors

    wanted = list(external_ids)
    if not wanted:
        return {}
    try:
        found = getattr(mlmd, f"get_{kind}_by_external_ids")(wanted)
    except errors.NotFoundError:
        return {}
    return {node.external_id: node for node in found}


def _event(pb: Any, artifact_id: int, execution_id: int, kind: int, key: str) -> Any:
    """An MLMD Event whose path names the input or output (KFP's convention)."""
    event = pb.Event(artifact_id=artifact_id, execution_id=execution_id, type=kind)
    event.path.steps.add().key = key
    return event


def write_lineage(
    mlmd: Any,
    records: dict[str, dict[str, Any]],
    stored: dict[str, int],
    replayed: AbstractSet[int] = frozenset(),
    *,
    type_ids: dict[str, int],
) -> None:
    """Output artifacts with OUTPUT events; INPUT events from upstream outputs.

    Artifacts are keyed by the fingerprint of the call that produced them
    (``external_id`` ``zentrack.Output/<fp>``): a cache hit links the
    same artifact, and a downstream input finds its upstream by lookup.
    Events of ``replayed`` executions (already stored) are written only
    where missing, since MLMD rejects a duplicate event.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    wanted: set[str] = set()
    for data in records.values():
        if data.get("out"):
            wanted.add(data["fp"])
        for digest in (data.get("i") or {}).values():
            if digest.startswith("fp:"):
                wanted.add(digest[3:].split("#")[0])
    if not wanted:
        return
    found = {
        key: a.id
        for key, a in nodes_by_external_ids(
            mlmd, "artifacts", (f"{OUTPUT_ARTIFACT}/{fp}" for fp in wanted)
        ).items()
    }
    create: dict[str, Any] = {}
    for data in records.values():
        out = data.get("out")
        key = f"{OUTPUT_ARTIFACT}/{data['fp']}"
        if out and key not in found and key not in create:
            artifact = pb.Artifact(
                type_id=_artifact_type_id(mlmd, type_ids),
                uri=out["uri"],
                external_id=key,
                state=pb.Artifact.LIVE,
            )
            props = artifact.custom_properties
            props[PROP_FINGERPRINT].string_value = data["fp"]
            for name in OUTPUT_PROPS:
                props[f"zentrack.{name}"].string_value = str(out.get(name, ""))
            props[PROP_OUTPUT_SIZE].int_value = int(out.get("size", 0))
            create[key] = artifact
    if create:
        ids = mlmd.put_artifacts(list(create.values()))
        found.update(zip(create, ids, strict=True))
    events = []
    for record_id, data in records.items():
        execution_id = stored[record_id]
        artifact_id = found.get(f"{OUTPUT_ARTIFACT}/{data['fp']}")
        if data.get("out") and artifact_id is not None:
            events.append(_event(pb, artifact_id, execution_id, pb.Event.OUTPUT, "output"))
        for name, digest in (data.get("i") or {}).items():
            if digest.startswith("fp:"):
                upstream = found.get(f"{OUTPUT_ARTIFACT}/{digest[3:].split('#')[0]}")
                if upstream is not None:
                    events.append(_event(pb, upstream, execution_id, pb.Event.INPUT, name))
    # MLMD keeps one event per (artifact, execution, type): a step given the
    # same upstream output twice (combine(d, d)) gets one INPUT event.
    seen: set[tuple[int, int, int]] = set()
    unique = []
    for event in events:
        triple = (event.artifact_id, event.execution_id, event.type)
        if triple not in seen:
            seen.add(triple)
            unique.append(event)
    events = unique
    if replayed and events:
        events = _missing_events(mlmd, events, replayed)
    if events:
        mlmd.put_events(events)

def _missing_events(mlmd: Any, events: list[Any], replayed: AbstractSet[int]) -> list[Any]:
    """Drop the events of ``replayed`` executions that the store already has."""
    present = {
        (e.artifact_id, e.execution_id, e.type)
        for e in mlmd.get_events_by_execution_ids(sorted(replayed))
    }
    return [e for e in events if (e.artifact_id, e.execution_id, e.type) not in present]

def _artifact_type_id(mlmd: Any, type_ids: dict[str, int]) -> int:
    """The id of the output artifact type, put once per connection (``type_ids`` caches it)."""
    if OUTPUT_ARTIFACT not in type_ids:
        from ml_metadata.proto import metadata_store_pb2 as pb

        artifact_type = pb.ArtifactType(name=OUTPUT_ARTIFACT)
        type_ids[OUTPUT_ARTIFACT] = int(mlmd.put_artifact_type(artifact_type))
    return type_ids[OUTPUT_ARTIFACT]
