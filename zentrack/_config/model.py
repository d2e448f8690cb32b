"""The config model: a loaded config to read, edit in place, save, diff, run and plan.

YAML I/O and quoting are in :mod:`.yaml_io`, the load-time checks in
:mod:`.validate`, the checks against the code in :mod:`.against_code`, the
byte patcher that saves only what changed in :mod:`.patcher`, and the
writer of a run's config in :mod:`.run_config`; reruns and plans (which
:meth:`Config.run` and :meth:`Config.plan` call) in :mod:`.rerun` and
:mod:`.plan`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from ruamel.yaml.comments import CommentedMap

from zentrack._config import against_code
from zentrack._config.comments import comments, unkept
from zentrack._config.large_values import copy_value_files, is_pointer, resolve_args
from zentrack._config.patcher import patched
from zentrack._config.spans import Unpatchable
from zentrack._config.spelling import int_digits_limit, styled, too_many_digits
from zentrack._config.validate import PIPELINE_KEYS, Parsed, check_shape, parse
from zentrack._config.yaml_io import (
    Mark,
    Problems,
    checked,
    config_error,
    content_digest,
    key_mark,
    map_mark,
    plain_document,
    plain_value,
    read_config_file,
    same,
    same_ordered,
    to_plain,
    value_mark,
    write_atomically,
)
from zentrack._step.spec import spec_of
from zentrack._step.values import MISSING
from zentrack.exceptions import ConfigError

if TYPE_CHECKING:
    from zentrack._config.plan import Plan
    from zentrack._runs.pipeline import Run

__all__ = ["MISSING", "Config", "StepConfig", "diff_configs", "load_config"]


@attrs.frozen
class StepConfig:
    """One entry under ``steps:``.

    Frozen so that an edit cannot silently miss the file: ``args`` is the
    mapping held by the loaded document, so ``args["lr"] = 0.02`` is saved.

    Attributes:
        key: the key under ``steps:`` (``"trainer"``, or ``"trainer#2"`` for the
            step's second call in one run).
        source: ``"package.module.QualName"`` of the step function or class.
        args: the step's parameters as they are in the file.
    """

    key: str
    source: str
    args: MutableMapping[str, Any] = attrs.field(repr=lambda args: repr(dict(args)))
    #: The config's folder and name, where args too large to inline are kept.
    folder: Path | None = attrs.field(default=None, repr=False)
    label: str = attrs.field(default="", repr=False)

    def plain_args(self) -> dict[str, Any]:
        """The args as exact builtin types: what a run passes to the step.

        An arg written beside the config (too large to inline, see
        :mod:`.large_values`) is read back here, its sha256 checked.
        """
        plain: dict[str, Any] = plain_value(self.args, "args", -1)
        return resolve_args(plain, self.folder, self.label)



class Config:
    """A loaded config: edit its args in place, then :meth:`save`.

    Made by :func:`load_config`.  ``steps`` and ``pipeline_args`` are live
    views of the document: assign to their keys (or use :meth:`set`) and
    the change is saved.  Steps cannot be added or removed through this
    object; write a new config with :func:`write_run_config` for that.
    Comments are kept, not edited: one added through ruamel's comment API is
    not written.
    """

    def __init__(
        self, parsed: Parsed, text: str, *, path: Path | None, label: str, bom: bool = False
    ) -> None:
        self.path = path
        self._data: CommentedMap = parsed.data
        self._label = label
        self._bom = bom
        pipeline = self._data["pipeline"]
        args = pipeline.get("args")
        self._pipeline_args: CommentedMap = args if args is not None else CommentedMap()
        self._entries: dict[str, CommentedMap] = dict(self._data["steps"].items())
        self._folder = path.parent if path is not None else None
        self.steps: dict[str, StepConfig] = {
            key: StepConfig(key, str(entry["source"]), entry["args"], self._folder, label)
            for key, entry in self._entries.items()
        }
        self._baseline(parsed, text)

    def _baseline(self, parsed: Parsed, text: str) -> None:
        """Remember the text as written, which the next save patches."""
        self._parsed = parsed
        self._text = text
        self._snapshot = plain_document(self._data)

    def __repr__(self) -> str:
        return (
            f"<Config {self._label} pipeline={self.pipeline_source!r} run_id={self.run_id!r} "
            f"steps={list(self.steps)}>"
        )

    @property
    def pipeline_source(self) -> str:
        """``"package.module.function"`` of the ``@zentrack.pipeline`` function."""
        return str(self._data["pipeline"]["source"])

    @property
    def pipeline_args(self) -> MutableMapping[str, Any]:
        """The pipeline function's own arguments (empty if the file has none)."""
        return self._pipeline_args

    @property
    def run_id(self) -> str | None:
        """The id of the run that wrote the config, if it says."""
        run_id = self._data["pipeline"].get("run_id")
        return None if run_id is None else str(run_id)

    @property
    def meta(self) -> dict[str, Any]:
        """What else ``pipeline:`` records (zentrack version, fingerprint scheme, ...)."""
        pipeline = self._data["pipeline"]
        return {k: to_plain(v) for k, v in pipeline.items() if k not in PIPELINE_KEYS}

    def plain_pipeline_args(self) -> dict[str, Any]:
        """The pipeline args as exact builtin types: what a run passes to the pipeline."""
        plain: dict[str, Any] = plain_value(self._pipeline_args, "pipeline args", -1)
        return resolve_args(plain, self._folder, self._label)

    def set(self, dotted: str, value: Any) -> None:
        """Set one existing arg from a dotted key, as ``zentrack config set`` does.

        ``"trainer.lr"`` is ``steps["trainer"].args["lr"]``, ``"pipeline.lr"``
        the pipeline's own ``lr``, ``"trainer.optimizer.lr"`` a key inside a
        mapping arg, and ``"steps.KEY.lr"`` names a step explicitly (for a step
        keyed ``pipeline``).  A quoted string stays quoted the same way, and a
        block scalar (``|``) stays one, unless the new string holds what only
        double quotes can write (a line break in a single-quoted string, a
        tab, NEL, LS, PS or a control character): then it is double-quoted.

        When the source of the step (or pipeline) can be imported, the arg is
        checked against its signature as :meth:`run` would check it, so a
        value that run would refuse is refused now and nothing changes.

        Raises:
            ConfigError: no such step or arg, ``value`` is not of a tracked
                type, or its type contradicts the signature.
        """
        step, parts = self._path(dotted)
        target, key = self._locate(dotted)
        old = target[key]
        target[key] = styled(checked(value, dotted))  # ruamel keeps an old string's style
        try:
            self._check_arg(step, parts[0])
        except ConfigError:
            target[key] = old
            raise

    def _check_arg(self, step: str | None, name: str) -> None:
        """Check one arg of a step (None: of the pipeline) against the code, if it imports."""
        from zentrack._config.rerun import source_guard

        source = self.pipeline_source if step is None else self.steps[step].source
        resolve = source_guard(self)  # only the pipeline's own code is imported
        try:
            obj = resolve(self.pipeline_source)
            if step is not None:
                obj = resolve(source)
        except Exception:  # code that does not import here is checked when it runs
            return
        args: MutableMapping[str, Any]
        if step is None:
            spec = getattr(obj, "__zentrack_pipeline__", None)
            owner, declared, args = "the pipeline", None, self._pipeline_args
        else:
            spec = spec_of(obj)
            owner, args = f"step {step!r}", self.steps[step].args
            declared = None if spec is None else spec.declared
        if spec is None:
            return
        problems = Problems(self._label)
        against_code.check_args(owner, spec.signature, declared, args, problems, only=name)
        problems.raise_if_any()

    def _path(self, dotted: str) -> tuple[str | None, list[str]]:
        """The step key (None for the pipeline) and the arg path a dotted key names."""
        head, _, rest = dotted.partition(".")
        if head == "pipeline" and rest:
            return None, rest.split(".")
        key, rest = _split_step(dotted, self.steps)
        if key is None:
            raise ConfigError(
                f"{self._label}: {dotted!r} names no arg; write 'pipeline.ARG' or "
                f"'STEP.ARG' with STEP one of {sorted(self.steps)}."
            )
        return key, rest.split(".")

    def _locate(self, dotted: str) -> tuple[CommentedMap, str]:
        step, parts = self._path(dotted)
        owner = "the pipeline" if step is None else f"step {step!r}"
        mapping: Any = self._pipeline_args if step is None else self.steps[step].args
        for depth, part in enumerate(parts):
            if not isinstance(mapping, CommentedMap) or part not in mapping:
                inside = ".".join(parts[:depth])
                where = f"{owner}" + (f" arg {inside!r}" if inside else "")
                valid = sorted(mapping) if isinstance(mapping, Mapping) else []
                line, col = map_mark(mapping)
                raise ConfigError(
                    f"{self._label}:{line + 1}:{col + 1}: {where} has no arg {part!r} "
                    f"(it has {valid}); fix the name in {dotted!r}, or add the arg to the "
                    "file first."
                )
            if depth < len(parts) - 1:
                mapping = mapping[part]
        return mapping, parts[-1]

    def _attach(self) -> None:
        """Put pipeline args given in memory into a file that had none."""
        pipeline = self._data["pipeline"]
        if len(self._pipeline_args) and "args" not in pipeline:
            position = sum(1 for key in ("source", "run_id") if key in pipeline)
            pipeline.insert(position, "args", self._pipeline_args)

    def to_text(self) -> str:
        """The config as it would be saved, checked to load back as it is in memory."""
        return self._saved()[0]

    def _saved(self) -> tuple[str, Parsed]:
        """The text to save and its parse: the last text with only the edits patched in.

        The patched text is read back and must give the data in memory, keys
        in order, and keep every comment but those on the lines of entries
        the edits removed.

        Raises:
            ConfigError: a value is not tracked, or an edit cannot be saved
                without changing more than it (naming it, at its line).
        """
        self._attach()
        plain = plain_document(self._data)
        self._check_int_lengths()
        root = self._parsed.root
        assert root is not None  # a config's document is never empty
        try:
            result = patched(self._text, root, self._snapshot, plain, self._data)
        except Unpatchable as exc:
            raise self._unsaved(exc.index, exc.path, exc.reason) from None
        first = result.edits[0][0] if result.edits else 0
        unchanged = result.text == self._text
        try:
            parsed = self._parsed if unchanged else parse(result.text, self._label)
        except ConfigError as exc:
            reason = f"the text written would not load ({exc})"
            raise self._unsaved(first, result.edit_at(first), reason) from None
        read = self._snapshot if unchanged else plain_document(parsed.data)
        if not same_ordered(read, plain):
            reason = "the text written would not read back as the values in memory"
            raise self._unsaved(first, result.edit_at(first), reason)
        if unchanged:
            return self._text, parsed
        lost, gained = unkept(
            comments(self._text, root), comments(result.text, parsed.root), result.droppable
        )
        if lost:
            at, comment = lost[0]
            reason = f"it would drop the comment {comment!r}"
            raise self._unsaved(at, result.edit_at(at), reason)
        if gained:
            reason = f"it would add the comment {gained[0]!r}"
            raise self._unsaved(first, result.edit_at(first), reason)
        return result.text, parsed

    def _unsaved(self, index: int, path: str, reason: str) -> ConfigError:
        """The error for an edit that cannot be saved without changing more than it."""
        line = self._text.count("\n", 0, index)
        col = index - (self._text.rfind("\n", 0, index) + 1)
        return config_error(
            self._label,
            (line, col),
            f"the edit of {path!r} cannot be saved in place: {reason}; make this edit in a "
            "text editor, or in smaller steps",
        )

    def _check_int_lengths(self) -> None:
        """Refuse an int set in memory that no Python YAML reader could read back."""
        stack: list[tuple[Any, Any, Mark]] = [(self._data, None, (0, 0))]
        while stack:
            value, name, mark = stack.pop()
            if isinstance(value, CommentedMap):
                stack += [(item, key, key_mark(value, key)) for key, item in value.items()]
            elif isinstance(value, (list, tuple, dict)):
                items = value.values() if isinstance(value, dict) else value
                stack += [(item, name, mark) for item in items]
            elif type(value) is int and too_many_digits(value):
                raise config_error(
                    self._label,
                    mark,
                    f"the int for {name!r} has more than {int_digits_limit()} digits, which "
                    "Python and so YAML readers do not read back; write it as a string "
                    "(str(n)) or a float",
                )

    def run(self, *, config_dir: str | os.PathLike[str] | None = None) -> Run[Any]:
        """Rerun the pipeline with this config's args; return the new :class:`Run`.

        The whole config is validated against the code before anything runs;
        the config's args take precedence over the values in the pipeline's code
        (a class-step instance built before the run runs on a stand-in built
        with the config's args).

        Raises:
            ConfigError: the config does not match the code: nothing ran.  Also
                raised after the run when it never made a step call the config
                has args for and that could not be known beforehand (the run
                that wrote the config is not in the store, or had other
                pipeline args); that run is recorded FAILED.
        """
        from zentrack._config.rerun import run_config

        return run_config(
            self,
            check=self._check_against,
            unused_error=lambda run_id, keys: unused_keys_error(self, run_id, keys),
            config_dir=config_dir,
        )

    def plan(self) -> Plan:
        """Say, without running anything, which steps would hit or miss the cache."""
        from zentrack._config.plan import plan_config

        return plan_config(self, check=self._check_against)

    def _check_against(
        self, resolve: Callable[[str], Any], recorded: tuple[str, Collection[str]] | None
    ) -> None:
        """Validate against the code before a run or plan (see :func:`validate_against`)."""
        validate_against(self, resolve, recorded=recorded)

    def conflict_error(
        self, key: str, name: str, value: Any, code_value: Any, pipeline_args: list[str]
    ) -> ConfigError:
        """The error for a step arg edited apart from the edited pipeline args feeding it."""
        line, col = value_mark(self.steps[key].args, name)
        feeding = ", ".join(
            f"{arg!r} ({self._label}:{value_mark(self._pipeline_args, arg)[0] + 1})"
            for arg in pipeline_args
        )
        return ConfigError(
            f"{self._label}:{line + 1}:{col + 1}: step {key!r} arg {name!r} is edited to "
            f"{value!r}, but the edited pipeline arg(s) {feeding} give it {code_value!r}; "
            "edit only one of the two, or make them agree."
        )

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the config, changing only what was edited, and return where.

        Every byte outside the edited values, entries and items stays as it
        was (comments, spacing, quotes, anchors, line ends); the text written
        is read back and must hold the values in memory, keys in order, and
        every comment but those on the lines of entries the edits removed.

        Args:
            path: where to write (default: the file it was loaded from); the
                config then belongs to that file.

        Raises:
            ConfigError: a value set in memory is not of a tracked type (or an
                int too long to read back), or an edit cannot be saved without
                changing more than it, e.g. dropping a comment (the error names
                the edit, why and its line); nothing is written.
            OSError: the file cannot be written (an existing one is left as it was).
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ConfigError("This config was not loaded from a file; pass save(path).")
        recorded = recorded_run_of(target)
        if recorded is not None:
            suggestion = target.with_name(f"{target.stem}-tuned{target.suffix or '.yaml'}")
            raise ConfigError(
                f"{target} is the config run {recorded} wrote: it records what ran, so it is "
                f"never overwritten; save your edits to a new file, e.g. "
                f"cfg.save({str(suggestion)!r}), and run that one."
            )
        text, parsed = self._saved()
        if self._folder is not None and target.parent.resolve() != self._folder.resolve():
            refs = [
                value
                for args in (self._pipeline_args, *(s.args for s in self.steps.values()))
                for value in args.values()
                if is_pointer(value)
            ]
            copy_value_files(refs, self._folder, target.parent, self._label)
        write_atomically(target, text, self._bom)
        self._label = str(target)  # errors now name the file the config belongs to
        self._baseline(parsed, text)
        self.path = target
        return target



def recorded_run_of(path: Path) -> str | None:
    """The run whose own config ``path`` is, or None: such a file is never overwritten.

    A run writes ``<pipeline>-<run id>.yaml`` with ``run_id: <run id>`` in
    it; a file that is both is what that run recorded (``zentrack show`` and
    the YAML must keep agreeing).  Any other file, including a copy of it,
    may be saved over.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
        data = parse(text.replace("\r\n", "\n"), str(path)).data
    except (OSError, UnicodeError, ConfigError):
        return None
    pipeline = data.get("pipeline") if isinstance(data, Mapping) else None
    run_id = pipeline.get("run_id") if isinstance(pipeline, Mapping) else None
    if isinstance(run_id, str) and run_id and path.stem.endswith(f"-{run_id}"):
        return run_id
    return None


def _split_step(dotted: str, steps: Mapping[str, Any]) -> tuple[str | None, str]:
    """Split ``"KEY.arg"`` (or ``"steps.KEY.arg"``) at the longest matching step key."""
    candidates = [dotted[len("steps.") :]] if dotted.startswith("steps.") else []
    for text in [*candidates, dotted]:
        keys = [key for key in steps if text.startswith(f"{key}.") and len(text) > len(key) + 1]
        if keys:
            key = max(keys, key=len)
            return key, text[len(key) + 1 :]
    return None, ""



def _step_prefix(key: str) -> str:
    return f"steps.{key}" if key in ("pipeline", "steps") else key



def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, check and return the config at ``path``.

    Nothing is constructed before every node is known to be a plain tracked
    value, so a hostile file cannot run code.

    Raises:
        ConfigError: listing every problem found, each as ``file:line:column:
            what is wrong; what to do``.
    """
    file = Path(path)
    label = str(path)
    text, bom = read_config_file(file)
    parsed = parse(text, label)
    if parsed.root is None:
        raise config_error(
            label,
            (0, 0),
            "the config is empty; it needs `pipeline:` (with a source) and `steps:`",
        )
    problems = Problems(label)
    check_shape(parsed.data, parsed.root, problems)
    problems.raise_if_any()
    return Config(parsed, text, path=file, label=label, bom=bom)



def load_recorded_config(
    run_id: str, path: Path | None, sha256: str | None, folder: Path
) -> Config:
    """The config run ``run_id`` wrote, for a rerun by run id, if what it says is unchanged.

    The store names the file and anyone who can write the store can rewrite
    that name; anyone who can write the configs folder can rewrite the file.
    So the file must lie directly in ``folder`` (the store's configs folder)
    and its content must have the digest the run recorded when it wrote it
    (:func:`~.yaml_io.content_digest`: comments and layout may change,
    sources and args may not).

    Raises:
        ConfigError: no config, a file elsewhere, no digest recorded (a run
            of an older zentrack), or changed sources or args; each says to
            copy the file and run the copy with ``zentrack config run``.
    """
    hint = "copy it and use `zentrack config run COPY` after reading it"
    if path is None:
        raise ConfigError(f"Run {run_id} has no config to rerun from.")
    real = Path(os.path.realpath(path))
    if real.parent != Path(os.path.realpath(folder)) or path.is_symlink():
        raise ConfigError(
            f"{path}: the store names this file as the config of run {run_id}, but it is "
            f"not in the store's configs folder {str(folder)!r}, so zentrack does not rerun it "
            f"by run id; {hint}."
        )
    if sha256 is None:
        raise ConfigError(
            f"{path}: run {run_id} recorded no sha256 of its config (an older zentrack "
            f"wrote it), so zentrack cannot tell whether it changed since; {hint}."
        )
    config = load_config(path)
    if content_digest(config._data) != sha256:
        raise ConfigError(
            f"{path}: the sources or args of this config changed since run {run_id} wrote it "
            f"(its digest differs from the one recorded with the run), so zentrack does not "
            f"rerun it by run id; {hint}."
        )
    return config


def diff_configs(a: Config, b: Config) -> list[tuple[str, Any, Any]]:
    """List the args that differ between two configs, sorted by dotted key.

    Keys are ``"pipeline.ARG"`` and ``"STEP.ARG"`` (``"steps.STEP.ARG"`` for a
    step keyed ``pipeline`` or ``steps``), the spelling :meth:`Config.set`
    accepts.  Values are plain and compared exactly, as the fingerprint
    does: ``1`` and ``1.0`` differ, NaN equals NaN.  An arg only one config
    has gets :data:`MISSING` on the other side.  Sources are not compared.
    """
    left, right = _flat_args(a), _flat_args(b)
    rows: list[tuple[str, Any, Any]] = []
    for key in sorted(left.keys() | right.keys()):
        old, new = left.get(key, MISSING), right.get(key, MISSING)
        if old is MISSING or new is MISSING or not same(old, new):
            rows.append((key, old, new))
    return rows



def _flat_args(config: Config) -> dict[str, Any]:
    flat = {f"pipeline.{k}": v for k, v in config.plain_pipeline_args().items()}
    for key, step in config.steps.items():
        prefix = _step_prefix(key)
        flat.update({f"{prefix}.{name}": value for name, value in step.plain_args().items()})
    return flat


def validate_against(
    config: Config,
    resolve: Callable[[str], Any],
    *,
    recorded: tuple[str, Collection[str]] | None = None,
) -> None:
    """Check a config against the code it names, before anything runs.

    See :func:`zentrack._config.against_code.check_document`, which does it.

    Args:
        config: the loaded config.
        resolve: imports what a source names.
        recorded: ``(run id, config keys)`` of the step calls a run of this
            pipeline made with the config's pipeline args, when known; a step
            key not among them would not be used, so it is refused.

    Raises:
        ConfigError: listing every problem, each as ``file:line:column: ...``.
    """
    against_code.check_document(
        config._label, config._data, config._pipeline_args, resolve, recorded=recorded
    )


def unused_keys_error(config: Config, run_id: str, keys: Collection[str]) -> ConfigError:
    """The error for step keys of ``config`` that run ``run_id`` never called.

    Raised after the run, when the keys a pipeline calls could not be known
    before it (see :func:`zentrack._config.rerun.recorded_calls`).
    """
    return against_code.unused_keys_error(config._label, config._data, run_id, keys)
