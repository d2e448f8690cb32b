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
    """``zentrack find [--step S] [--state S] [--limit N] [--order-by KEY] name[__op]=VALUE``."""
    where = assignments(args.where, "param[__op]=value")
    init_for_read(args.store)
    found = zt.find(
        args.step, state=args.state, limit=args.limit, order_by=args.order_by, **where
    )
    print_records(found, args.json)
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
    """``zentrack runs [--pipeline P] [--state S] [--tag K=V]... [--limit N]``."""
    from zentrack._report.text import runs_text

    tags = tag_filters(args.tag or [])
    init_for_read(args.store)
    limit = args.limit or None  # one more than shown tells whether older runs exist
    found = zt.runs(args.pipeline, state=args.state, tags=tags, limit=limit and limit + 1)
    shown = found[:limit]
    if args.json:
        print_json([run_row(r) for r in shown])
        return 0
    print(runs_text(shown))
    if len(found) > len(shown):
        print("... older runs not shown (--limit 0 shows all)")
    return 0


def tag_filters(items: list[str]) -> dict[str, str]:
    """``["team=vision"]`` -> ``{"team": "vision"}``: tag values are text, as typed."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"zentrack: --tag takes key=value (got {item!r}), e.g. team=vision")
        out[key] = value
    return out


def cmd_show(args: argparse.Namespace) -> int:
    """``zentrack show RUN``: a run by id or unique id prefix."""
    from zentrack._report.text import run_text

    init_for_read(args.store)
    run = zt.get_run(args.run_id)
    if args.json:
        print_json(run_row(run))
        return 0
    print(run_text(run))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``zentrack compare [RUN...] [--pipeline P] [--last N] [--html FILE] [--sort/--best ...]``."""
    init_for_read(args.store)
    comparison = zt.compare_runs(args.pipeline, runs=args.run_ids or None, last=args.last)
    if args.html:
        path = comparison.to_html(args.html, title=args.title, color_by=args.color_by)
        size = path.stat().st_size
        count = len(comparison.runs)
        print(f"wrote {path} ({count} run{'s' if count != 1 else ''}, {size / 1024:,.0f} KB)")
        return 0
    if args.json:
        print_json(
            {
                "runs": [r.id for r in comparison.runs],
                "params": comparison.params,
                "metrics": comparison.metrics,
                "differing": comparison.differing(),
            }
        )
        return 0
    descending = True if args.desc else (False if args.asc else None)
    print(
        comparison.to_text(
            only_differing=args.differing,
            precision=args.precision,
            sort=args.sort,
            best=args.best,
            descending=descending,
            runs_as=args.runs_as,
        )
    )
    return 0
