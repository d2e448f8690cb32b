"""Output artifacts and the events linking them to executions: the lineage MLMD readers see.

Each cached output is one ``zentrack.Output`` artifact, keyed by the
fingerprint of the call that produced it; the call gets an OUTPUT event on
it and every later call given that output an INPUT event (KFP's convention:
the event path names the input).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def lineage_wanted(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """The fingerprints whose output artifacts the records' lineage involves (often none)."""
    wanted: set[str] = set()
    for data in records:
        if data.get("out"):
            wanted.add(data["fp"])
        for digest in (data.get("i") or {}).values():
            if digest.startswith("fp:"):
                wanted.add(digest[3:].split("#")[0])
    return wanted


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

    wanted = lineage_wanted(records.values())
    if not wanted:
        return
    nodes = nodes_by_external_ids(mlmd, "artifacts", (f"{OUTPUT_ARTIFACT}/{fp}" for fp in wanted))
    found = {key: a.id for key, a in nodes.items()}
    # The output each artifact describes: the latest COMPLETE call that wrote it
    # (an entry rewritten after `cache clear` may hold other bytes); a hit's
    # line only creates a missing artifact.
    latest: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {}
    for data in records.values():
        out = data.get("out")
        if not out:
            continue
        key = f"{OUTPUT_ARTIFACT}/{data['fp']}"
        made = data.get("st") == "COMPLETE"
        if made or key not in latest:
            latest[key] = (data, out, made)
    create: dict[str, Any] = {}
    update: list[Any] = []
    for key, (data, out, made) in latest.items():
        node = nodes.get(key)
        if node is None:
            artifact = pb.Artifact(
                type_id=_artifact_type_id(mlmd, type_ids),
                uri=out["uri"],
                external_id=key,
                state=pb.Artifact.LIVE,
            )
            artifact.custom_properties[PROP_FINGERPRINT].string_value = data["fp"]
            _describe(artifact, out)
            create[key] = artifact
        elif made and _described(node) != _description(out):
            _describe(node, out)
            update.append(node)
    if create:
        ids = mlmd.put_artifacts(list(create.values()))
        found.update(zip(create, ids, strict=True))
    if update:
        mlmd.put_artifacts(update)
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

def _description(out: dict[str, Any]) -> tuple[str, ...]:
    """An output as its artifact's properties hold it (from a journal line's ``out``)."""
    return (*(str(out.get(name, "")) for name in OUTPUT_PROPS), str(int(out.get("size", 0))))


def _described(artifact: Any) -> tuple[str, ...]:
    props = artifact.custom_properties
    texts = [
        str(props[f"zentrack.{n}"].string_value) if f"zentrack.{n}" in props else ""
        for n in OUTPUT_PROPS
    ]
    size = str(props[PROP_OUTPUT_SIZE].int_value) if PROP_OUTPUT_SIZE in props else ""
    return (*texts, size)


def _describe(artifact: Any, out: dict[str, Any]) -> None:
    """Write what ``out`` says of an output into its artifact's properties."""
    props = artifact.custom_properties
    for name in OUTPUT_PROPS:
        props[f"zentrack.{name}"].string_value = str(out.get(name, ""))
    props[PROP_OUTPUT_SIZE].int_value = int(out.get("size", 0))


def _artifact_type_id(mlmd: Any, type_ids: dict[str, int]) -> int:
    """The id of the output artifact type, put once per connection (``type_ids`` caches it)."""
    if OUTPUT_ARTIFACT not in type_ids:
        from ml_metadata.proto import metadata_store_pb2 as pb

        artifact_type = pb.ArtifactType(name=OUTPUT_ARTIFACT)
        type_ids[OUTPUT_ARTIFACT] = int(mlmd.put_artifact_type(artifact_type))
    return type_ids[OUTPUT_ARTIFACT]
