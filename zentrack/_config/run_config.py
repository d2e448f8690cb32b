"""Writing the config of a run: the file a pipeline run leaves for its rerun.

Knows nothing of reruns or plans (which read configs), so the pipeline that
writes a config imports only this, the YAML I/O and the load-time checks.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
from ruamel.yaml.comments import CommentedMap

from zentrack._config.large_values import MAX_INLINE_BYTES, pointer
from zentrack._config.spelling import PLAIN, dump, new_yaml, styled
from zentrack._config.validate import PIPELINE_KEYS, loads_as
from zentrack._config.yaml_io import checked, content_digest, plain_document, write_atomically
from zentrack._files import make_dirs, replace_file
from zentrack._step.values import exact_value
from zentrack.exceptions import ConfigError

log = logging.getLogger("zentrack")

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
        ),
    )
    return target


@attrs.frozen
class RenderedConfig:
    """A run config ready to write.

    Attributes:
        text: the YAML text.
        digest: its content digest (:func:`~.yaml_io.content_digest`), recorded
            with the run so that a rerun by run id can refuse a config whose
            sources or args changed since.
        values: the files of args too large to inline (see :mod:`.large_values`),
            by name relative to the config's folder.
    """

    text: str
    digest: str
    values: dict[str, bytes]


def save_run_config(target: Path, rendered: RenderedConfig) -> None:
    """Write a rendered run config and its value files, creating missing folders."""
    make_dirs(target.parent)
    for name, data in rendered.values.items():
        make_dirs((target.parent / name).parent)
        replace_file(target.parent / name, data)
    write_atomically(target, rendered.text, bom=False)


def render_run_config(
    target: Path,
    *,
    pipeline_source: str,
    pipeline_args: Mapping[str, Any],
    run_id: str,
    steps: Sequence[tuple[str, str, Mapping[str, Any]]],
    meta: Mapping[str, Any],
) -> RenderedConfig:
    """What :func:`write_run_config` writes to ``target`` (see there).

    An arg whose exact form is over :data:`~.large_values.MAX_INLINE_BYTES`
    is written to a file beside the config, with a warning naming it, and the
    config holds a pointer with its sha256 (see :mod:`.large_values`).
    """
    values: dict[str, bytes] = {}
    stem = target.name.removesuffix(".yaml")
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
    pipeline["args"] = _sorted_args(pipeline_args, "pipeline args", stem, values)
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
        entry["args"] = _sorted_args(args, f"args of step {key!r}", stem, values)
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
    return RenderedConfig(text, content_digest(data), values)



def _sorted_args(
    args: Mapping[str, Any], owner: str, stem: str, values: dict[str, bytes]
) -> CommentedMap:
    mapping = CommentedMap()
    for name in sorted(args):
        if not isinstance(name, str):
            raise ConfigError(f"write_run_config: {owner} have the non-string name {name!r}.")
        value = args[name]
        if type(value) in (list, tuple, dict, str):
            exact = exact_value(value)
            if len(exact) > MAX_INLINE_BYTES:
                ref, file, data = pointer(stem, exact)
                values[file] = data
                log.warning(
                    "zentrack: arg %r of %s is %d kB, too large to inline in the run's config "
                    "(over %d kB); it is written to %s beside the config, which holds its "
                    "sha256.",
                    name,
                    owner.removeprefix("args of "),
                    len(exact) // 1024,
                    MAX_INLINE_BYTES // 1024,
                    file,
                )
                value = ref
        mapping[name] = styled(checked(value, f"{owner}: {name}"))
    return mapping
