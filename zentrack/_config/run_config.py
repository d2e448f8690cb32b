"""Writing the config of a run: the file a pipeline run leaves for its rerun.

Knows nothing of reruns or plans (which read configs), so the pipeline that
writes a config imports only this, the YAML I/O and the load-time checks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from ruamel.yaml.comments import CommentedMap

from zentrack._config.spelling import PLAIN, dump, new_yaml, styled
from zentrack._config.validate import PIPELINE_KEYS, loads_as
from zentrack._config.yaml_io import checked, content_digest, plain_document, write_atomically
from zentrack.exceptions import ConfigError

_HEADER: Final = (
    "written by zentrack for run {run_id}; edit args and rerun with `zentrack config run FILE`"
)

#: A written run config larger than this is not read back to check it.
_VERIFY_WRITTEN_BYTES: Final = 256 * 1024



def write_run_config(
    path: str | os.PathLike[str],
    *,
    pipeline_source: str,
    pipeline_args: Mapping[str, Any],
    run_id: str,
    steps: Sequence[tuple[str, str, Mapping[str, Any]]],
    meta: Mapping[str, Any],
) -> Path:
    """Write a fresh config for a run, creating missing directories, and return its path.

    Args are written with their keys sorted (nested mappings keep their
    order), tuples as lists; ``meta`` (zentrack version, fingerprint
    scheme, creation time, ...) goes under ``pipeline:`` after the args.

    Args:
        path: the file to write (replaced atomically if it exists).
        pipeline_source: ``"package.module.function"`` of the pipeline.
        pipeline_args: the pipeline function's own arguments.
        run_id: the run the config records.
        steps: ``(key, source, args)`` in call order.
        meta: more facts about the run, of tracked types.

    Raises:
        ConfigError: a value is not of a tracked type, a step key repeats, or a
            meta key is one of ``source``, ``run_id``, ``args``.
        OSError: the file cannot be written.
    """
    target = Path(path)
    save_run_config(
        target,
        render_run_config(
            target,
            pipeline_source=pipeline_source,
            pipeline_args=pipeline_args,
            run_id=run_id,
            steps=steps,
            meta=meta,
        )[0],
    )
    return target


def save_run_config(target: Path, text: str) -> None:
    """Write a rendered run config, creating missing folders."""
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, text, bom=False)


def render_run_config(
    target: Path,
    *,
    pipeline_source: str,
    pipeline_args: Mapping[str, Any],
    run_id: str,
    steps: Sequence[tuple[str, str, Mapping[str, Any]]],
    meta: Mapping[str, Any],
) -> tuple[str, str]:
    """The text :func:`write_run_config` writes to ``target`` (see there), and its digest.

    The digest (:func:`~.yaml_io.content_digest`) is recorded with the run,
    so that a rerun by run id can refuse a config whose sources or args
    someone changed since (see :func:`~zentrack._config.model.load_recorded_config`).
    """
    for name, value in (("pipeline_source", pipeline_source), ("run_id", run_id)):
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"write_run_config: {name} must be a non-empty string (got {value!r})."
            )
    clash = sorted(set(meta) & set(PIPELINE_KEYS))
    if clash:
        raise ConfigError(
            f"write_run_config: meta keys {clash} clash with the config's own keys; rename them."
        )
    pipeline = CommentedMap()
    pipeline["source"] = pipeline_source
    pipeline["run_id"] = run_id
    pipeline["args"] = _sorted_args(pipeline_args, "pipeline args")
    for key, value in meta.items():
        pipeline[key] = styled(checked(value, f"pipeline.{key}"))
    entries = CommentedMap()
    for key, source, args in steps:
        if key in entries:
            raise ConfigError(
                f"write_run_config: the step key {key!r} repeats; step keys must be unique."
            )
        if not isinstance(key, str) or not key or not isinstance(source, str) or not source:
            raise ConfigError(
                f"write_run_config: step key and source must be non-empty strings "
                f"(got {key!r}, {source!r})."
            )
        entry = CommentedMap()
        entry["args"] = _sorted_args(args, f"args of step {key!r}")
        entry["source"] = source
        entries[key] = entry
    data = CommentedMap()
    data["pipeline"] = pipeline
    data["steps"] = entries
    shown = run_id if PLAIN.fullmatch(run_id) else json.dumps(run_id)  # a comment is raw
    data.yaml_set_start_comment(_HEADER.format(run_id=shown))
    text = dump(data, new_yaml())
    # ruamel's own emitter wrote it; reading it back is a self-check, skipped
    # for huge configs, where ruamel's pure-Python scanner takes seconds a MB.
    if len(text) <= _VERIFY_WRITTEN_BYTES and not loads_as(text, plain_document(data)):
        raise ConfigError(
            f"write_run_config: the config for {str(target)!r} would not load back as given; "
            "please report this as a zentrack bug, with the args."
        )
    return text, content_digest(data)



def _sorted_args(args: Mapping[str, Any], owner: str) -> CommentedMap:
    mapping = CommentedMap()
    for name in sorted(args):
        if not isinstance(name, str):
            raise ConfigError(f"write_run_config: {owner} have the non-string name {name!r}.")
        mapping[name] = styled(checked(args[name], f"{owner}: {name}"))
    return mapping
