"""Checking a config against the code it names, before anything runs.

The pipeline source must name a ``@zentrack.pipeline`` function and each
step source a ``@zentrack.step`` whose name matches its key; every arg must
be a parameter of its callable, of a type its default allows.  These
functions read the loaded document itself (its marks give every problem
a line and column); :mod:`.model` calls them for a :class:`~.model.Config`.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Collection, Mapping, MutableMapping
from typing import Any, Final

from ruamel.yaml.comments import CommentedMap

from zentrack._config.large_values import is_pointer
from zentrack._config.sources import SourceRefused, source_name_problem
from zentrack._config.validate import parse_value
from zentrack._config.yaml_io import Mark, Problems, key_mark, shown, to_plain, value_mark
from zentrack._step.spec import spec_of
from zentrack._step.values import describe_type
from zentrack.exceptions import ConfigError


class _NoDefault(enum.Enum):
    NO_DEFAULT = 0



#: Which value types an arg may hold, by the type of its default.
_FITS: Final[dict[type, tuple[type, ...]]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    str: (str,),
    list: (list,),
    tuple: (list,),
    dict: (dict,),
}

_KIND_NAMES: Final = {
    bool: "a bool",
    int: "an int",
    float: "a float",
    str: "a string",
    list: "a list",
    tuple: "a list",
    dict: "a mapping",
}



def check_document(
    label: str,
    data: CommentedMap,
    pipeline_args: MutableMapping[str, Any],
    resolve: Callable[[str], Any],
    *,
    recorded: tuple[str, Collection[str]] | None = None,
) -> None:
    """Check a config against the code it names, before anything runs.

    ``resolve(source)`` imports and returns what a source names (raising
    ImportError or AttributeError).  The pipeline source must name a
    ``@zentrack.pipeline`` function, and the config must give every argument
    of it that has no default; each step source must name a
    ``@zentrack.step`` whose name matches its key; every arg must be one of
    the callable's parameters, of a type its default allows (an int where a
    float is the default is fine, a bool where an int is is not; None is
    always allowed).

    Args:
        label: the config's name in messages (its path).
        data: the loaded document (shape already checked).
        pipeline_args: the pipeline's args (an empty mapping if it has none).
        resolve: imports what a source names.
        recorded: ``(run id, config keys)`` of the step calls a run of this
            pipeline made with the config's pipeline args, when known; a step
            key not among them would not be used, so it is refused.

    Raises:
        ConfigError: listing every problem, each as ``file:line:column: ...``.
    """
    problems = Problems(label)
    pipeline = data["pipeline"]
    pipeline_source = str(pipeline["source"])
    # Every source is judged by its name before anything is imported.
    named = [(pipeline_source, value_mark(pipeline, "source"))] + [
        (str(entry["source"]), value_mark(entry, "source")) for entry in data["steps"].values()
    ]
    for source, mark in named:
        problem = source_name_problem(source)
        if problem is not None:
            problems.add(mark, problem)
    problems.raise_if_any()
    obj = _resolved(resolve, pipeline_source, value_mark(pipeline, "source"), problems)
    if obj is not None:
        spec = getattr(obj, "__zentrack_pipeline__", None)
        if spec is None:
            problems.add(
                value_mark(pipeline, "source"),
                f"{pipeline_source!r} is {_kind_of(obj)}, not a pipeline; source must "
                "name a function decorated with @zentrack.pipeline",
            )
        else:
            check_args("the pipeline", spec.signature, None, pipeline_args, problems)
            _check_required(data, pipeline_args, spec.signature, problems)
    for key, entry in data["steps"].items():
        source = str(entry["source"])
        mark = value_mark(entry, "source")
        obj = _resolved(resolve, source, mark, problems)
        if obj is None:
            continue
        step_spec = spec_of(obj)
        if step_spec is None:
            problems.add(
                mark,
                f"{source!r} is {_kind_of(obj)}, not a zentrack step; source must name a "
                "function or class decorated with @zentrack.step",
            )
            continue
        base, sep, count = key.rpartition("#")
        if not (
            key == step_spec.name
            or (sep and base == step_spec.name and count.isdigit() and int(count) >= 2)
        ):
            problems.add(
                key_mark(data["steps"], key),
                f"the step key {key!r} does not match the name {step_spec.name!r} of its source; "
                f"write {step_spec.name!r} (or {step_spec.name + '#2'!r} for its second call)",
            )
        elif recorded is not None and key not in recorded[1]:
            problems.add(
                key_mark(data["steps"], key),
                _uncalled_key(key, step_spec.name, *recorded),
            )
        declared = step_spec.declared
        check_args(f"step {key!r}", step_spec.signature, declared, entry["args"], problems)
    problems.raise_if_any()



def _uncalled_key(key: str, name: str, run_id: str, keys: Collection[str]) -> str:
    """Why a step key that the recorded run never called is refused."""
    calls = [
        k for k in keys if k == name or (k.startswith(f"{name}#") and k[len(name) + 1 :].isdigit())
    ]
    shown = ", ".join(repr(k) for k in calls)
    if len(calls) == 1:
        made = f"called step {name!r} once (key {shown})"
        fix = f"remove the key or fix it to {shown}"
    elif calls:
        made = f"called step {name!r} {len(calls)} times (keys {shown})"
        fix = f"remove the key or fix it to one of {shown}"
    else:
        made, fix = f"never called step {name!r}", "remove the key"
    return (
        f"the pipeline makes no step call keyed {key!r}: the run {run_id} that wrote this "
        f"config {made} with the same pipeline args, so these args would not be used; {fix} "
        "(if the pipeline's code now makes this call, run the pipeline to write a config "
        "that has it)"
    )



def _check_required(
    data: CommentedMap, pipeline_args: Mapping[str, Any], signature: Any, problems: Problems
) -> None:
    """Every pipeline argument without a default must be in the config's pipeline args."""
    missing = [
        name
        for name in signature.names
        if name not in signature.defaults and name not in pipeline_args
    ]
    if not missing:
        return
    pipeline = data["pipeline"]
    mark = key_mark(pipeline, "args") if "args" in pipeline else key_mark(data, "pipeline")
    names = ", ".join(repr(name) for name in missing)
    problems.add(
        mark,
        f"the pipeline needs the arg{'s' if len(missing) > 1 else ''} {names}, which the config "
        "does not give (a run writes only args of tracked types, not data such as a dataset); "
        f"add {'them' if len(missing) > 1 else 'it'} under `args:` of `pipeline:`, or give "
        f"{'them defaults' if len(missing) > 1 else 'it a default'} in the pipeline's code",
    )



