"""A dry run of a config: which steps would hit or miss the cache, and why.

Nothing runs.  Each step's fingerprint is recomputed from the config's args
(over the signature's defaults), the step's current code, and the inputs
its call had in the run that wrote the config; an input that came from an
upstream step follows that step's new fingerprint, so editing an upstream
arg shows its downstream steps missing too.

A step that run does not show (a config written by hand, with no
``run_id``, or from another store) is planned from the config alone when it
can be: a function step whose every argument is a parameter the config gives
(or leaves at its default) has no input to learn from a run, so its
fingerprint follows from the args, assuming the pipeline's code passes no
other values.  A step with an input (data from an upstream step, a class
step's entry call) is "unknown": only a recorded call shows that input.
"""

from __future__ import annotations

from typing import Any

import attrs

from zentrack._config.rerun import (
    Check,
    RerunnableConfig,
    pipeline_spec,
    recorded_run,
    source_guard,
)
from zentrack._record import tracker as _tracker
from zentrack._record.line import Record
from zentrack._runs.explain import differences
from zentrack._step.fingerprint import fingerprint, inputs_text
from zentrack._step.spec import Prospect, StepSpec, spec_of
from zentrack._step.values import copy_value
from zentrack.exceptions import UnhashableInputError


@attrs.frozen
class PlanStep:
    """What running one config step would do.

    Attributes:
        key: the step's key in the config.
        step: the step's name.
        hit: whether its output would come from the cache (``None``: unknown,
            an input of the step is known only from a recorded call, and the
            recorded run has none).
        fingerprint: the fingerprint it would have (``None`` when unknown).
        reasons: why it would miss.
    """

    key: str
    step: str
    hit: bool | None
    fingerprint: str | None
    reasons: list[str]

    def __str__(self) -> str:
        verdict = {True: "hit", False: "miss", None: "unknown"}[self.hit]
        lines = [f"{self.key:<20} {verdict}"]
        lines += [f"{'':<20}   - {reason}" for reason in self.reasons]
        return "\n".join(lines)


@attrs.frozen
class Plan:
    """The dry run of a config, step by step, in the recorded run's order."""

    steps: list[PlanStep]

    def __str__(self) -> str:
        return "\n".join(str(step) for step in self.steps)

    @property
    def misses(self) -> list[str]:
        """Keys of the steps that would run."""
        return [s.key for s in self.steps if s.hit is not True]


def _recorded_run_steps(run_id: str | None) -> dict[str, Record]:
    run = recorded_run(run_id)
    return {} if run is None else run.keyed_steps()


class _Input:
    """Stands for an input in a planned call: its digest comes from the record."""


def _prospect(spec: StepSpec, args: dict[str, Any], inputs: dict[str, str]) -> Prospect:
    bound = {**{k: copy_value(v) for k, v in spec.signature.defaults.items()}, **args}
    if not spec.is_class:
        for name in spec.signature.all_names:
            if name in inputs or name not in bound:
                bound[name] = _Input()
    if spec.signature.var_keyword is not None:
        bound.setdefault(spec.signature.var_keyword, {})
    canonical, exact, _ = spec.encoder.encode(bound)
    return Prospect(spec, exact, inputs, fingerprint(spec.primed(), canonical, inputs_text(inputs)))


def plan_config(config: RerunnableConfig, *, check: Check) -> Plan:
    """Say, before running anything, which steps of ``config`` would hit or miss.

    ``check`` validates the whole config against the code first.
    """
    resolve = source_guard(config, recorded_run(config.run_id))
    pipeline_spec(config, check, resolve)
    tracker = _tracker.active()
    recorded = _recorded_run_steps(config.run_id)
    remap: dict[str, str] = {}  # old upstream fingerprint -> new
    planned = []
    for key, entry in config.steps.items():
        spec = spec_of(resolve(entry.source))
        assert spec is not None  # validated
        record = recorded.get(key)
        if record is None:
            planned.append(_unrecorded(key, spec, entry.plain_args(), tracker))
            continue
        inputs = {}
        for name, digest in record.inputs.items():
            if digest.startswith("fp:"):
                upstream, sep, item = digest[3:].partition("#")
                digest = "fp:" + remap.get(upstream, upstream) + sep + item
            inputs[name] = digest
        prospect = _prospect(spec, entry.plain_args(), inputs)
        remap[record.fingerprint] = prospect.fingerprint
        cached = spec.cache and tracker.cache and (
            tracker.outputs.get(prospect.fingerprint) is not None
        )
        reasons = [] if cached else differences(prospect, record)
        if not cached and not reasons:
            reasons = ["its cached output is missing" if spec.cache else "caching is off"]
        planned.append(PlanStep(key, spec.name, cached, prospect.fingerprint, reasons))
    return Plan(planned)



def _unrecorded(key: str, spec: StepSpec, args: dict[str, Any], tracker: Any) -> PlanStep:
    """Plan a step no recorded call shows, from the config's args alone if it has no inputs."""
    unknown = _unknown_inputs(spec, args)
    if unknown:
        return PlanStep(key, spec.name, None, None, [f"{unknown}: cannot tell"])
    bound = {**{k: copy_value(v) for k, v in spec.signature.defaults.items()}, **args}
    if spec.signature.var_positional is not None:
        bound.setdefault(spec.signature.var_positional, ())
    if spec.signature.var_keyword is not None:
        bound.setdefault(spec.signature.var_keyword, {})
    canonical, _, inputs = spec.encoder.encode(bound)
    try:
        digests = spec.digest_inputs(inputs)  # defaults of arguments that are not params
    except UnhashableInputError:
        why = f"the defaults of inputs {sorted(inputs)} cannot be fingerprinted"
        return PlanStep(key, spec.name, None, None, [f"{why}: cannot tell"])
    digest = fingerprint(spec.primed(), canonical, inputs_text(digests))
    caching = spec.cache and tracker.cache
    cached = bool(caching and tracker.outputs.get(digest) is not None)
    reasons = []
    if not cached:
        reasons = [
            "no call with these params is in the cache (and no recorded run to compare with)"
            if caching
            else "caching is off"
        ]
    return PlanStep(key, spec.name, cached, digest, reasons)


def _unknown_inputs(spec: StepSpec, args: dict[str, Any]) -> str | None:
    """Why a step's inputs cannot be known without a recorded call (None: it has none)."""
    if spec.is_class:
        return "a class step's inputs come with its entry call, which no recorded run shows"
    defaults = spec.signature.defaults
    missing = [
        name
        for name in spec.signature.names
        if name not in args and name not in defaults and name not in spec.ignored
    ]
    if not missing:
        return None
    shown = ", ".join(repr(name) for name in missing)
    many = len(missing) > 1
    return (
        f"{'inputs' if many else 'input'} {shown} {'are' if many else 'is'} not in the config "
        f"(data from another step or the pipeline's code) and no recorded run shows "
        f"{'them' if many else 'it'}"
    )
