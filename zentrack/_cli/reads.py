"""Commands that read records and runs: ``lookup``, ``find``, ``runs``, ``show``, ``compare``,
``fingerprint``, ``why`` and ``demo``."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

import zentrack as zt
from zentrack._cli.output import print_json, print_records, run_row
from zentrack._cli.stores import init_for_read
from zentrack._cli.values import assignments


def cmd_demo(args: argparse.Namespace) -> int:
    """``zentrack demo``."""
    from zentrack._demo import main as demo

    return demo(args.store)


def cmd_lookup(args: argparse.Namespace) -> int:
    """``zentrack lookup FP``."""
    init_for_read(args.store)
    print_records(zt.lookup(args.fingerprint), args.json)
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    """``zentrack find [--step S] [--state S] param[__op]=VALUE...``."""
    where = assignments(args.where, "param[__op]=value")
    init_for_read(args.store)
    print_records(zt.find(args.step, state=args.state, **where), args.json)
    return 0


def resolve(target: str) -> Any:
    """The object a ``module:name`` (or ``module.name``) names, importing the module."""
    module_name, sep, attribute = target.partition(":")
    if not sep:
        module_name, _, attribute = target.rpartition(".")
    if not module_name or not attribute:
        raise SystemExit(f"zentrack: name a step as module:name (got {target!r})")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def call_target(target: Any, values: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """What to fingerprint for ``name=value`` arguments: ``(step or instance, its kwargs)``.

    For a class step, the constructor's named parameters build the instance
    and every other value is an input of its entry point, as in
    ``zt.fingerprint(Step(lr=0.5), data)``.
    """
    if not isinstance(target, type):
        return target, values
    from zentrack._step.spec import spec_of

    spec = spec_of(target)
    if spec is None:
        raise TypeError(
            f"{target.__qualname__} is a class that is not decorated with @zentrack.step; "
            "name a step function or step class."
        )
    names = set(spec.signature.names)
    params = {k: v for k, v in values.items() if k in names}
    inputs = {k: v for k, v in values.items() if k not in names}
    return target(**params), inputs


def cmd_fingerprint(args: argparse.Namespace) -> int:
    """``zentrack fingerprint module:step name=VALUE...``."""
    values = assignments(args.args)  # no store: a fingerprint is computed, not looked up
    target, values = call_target(resolve(args.step), values)
    print(zt.fingerprint(target, **values))
    return 0


def cmd_why(args: argparse.Namespace) -> int:
    """``zentrack why module:step name=VALUE...``."""
    values = assignments(args.args)
    init_for_read(args.store)
    from zentrack._runs.explain import explain_with_recorded_inputs

    target, values = call_target(resolve(args.step), values)
    explanation = explain_with_recorded_inputs(target, **values)
    if args.json:
        print_json(
            {
                "hit": explanation.hit,
                "reasons": explanation.reasons,
                "fingerprint": explanation.fingerprint,
                **({"notes": explanation.notes} if explanation.notes else {}),
            }
        )
    else:
        print(explanation)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """``zentrack runs [--pipeline P] [--state S] [--limit N]``."""
    init_for_read(args.store)
    found = zt.runs(args.pipeline, state=args.state)[: args.limit]
    if args.json:
        print_json([run_row(r) for r in found])
        return 0
    if not found:
        print("no runs")
    for run in found:
        print(
            f"{run.id}  {run.pipeline:<16} {run.state:<9} {len(run.steps):>3} steps  "
            f"{run.config_path or ''}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """``zentrack show RUN_ID``."""
    init_for_read(args.store)
    run = zt.get_run(args.run_id)
    if args.json:
        print_json(run_row(run))
        return 0
    print(f"run       {run.id}")
    print(f"pipeline  {run.pipeline} ({run.source})")
    print(f"state     {run.state}" + (f": {run.error}" if run.error else ""))
    print(f"params    {run.params}")
    print(f"config    {run.config_path}")
    print("steps:")
    print_records(run.steps, False)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``zentrack compare [RUN_ID...] [--pipeline P] [--last N] [--differing]``."""
    init_for_read(args.store)
    comparison = zt.compare_runs(args.pipeline, runs=args.run_ids or None, last=args.last)
    if args.json:
        print_json(
            {
                "runs": [r.id for r in comparison.runs],
                "params": comparison.params,
                "metrics": comparison.metrics,
                "differing": comparison.differing(),
            }
        )
    else:
        print(comparison.to_text(only_differing=args.differing))
    return 0

