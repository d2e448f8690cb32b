"""Running a pipeline again from a YAML config, and resolving config sources.

The config's step args take precedence over the values written in the
pipeline's code: each step call of the run looks up its config key and, if
the config has args for it, calls the step with those instead.

A step key the run never calls would leave its args unused, and the rerun
would not be the run the config describes.  Which keys a pipeline calls is
known before it runs when the run that wrote the config is in the store,
COMPLETE, and had the same pipeline args: then such a key is refused with
the other problems of the config, and nothing runs.  Otherwise (a config
from another store, ``run_id: null``, edited pipeline args, a failed
recorded run) it can only be known afterwards: the run is then recorded
FAILED and a :class:`ConfigError` names the keys it never called.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Protocol

from zentrack._config.import_effects import refuse_if_import_runs_steps
from zentrack._config.sources import SourceGuard
from zentrack._record import tracker as _tracker
from zentrack._runs.context import ConfigArgs
from zentrack._runs.pipeline import PIPELINE_ATTR, PipelineSpec, Run, run_pipeline
from zentrack._step.source_names import unimportable_main
from zentrack._step.values import canonical_json
from zentrack.exceptions import ConfigError


class StepArgs(Protocol):
    """One step entry of a config, as a rerun reads it."""

    @property
    def source(self) -> str: ...

    def plain_args(self) -> dict[str, Any]: ...


class RerunnableConfig(Protocol):
    """What a rerun or a plan reads of a loaded config (:class:`~.model.Config` has it).

    A protocol rather than the model's class: the model calls the rerun, so
    the rerun must not import the model.
    """

    @property
    def path(self) -> Path | None: ...

    @property
    def meta(self) -> dict[str, Any]: ...

    @property
    def pipeline_source(self) -> str: ...

    @property
    def run_id(self) -> str | None: ...

    @property
    def steps(self) -> Mapping[str, StepArgs]: ...

    def plain_pipeline_args(self) -> dict[str, Any]: ...

    def conflict_error(
        self, key: str, name: str, value: Any, code_value: Any, pipeline_args: list[str]
    ) -> ConfigError: ...


#: Validates a config against its code, given how to resolve a source and the
#: recorded ``(run id, step keys)`` (raises ConfigError: nothing may run).
Check = Callable[[Callable[[str], Any], "tuple[str, Collection[str]] | None"], None]


def resolve_source(source: str) -> Any:
    """Import ``package.module.QualName`` and return the object it names.

    Tries the longest importable module prefix first, so nested qualnames
    (``module.Class.method``) resolve too.  Only imports and attribute
    lookups happen: nothing is called.  A ``__main__`` source that does not
    resolve here (defined in another process's script or REPL) is an
    ImportError saying it must move into an importable module.
    """
    try:
        return _import_source(source)
    except (ImportError, AttributeError) as exc:
        hint = unimportable_main(source)
        if hint is None:
            raise
        raise ImportError(hint) from exc


def _running_script(module_name: str) -> Any:
    """``__main__`` when it is the script ``module_name`` names, else None.

    A config records ``train.training`` for a pipeline defined in
    ``python train.py``; rerun from inside that script (``cfg.run()`` at its
    end), importing ``train`` would run the whole script a second time, with
    its runs.  The objects already loaded in ``__main__`` are the same code.
    """
    if module_name in sys.modules:
        return None
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if not main_file or getattr(main, "__spec__", None) is not None:
        return None  # REPL, notebook, or `python -m` (whose module name is exact)
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    if origin and os.path.realpath(origin) == os.path.realpath(main_file):
        return main
    return None


def _import_source(source: str) -> Any:
    parts = source.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = _running_script(module_name)
            if obj is None:
                if module_name not in sys.modules:
                    refuse_if_import_runs_steps(module_name)
                obj = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"No module found for {source!r}.")


def step_overrides(
    config: RerunnableConfig, recorded: Run[Any] | None
) -> dict[str, ConfigArgs]:
    """The config's step args by key, each knowing what the recorded run passed.

    The rule (README, "Pipelines, runs and configs"): an edited pipeline arg
    reaches the steps it feeds; an edited step arg wins for that step; both
    edited to different values is a ConfigError naming both lines.  Which
    edits were made is known against the run that wrote the config; without
    it in the store (or of another pipeline) the step args apply as written.
    """
    plain = {key: step.plain_args() for key, step in config.steps.items()}
    if recorded is None or recorded.source != config.pipeline_source:
        return {key: ConfigArgs(args) for key, args in plain.items()}
    pipeline_args = config.plain_pipeline_args()
    edited = [
        name
        for name, value in pipeline_args.items()
        if name not in recorded.params
        or canonical_json(value) != canonical_json(recorded.params[name])
    ]
    if not edited:
        return {key: ConfigArgs(args) for key, args in plain.items()}
    calls = recorded.keyed_steps()

    def conflict(key: str) -> Callable[[str, Any, Any], Exception]:
        return lambda name, value, code: config.conflict_error(key, name, value, code, edited)

    return {
        key: ConfigArgs(
            args,
            recorded=calls[key].params if key in calls else None,
            conflict=conflict(key),
        )
        for key, args in plain.items()
    }


def recorded_run(run_id: str | None) -> Run[Any] | None:
    """The run with exactly this id, read from the store (None if absent or unreadable)."""
    if run_id is None:
        return None
    from zentrack._runs.query import run_from_context
    from zentrack._store.schema import RUN_CONTEXT

    with contextlib.suppress(Exception):  # a store that is down cannot tell: check afterwards
        tracker = _tracker.active()
        tracker.flush()
        context = tracker.store.mlmd.get_context_by_type_and_name(RUN_CONTEXT, run_id)
        if context is not None:
            return run_from_context(tracker.store, context)
    return None


def recorded_calls(config: RerunnableConfig) -> tuple[str, list[str]] | None:
    """``(run id, step keys)`` a run of the config is known to call, or None if unknown.

    Known from the run that wrote the config when it is in the store,
    COMPLETE, of the same pipeline, and had the config's pipeline args: the
    same code then makes the same step calls.
    """
    run = recorded_run(config.run_id)
    if run is None or run.state != "COMPLETE" or run.source != config.pipeline_source:
        return None
    try:
        same_args = canonical_json(run.params) == canonical_json(config.plain_pipeline_args())
    except (TypeError, ValueError):
        return None
    if not same_args:
        return None
    return run.id, [record.key or record.step for record in run.steps]


#: The key under ``pipeline:`` of a config that records the project's root folder.
ROOT_KEY = "root"


def project_root(config: RerunnableConfig) -> Path | None:
    """The root folder the config records (see :func:`import_root`), if it is safe to use.

    Importing from a folder runs its code, so a config (which may come from
    someone else) cannot name just any folder: the recorded root is used
    only if the config file lies inside it or the current folder does, i.e.
    the config belongs to that project or zentrack runs from inside it.
    """
    recorded = config.meta.get(ROOT_KEY)
    if not isinstance(recorded, str) or not os.path.isabs(recorded):
        return None
    root = Path(os.path.realpath(recorded))
    if not root.is_dir():
        return None
    places = [Path(os.path.realpath(os.getcwd()))]
    if config.path is not None:
        places.append(Path(os.path.realpath(config.path)))
    return root if any(place.is_relative_to(root) for place in places) else None


def use_project_root(config: RerunnableConfig) -> None:
    """Put the config's project root at the end of ``sys.path``, so its modules import.

    At the end, as the command line adds the current folder: a file there
    cannot shadow a module that is already importable.
    """
    root = project_root(config)
    if root is not None and str(root) not in sys.path:
        sys.path.append(str(root))


def _import_hint(config: RerunnableConfig) -> ConfigError | None:
    """One line saying which folder to run from, when the pipeline's module is not found."""
    source = config.pipeline_source
    top = source.partition(".")[0]
    if top in sys.modules or unimportable_main(source) is not None:
        return None
    try:
        found = importlib.util.find_spec(top)  # imports nothing for a top-level name
    except (ImportError, ValueError):
        found = None
    if found is not None:
        return None  # importable: the check reports any other problem, with its place
    recorded = config.meta.get(ROOT_KEY)
    where = (
        f"run zentrack from {recorded} (the folder the run was made in) or add that folder "
        "to PYTHONPATH"
        if isinstance(recorded, str)
        else f"run zentrack from the folder that holds {top!r}, or add that folder to PYTHONPATH"
    )
    label = str(config.path) if config.path is not None else "config"
    return ConfigError(
        f"{label}: the pipeline {source!r} cannot be imported from {os.getcwd()} (no module "
        f"named {top!r}); {where}"
    )


def source_guard(config: RerunnableConfig, recorded: Run[Any] | None = None) -> SourceGuard:
    """Resolves ``config``'s sources, importing only its pipeline's own code.

    ``recorded`` is the run that wrote the config: the step sources it used
    may be imported too (see :mod:`.sources`).
    """
    used = [record.source for record in recorded.steps] if recorded is not None else []
    return SourceGuard(config.pipeline_source, used, resolve_source)


def pipeline_spec(
    config: RerunnableConfig,
    check: Check,
    resolve: Callable[[str], Any] | None = None,
    *,
    recorded: bool = True,
) -> PipelineSpec:
    """Validate a config against its code with ``check`` and return its pipeline's spec.

    The config's project root goes on ``sys.path`` first; a pipeline whose
    module is still not found is one error naming the folder to run from
    (rather than one per step source).  ``resolve`` imports the config's
    sources (default: :func:`source_guard`, which imports only the
    pipeline's own code).  ``recorded=False`` checks without the recorded
    run, opening no store (there is none yet).
    """
    use_project_root(config)
    hint = _import_hint(config)
    if hint is not None:
        raise hint
    if resolve is None:
        resolve = source_guard(config, recorded_run(config.run_id) if recorded else None)
    check(resolve, recorded_calls(config) if recorded else None)
    spec = getattr(resolve(config.pipeline_source), PIPELINE_ATTR, None)
    if not isinstance(spec, PipelineSpec):  # validate_against checked it; keep mypy honest
        raise ConfigError(f"{config.pipeline_source!r} is not a zentrack pipeline.")
    return spec


def run_config(
    config: RerunnableConfig,
    *,
    check: Check,
    unused_error: Callable[[str, list[str]], ConfigError],
    config_dir: str | os.PathLike[str] | None = None,
) -> Run[Any]:
    """Rerun a config's pipeline with the config's args; return the new run.

    Nothing runs unless the whole config validates against the code first
    (``check``); ``unused_error(run_id, keys)`` is the error for step keys
    the run turned out never to call.

    Raises:
        ConfigError: the config does not match the code (nothing ran), or the
            run never made a step call the config has args for, which could
            only be seen once it ran (see the module's docstring); that run
            is recorded FAILED.
    """
    recorded = recorded_run(config.run_id)
    spec = pipeline_spec(config, check, source_guard(config, recorded))
    overrides = step_overrides(config, recorded)
    return run_pipeline(
        spec,
        (),
        config.plain_pipeline_args(),
        overrides=overrides,
        config_dir=Path(config_dir) if config_dir is not None else None,
        unused_error=unused_error,
    )