def unused_keys_error(
    label: str, data: CommentedMap, run_id: str, keys: Collection[str]
) -> ConfigError:
    """The error for step keys of ``config`` that run ``run_id`` never called.

    Raised after the run, when the keys a pipeline calls could not be known
    before it (see :func:`zentrack._config.rerun.recorded_calls`).
    """
    problems = Problems(label)
    steps = data["steps"]
    for key in keys:
        problems.add(
            key_mark(steps, key),
            f"the run {run_id} made no step call keyed {key!r}, so these args were not used "
            "and the run is recorded FAILED; remove the key or fix it (the config that run "
            "wrote lists the calls it made)",
        )
    return problems.error()



def _kind_of(obj: Any) -> str:
    if isinstance(obj, type):
        return "a class"
    if callable(obj):
        return "a function"
    return f"a {describe_type(obj)}"



def _resolved(resolve: Callable[[str], Any], source: str, mark: Mark, problems: Problems) -> Any:
    try:
        return resolve(source)
    except SourceRefused as exc:
        problems.add(mark, str(exc))
        return None
    except (ImportError, AttributeError) as exc:
        problems.add(
            mark,
            f"{source!r} cannot be imported ({type(exc).__name__}: {exc}); check the dotted "
            "name and that its package is importable",
        )
        return None



def check_args(
    owner: str,
    signature: Any,
    declared: frozenset[str] | None,
    args: MutableMapping[str, Any],
    problems: Problems,
    *,
    only: str | None = None,
) -> None:
    names: tuple[str, ...] = tuple(signature.names)
    defaults: Mapping[str, Any] = signature.defaults
    for name, raw in args.items():
        if only is not None and name != only:
            continue
        if name not in names:
            extra = signature.var_keyword
            if extra is None:
                problems.add(
                    key_mark(args, name),
                    f"{owner} has no arg {name!r}; valid args are {', '.join(names) or 'none'}, "
                    "so remove it or fix its name",
                )
            elif name == extra:
                if not isinstance(to_plain(args[name]), dict):
                    problems.add(
                        value_mark(args, name),
                        f"arg {name!r} of {owner} holds its **{extra} keyword args, so it must "
                        f"be a mapping such as {{momentum: 0.9}}",
                    )
            else:
                # Its **kwargs are recorded under their own name: a key beside
                # them would be dropped silently on the rerun.
                problems.add(
                    key_mark(args, name),
                    f"{owner} has no arg {name!r}; its other keyword args go under "
                    f"{extra!r} (its **{extra}), so write it as {extra}: {{{name}: ...}}",
                )
            continue
        if declared is not None and name not in declared:
            problems.add(
                key_mark(args, name),
                f"{name!r} is an input of {owner}, not a parameter (see params= of its "
                "@step); remove it from the config",
            )
            continue
        default = defaults.get(name, _NoDefault.NO_DEFAULT)
        fits = _FITS.get(type(default))
        value = to_plain(raw)
        if fits is None or value is None or type(value) in fits or is_pointer(value):
            continue  # a pointer to a value file: the value zentrack wrote, checked on load
        kind = _KIND_NAMES[type(default)]
        hint = ""
        if type(value) is str:
            with contextlib.suppress(ConfigError):
                hint = " without quotes" if type(parse_value(value)) in fits else ""
        problems.add(
            value_mark(args, name),
            f"arg {name!r} of {owner} is {shown(value)}, but its default {default!r:.40} is "
            f"{kind}; write {kind}{hint}",
        )
