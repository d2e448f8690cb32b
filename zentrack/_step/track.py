"""Tracking one call: fingerprint, cache check, run, journal line.

The hot path shared by every step: a decorated function's wrapper, or a
class step's entry point, binds the call (:mod:`.params`) and hands it to
:func:`track`, which fingerprints it (:mod:`.fingerprint`), serves it from
the cache (:mod:`zentrack._cache.outputs`) or runs it, and appends one
journal line (built by :mod:`zentrack._record.line`) to the tracker, which
flushes to MLMD later.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from zentrack._cache.lineage import register as register_output
from zentrack._cache.outputs import cache_disabled
from zentrack._record import tracker as _tracker
from zentrack._record.line import cached_key, error_key, output_keys, run_keys, step_line
from zentrack._runs.context import TRACKING_CODES, RunState
from zentrack._step.fingerprint import fingerprint
from zentrack._step.spec import StepSpec
from zentrack._step.values import SCALAR_TYPES, untag
from zentrack.exceptions import StoreError

#: ``(run id, config key)`` of a step call that belongs to a pipeline run.
RunKey = tuple[str, str]

log = logging.getLogger("zentrack")



def track(
    spec: StepSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    canonical: str,
    exact: str,
    inputs: Mapping[str, Any] | str,
    key: RunKey | None = None,
) -> Any:
    """Fingerprint, run and record one call: the hot path shared by all steps.

    ``inputs`` are the call's inputs by name, or their digests' canonical
    text already (a class step's entry computes it, see
    :meth:`StepSpec.compile_inputs_plan`).

    Kept flat on purpose: every helper call here costs a measurable share of
    the few microseconds a tracked call may add (benchmarks/bench_hot_path.py).
    """
    tracker = _tracker._active or _tracker.active()  # the call only when none is active yet
    primed, unchanged = spec.state
    if primed is None or (unchanged is not None and not unchanged()):
        primed, unchanged = spec.prime()  # first call, or a helper/constant was rebound
    if isinstance(inputs, str):
        digests = inputs
    else:
        digests = spec.inputs_canonical(inputs) if inputs else "{}"
    cache = tracker.outputs if spec.cache and tracker.cache else None
    fp: str | None = None  # not needed to run: the line's reader computes it (see step_line)
    if cache is not None or canonical != exact:
        h = primed.copy()  # fingerprint(primed, canonical, digests), inlined: a call less
        h.update(f"{canonical}\0{digests}".encode())
        fp = h.hexdigest()
    if cache is not None and not cache_disabled():
        assert fp is not None
        hit = cache.get(fp)
        if hit is not None:
            return _serve_hit(tracker, spec, fp, exact, digests, key, *hit)
    metrics: dict[str, Any] = {}  # filled by log_metrics(), found by its frame walk
    started = time_ns()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        state = "FAILED" if isinstance(exc, Exception) else "CANCELED"
        more = error_key(f"{type(exc).__qualname__}: {exc}") + run_keys(metrics, key)
        record_id = f"{tracker.id_prefix}{next(tracker.ids)}"
        try:
            tracker.record(
                step_line(record_id, fp, exact, digests, state, started, time_ns(), more, spec.tail)
            )
        except StoreError as lost:  # the call's own exception is the one to see
            log.error("zentrack: a %s call of step %r is not recorded: %s", state, spec.name, lost)
        raise
    if cache is not None and unchanged is not None and not unchanged():
        cache = None  # a name the digest followed was rebound mid-call: do not cache
    if cache is None:
        more = run_keys(metrics, key) if metrics or key is not None else ""
        record_id = f"{tracker.id_prefix}{next(tracker.ids)}"
        ended = time_ns()
        tracker.record(
            step_line(record_id, fp, exact, digests, "COMPLETE", started, ended, more, spec.tail)
        )
    else:
        assert fp is not None
        ended = time_ns()
        record_id = f"{tracker.id_prefix}{next(tracker.ids)}"
        meta = cache.put(fp, result, record_id, spec.name, metrics)
        more = output_keys(meta) + run_keys(metrics, key)
        tracker.record(
            step_line(record_id, fp, exact, digests, "COMPLETE", started, ended, more, spec.tail)
        )
    if type(result) not in SCALAR_TYPES:  # lineage knows an output by its call's fingerprint
        register_output(result, fp or fingerprint(primed, canonical, digests))
    return result



def _serve_hit(
    tracker: _tracker.Tracker,
    spec: StepSpec,
    fp: str,
    exact: str,
    digests: str,
    key: RunKey | None,
    meta: dict[str, Any],
    value: Any,
) -> Any:
    """Return a cached output, recording the call as a CACHED execution."""
    now = time_ns()
    more = (
        cached_key(meta.get("record"))
        + output_keys(meta)
        + run_keys(untag(meta.get("metrics") or {}), key)
    )
    record_id = f"{tracker.id_prefix}{next(tracker.ids)}"
    tracker.record(step_line(record_id, fp, exact, digests, "CACHED", now, now, more, spec.tail))
    log.info("zentrack: cache hit for step %r (fingerprint %s…)", spec.name, fp[:12])
    if type(value) not in SCALAR_TYPES:
        register_output(value, fp)
    return value



TRACKING_CODES.add(track.__code__)



def apply_override(
    signature: inspect.Signature,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    override: Mapping[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Replace argument values by a config's args (a config takes precedence).

    A :class:`ConfigArgs` override chooses per arg between the config's value
    and the code's (see there: edited pipeline args reach the steps they feed).
    """
    bound = signature.bind(*args, **kwargs)
    choose = getattr(override, "choose", None)
    for name, value in override.items():
        if choose is not None:
            if name in bound.arguments:
                code_value = bound.arguments[name]
            else:
                default = signature.parameters[name].default if name in signature.parameters else {}
                code_value = {} if default is inspect.Parameter.empty else default
            value = choose(name, code_value)
        bound.arguments[name] = value
    return bound.args, bound.kwargs



def call_in_run(
    spec: StepSpec,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run: RunState,
    skip: int,
) -> Any:
    """A function step's call inside a pipeline run: keyed, maybe overridden."""
    key = run.next_key(spec.name)
    override = run.overrides.get(key)
    if override:
        own, kwargs = apply_override(spec.inspected, args[skip:], kwargs, override)
        args = args[:skip] + own
    canonical, exact, inputs = spec.encoder.encode_call(args[skip:], kwargs)
    run.entries[key] = (spec.source, exact)
    return track(spec, fn, args, kwargs, canonical, exact, inputs, (run.id, key))
