"""``explain()`` / ``zentrack why``: why a call would miss the cache.

The store keeps each fingerprint's components (params, input digests, code
digest and the digests of every helper), so a miss can be explained against
the nearest earlier execution of the step: which parameter changed from
what to what, which input, which helper's code.
"""

from __future__ import annotations

from typing import Any

import attrs

from zentrack._record import tracker as _tracker
from zentrack._record.line import Record
from zentrack._runs.query import same_value
from zentrack._step.content_hash import RecordedInput
from zentrack._step.decorator import describe_call
from zentrack._step.spec import Prospect, spec_of
from zentrack._step.values import decode_exact


@attrs.frozen
class Explanation:
    """Whether a call would be served from the cache, and if not, why.

    Attributes:
        step: the step's name.
        fingerprint: the call's fingerprint.
        hit: ``True`` if the call would return a cached output.
        reasons: what differs from the nearest earlier execution, one
            sentence each (empty on a hit).
        nearest: the earlier execution compared against, if any.
        notes: how the call was described, when not fully from the arguments.
    """

    step: str
    fingerprint: str
    hit: bool
    reasons: list[str]
    nearest: Record | None = None
    notes: list[str] = attrs.field(factory=list)

    def __str__(self) -> str:
        head = f"step {self.step!r}, fingerprint {self.fingerprint[:12]}…: "
        notes = "".join(f"\n  note: {note}" for note in self.notes)
        if self.hit:
            source = f" (execution {self.nearest.execution_id})" if self.nearest else ""
            return head + f"cache hit{source}" + notes
        reasons = "\n".join(f"  - {reason}" for reason in self.reasons)
        return head + "cache miss\n" + reasons + notes


def differences(prospect: Prospect, record: Record) -> list[str]:
    spec = prospect.spec
    reasons = []
    if record.version != spec.version:
        reasons.append(f"version changed: {record.version!r} -> {spec.version!r}")
    elif spec.version is None and record.code != spec.code:
        old_parts, new_parts = record.code_parts, spec.code_parts
        for name in sorted(set(old_parts) | set(new_parts)):
            label = "the step's own code" if name == "self" else f"the code of {name}"
            if name not in old_parts:
                reasons.append(f"{label} is new (now used by the step)")
            elif name not in new_parts:
                reasons.append(f"{label} is no longer used")
            elif old_parts[name] != new_parts[name]:
                reasons.append(f"{label} changed")
        if not reasons:
            reasons.append("the step's code changed")
    params = decode_exact(prospect.exact)
    for name in sorted(set(params) | set(record.params)):
        if name not in record.params:
            reasons.append(f"param {name} is new: {params[name]!r}")
        elif name not in params:
            reasons.append(f"param {name} is gone (was {record.params[name]!r})")
        elif not same_value(record.params[name], params[name]):
            reasons.append(f"param {name} changed: {record.params[name]!r} -> {params[name]!r}")
    for name in sorted(set(prospect.inputs) | set(record.inputs)):
        before, after = record.inputs.get(name), prospect.inputs.get(name)
        if before == after:
            continue
        if before is None or after is None:
            reasons.append(f"input {name} is {'new' if before is None else 'gone'}")
        elif after.startswith("fp:") or before.startswith("fp:"):
            reasons.append(f"input {name} now comes from another upstream call ({_short(after)})")
        else:
            reasons.append(f"input {name} changed (content {_short(before)} -> {_short(after)})")
    return reasons


def _short(digest: str) -> str:
    return digest[:15] + "…" if len(digest) > 16 else digest


def explain(target: Any, /, *args: Any, **kwargs: Any) -> Explanation:
    """Say whether ``target(*args, **kwargs)`` would hit the cache, and why not.

    Nothing runs.  ``target`` is a step function or a step-class instance,
    as for :func:`zentrack.fingerprint`.
    """
    prospect = describe_call(target, *args, **kwargs)
    spec = prospect.spec
    tracker = _tracker.active()
    tracker.flush_for_read()
    history = tracker.store.step_records(spec.name)
    done = [r for r in history if r.state in ("COMPLETE", "CACHED")]
    same = [r for r in done if r.fingerprint == prospect.fingerprint]
    if not (spec.cache and tracker.cache):
        why = "caching is off for this step" if not spec.cache else "caching is off (init/env)"
        latest = same[-1] if same else None
        return Explanation(spec.name, prospect.fingerprint, False, [why], latest)
    if same:
        if tracker.outputs.get(prospect.fingerprint) is not None:
            originals = [r for r in same if r.state == "COMPLETE"] or same
            return Explanation(spec.name, prospect.fingerprint, True, [], originals[-1])
        return Explanation(
            spec.name,
            prospect.fingerprint,
            False,
            ["an execution with this fingerprint exists, but its cached output is missing or "
             "corrupt (or was not cacheable): the step will run again"],
            same[-1],
        )
    if not done:
        failed = [r for r in history if r.fingerprint == prospect.fingerprint]
        reason = (
            "the earlier executions with this fingerprint failed"
            if failed
            else f"step {spec.name!r} has no completed execution yet"
        )
        return Explanation(spec.name, prospect.fingerprint, False, [reason])
    scored = sorted(
        ((len(differences(prospect, r)), -(r.execution_id or 0), r) for r in done),
        key=lambda item: (item[0], item[1]),
    )
    nearest = scored[0][2]
    reasons = differences(prospect, nearest) or [
        "the fingerprint differs for a reason outside params, inputs and code (step name or "
        "fingerprint scheme)"
    ]
    return Explanation(spec.name, prospect.fingerprint, False, reasons, nearest)


def explain_with_recorded_inputs(target: Any, /, **given: Any) -> Explanation:
    """Explain a call of which only some arguments are at hand (``zentrack why``).

    Each required argument not given takes its value from the step's latest
    COMPLETE or CACHED call: a parameter its recorded value, an input (data
    the command line cannot pass) the content digest that call stored.  So
    ``zentrack why pkg:fit n=2`` says what changing ``n`` alone would do.

    Raises:
        LookupError: an argument is missing and no recorded call has it.
    """
    spec = spec_of(target)
    if spec is None or spec.is_class:
        spec = spec_of(type(target))
    if spec is None:
        return explain(target, **given)
    signature = spec.entry_signature
    missing = [n for n in signature.names if n not in signature.defaults and n not in given]
    if not missing:
        return explain(target, **given)
    tracker = _tracker.active()
    tracker.flush_for_read()
    done = [r for r in tracker.store.step_records(spec.name) if r.state in ("COMPLETE", "CACHED")]
    if not done:
        raise LookupError(
            f"Step {spec.name!r} needs {', '.join(missing)}, which a command line cannot pass, "
            "and has no recorded call to take them from; run it once, or call "
            "zentrack.explain() from Python with the data."
        )
    latest = done[-1]
    filled: dict[str, Any] = {}
    for name in missing:
        if name in latest.inputs:
            filled[name] = RecordedInput(latest.inputs[name])
        elif name in latest.params:
            filled[name] = latest.params[name]
        else:
            raise LookupError(
                f"Step {spec.name!r} needs {name!r}, and its latest recorded call "
                f"(execution {latest.execution_id}) has no such argument; give {name}=VALUE."
            )
    explanation = explain(target, **given, **filled)
    note = (
        f"{', '.join(missing)} not given: taken from the latest recorded call (execution "
        f"{latest.execution_id}); for a whole run, `zentrack config plan CONFIG` says which "
        "steps would run"
    )
    return attrs.evolve(explanation, notes=[*explanation.notes, note])
