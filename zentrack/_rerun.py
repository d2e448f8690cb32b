"""Running a pipeline again from a YAML config, and resolving config sources.

The config's step args take precedence over the values written in the
pipeline's code: each step call of the run looks up its config key and, if
the config has args for it, calls the step with those instead.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zentrack._pipeline import PIPELINE_ATTR, PipelineSpec, Run, run_pipeline
from zentrack.exceptions import ConfigError

if TYPE_CHECKING:
    from zentrack._config import Config


def resolve_source(source: str) -> Any:
    """Import ``package.module.QualName`` and return the object it names.

    Tries the longest importable module prefix first, so nested qualnames
    (``module.Class.method``) resolve too.  Only imports and attribute
    lookups happen: nothing is called.
    """
    parts = source.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(f"No module found for {source!r}.")


def pipeline_spec(config: Config) -> PipelineSpec:
    """Validate a config against its code and return its pipeline's spec."""
    from zentrack._config import validate_against

    validate_against(config, resolve_source)
    spec = getattr(resolve_source(config.pipeline_source), PIPELINE_ATTR, None)
    if not isinstance(spec, PipelineSpec):  # validate_against checked it; keep mypy honest
        raise ConfigError(f"{config.pipeline_source!r} is not a zentrack pipeline.")
    return spec


def run_config(config: Config, *, config_dir: str | os.PathLike[str] | None = None) -> Run[Any]:
    """Rerun a config's pipeline with the config's args; return the new run.

    Nothing runs unless the whole config validates against the code first.
    """
    spec = pipeline_spec(config)
    overrides = {key: step.plain_args() for key, step in config.steps.items()}
    return run_pipeline(
        spec,
        (),
        config.plain_pipeline_args(),
        overrides=overrides,
        config_dir=Path(config_dir) if config_dir is not None else None,
    )
