"""``@pipeline``: one invocation of a function groups its step calls into a run.

A run is journaled like step calls are: a ``run`` line when it starts and
one when it ends, which the store turns into an MLMD Context of type
``zentrack.PipelineRun`` (child of the ``zentrack.Pipeline`` context), with
every step execution of the run associated with it.  At the end the run's
YAML config is written (:mod:`zentrack._config.run_config`).

Nested pipelines do not start runs of their own: their steps belong to the
outermost run, so one config reruns the whole thing.  Steps called outside
any pipeline belong to no run (``record.run_id is None``).

Steps called on other threads while a run is in progress (a
``ThreadPoolExecutor`` the pipeline uses, say) belong to that run, although
threads do not inherit the context variable holding it: a thread without a
run in its context joins the one run in progress in the process.  When
several runs are in progress at once (pipelines called on several threads),
such a thread cannot tell which one it works for, and its step calls belong
to no run; submit them as ``contextvars.copy_context().run`` (a copy made
in the pipeline, one per task) to keep them in it.  A pipeline called
on such a thread is not nested: it starts a run of its own.  Keys of calls
made concurrently follow the order in which they start.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import re
import reprlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, Final, Generic, ParamSpec, Protocol, TypeVar, overload

import attrs

from zentrack._files import make_dirs, open_own
from zentrack._record import tracker as _tracker
from zentrack._record.journal import ALIVE_SUFFIX, writer_tag
from zentrack._record.line import Record, run_line
from zentrack._runs.annotate import annotate, check_note, check_tags
from zentrack._runs.context import RunState, current_run, run_ended, run_started
from zentrack._step.params import Signature, callable_signature
from zentrack._step.source_names import source_of
from zentrack._step.values import NOT_TRACKED, as_tracked, decode_exact, exact_value
from zentrack._store.schema import RUN_CONTEXT
from zentrack.exceptions import ConfigError

P = ParamSpec("P")
R = TypeVar("R")

PIPELINE_ATTR: Final = "__zentrack_pipeline__"
_UNSAFE_FILE_CHARS: Final = re.compile(r"[^A-Za-z0-9._-]")
log = logging.getLogger("zentrack")


@attrs.frozen
class PipelineSpec:
    """What is fixed about one pipeline function."""

    name: str
    source: str
    signature: Signature
    function: Callable[..., Any] = attrs.field(repr=False)
    tags: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(repr=False, getstate_setstate=False)
class Run(Generic[R]):
    """One invocation of a pipeline, as recorded.

    Attributes:
        id: the run id (the MLMD Context's name).
        pipeline: the pipeline's name.
        state: ``"RUNNING"``, ``"COMPLETE"``, ``"FAILED"`` or ``"CANCELED"``.
        steps: the records of the run's step calls, in call order.
        params: the pipeline function's own arguments of tracked types.
        config_path: the YAML config written at the end of the run.
        config_sha256: the digest of what that config says (sources and args,
            not comments or layout) as written: a rerun by run id refuses the
            file if that changed since.
        output: what the pipeline function returned (only on the run that
            ``training()`` returned in this process; ``None`` when read back).
        started: when the run started (seconds since the epoch).
        ended: when it ended (``None`` while it runs).
        run_metrics: metrics logged in the pipeline's body outside any step.
        tags: the run's tags (``@pipeline(tags=...)``, then :meth:`tag`).
        notes: the run's free-text note (:meth:`note`), if any.
    """

    id: str
    pipeline: str
    state: str
    _steps: list[Record] | None = attrs.field(alias="steps")
    params: dict[str, Any]
    config_path: Path | None
    started: float = 0.0
    ended: float | None = None
    source: str = ""
    error: str | None = None
    context_id: int | None = None
    output: R | None = None
    run_metrics: dict[str, Any] = attrs.field(factory=dict)
    tags: dict[str, str] = attrs.field(factory=dict)
    notes: str | None = None
    config_sha256: str | None = None
    #: Reads the steps from the store when ``steps`` was not given: a run
    #: returned in-process leaves its records to the lazy flush until asked.
    _loader: Callable[[], list[Record] | None] | None = attrs.field(
        default=None, alias="loader", eq=False, repr=False
    )

    @property
    def steps(self) -> list[Record]:
        """The records of the run's step calls, in call order."""
        if self._steps is None:
            steps = self._loader() if self._loader is not None else []
            if steps is None:
                return []  # the store is unreachable now: ask again later
            object.__setattr__(self, "_steps", steps)
            return steps
        return self._steps

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (and deep-copy) with the steps read, without the live store reader."""
        state = {field.name: getattr(self, field.name) for field in attrs.fields(type(self))}
        state["_steps"] = self.steps if self._steps is None else self._steps
        state["_loader"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        tags = f", tags={reprlib.repr(self.tags)}" if self.tags else ""
        return (
            f"Run(id={self.id!r}, pipeline={reprlib.repr(self.pipeline)}, state={self.state}, "
            f"steps={len(self.steps)}, config_path={str(self.config_path)!r}{tags})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython: the run as ``zentrack show`` prints it."""
        from zentrack._report.text import run_text

        printer.text(run_text(self))

    def _repr_html_(self) -> str:
        """Jupyter: the run's fields and a table of its steps."""
        from zentrack._report.notebook import run_html

        return run_html(self)

    def tag(self, **tags: str | None) -> None:
        """Set (or, with ``None``, remove) tags of this run: ``run.tag(data="v2")``.

        Journaled at once and written to the run's MLMD Context by the next
        flush (its custom properties ``zentrack.tag.<key>``); this object's
        :attr:`tags` follow.  Runs can be found by tag: ``zt.runs(tags={...})``.

        Raises:
            ValueError: a key that cannot be a tag key, or a value over 500 characters.
            TypeError: a value that is not a str or None.
        """
        checked = check_tags(tags)
        annotate(self.id, tags=checked)
        current = dict(self.tags)
        for key, value in checked.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        object.__setattr__(self, "tags", current)

    def note(self, text: str | None) -> None:
        """Set this run's free-text note (``None`` removes it); see :meth:`tag`.

        Raises:
            TypeError: ``text`` is not a str or None.
            ValueError: ``text`` is over 20,000 characters.
        """
        checked = check_note(text)
        annotate(self.id, note=checked)
        object.__setattr__(self, "notes", checked)

    def metrics(self) -> dict[str, dict[str, Any]]:
        """Metrics of each step call, by config key."""
        return {key: record.metrics for key, record in self.keyed_steps().items()}

    def keyed_steps(self) -> dict[str, Record]:
        """The run's records under their config keys (``trainer``, ``trainer#2``, ...)."""
        out: dict[str, Record] = {}
        for record in self.steps:
            out[record.key or record.step] = record
        return out


def _run_line(state: RunState, status: str, **more: Any) -> str:
    if state.tags:
        more["tags"] = state.tags
    return run_line(state.id, state.pipeline, state.source, status, state.alive_file, **more)


class _Alive:
    """A file this process holds locked while any of its runs is in progress.

    A drainer that can lock it knows the process died mid-run, and marks the
    run FAILED instead of leaving it RUNNING forever.
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self._fd: int | None = None
        self._pid = -1

    def acquire(self, directory: Path | None) -> str:
        import fcntl

        if directory is None:
            return ""
        if self._fd is not None and self._pid == os.getpid():
            return self.path.name if self.path else ""
        make_dirs(directory)
        path = directory / (writer_tag() + ALIVE_SUFFIX)
        fd = open_own(path, os.O_RDWR, exclusive=True)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path, self._fd, self._pid = path, fd, os.getpid()
        atexit.register(self.release)
        return path.name

    def release(self) -> None:
        """At exit: runs are finished, the file has done its job."""
        if self._fd is not None and self._pid == os.getpid() and self.path is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


_alive = _Alive()


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """While a run is active, let SIGTERM unwind it so its state gets recorded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:
        yield
        return
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def new_run_id() -> str:
    """A sortable, unique run id: UTC time then random hex."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(4).hex()


def run_pipeline(
    spec: PipelineSpec,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    config_dir: Path | None = None,
    unused_error: Callable[[str, list[str]], Exception] | None = None,
) -> Run[Any]:
    """Run a pipeline function as one tracked run and return the run.

    Args:
        spec: the pipeline.
        args: its positional arguments.
        kwargs: its keyword arguments.
        overrides: args by config key (``trainer``, ``trainer#2``, ...) that
            replace the values the code passes to those step calls.
        config_dir: where the run's config goes (default: the tracker's).
        unused_error: builds the error for the override keys the run (its
            id given) never called (default: a plain :class:`ConfigError`).

    Raises:
        ConfigError: the pipeline returned, but never made some of the step
            calls that ``overrides`` has args for, so the run is not the one
            asked for; it is recorded FAILED, with its config.
    """
    tracker = _tracker.active()
    bound = spec.signature.bind(args, kwargs)
    plain = {k: as_tracked(v) for k, v in bound.items()}
    params = {k: v for k, v in plain.items() if v is not NOT_TRACKED}
    state = RunState(
        id=new_run_id(),
        pipeline=spec.name,
        source=spec.source,
        overrides=dict(overrides or {}),
        alive_file=_alive.acquire(tracker.location.journal_dir),
        tags=spec.tags,
    )
    started = time.time_ns()
    tracker.record(_run_line(state, "RUNNING", t0=started, p=json.loads(exact_value(params))))
    token = current_run.set(state)
    run_started(state)
    status, error, output = "COMPLETE", None, None
    try:
        with _sigterm_as_exception():
            output = spec.function(*args, **kwargs)
        unused = [key for key in state.overrides if key not in state.entries]
        if unused:
            raise (unused_error or _unused_error)(state.id, unused)
    except BaseException as exc:
        status = "FAILED" if isinstance(exc, Exception) else "CANCELED"
        error = f"{type(exc).__qualname__}: {exc}"[:4000]
        raise
    finally:
        run_ended(state)
        current_run.reset(token)
        config_path, config_sha256 = _write_config(tracker, spec, state, params, config_dir)
        ended = time.time_ns()
        tracker.record(
            _run_line(
                state,
                status,
                t0=started,
                t1=ended,
                p=json.loads(exact_value(params)),
                config=str(config_path) if config_path else None,
                config_sha256=config_sha256,
                err=error,
            )
        )
        if status != "COMPLETE":
            with contextlib.suppress(Exception):
                tracker.flush()
    return Run(
        id=state.id,
        pipeline=spec.name,
        state=status,
        steps=None,
        loader=functools.partial(_read_steps, tracker, state.id),
        params=params,
        config_path=config_path,
        started=started / 1e9,
        ended=ended / 1e9,
        source=spec.source,
        output=output,
        run_metrics=dict(state.metrics),
        tags=dict(state.tags),
        config_sha256=config_sha256,
    )


def _unused_error(run_id: str, keys: list[str]) -> ConfigError:
    return ConfigError(
        f"The run {run_id} never made the step calls {keys} that it was given args for, so "
        "those args were not used; remove those keys from the config or fix them."
    )


def _read_steps(tracker: _tracker.Tracker, run_id: str) -> list[Record] | None:
    """The run's step records, flushed first (None, with a warning, if unreadable)."""
    tracker.flush_for_read()  # warns if records cannot be written
    try:
        context = tracker.store.mlmd.get_context_by_type_and_name(RUN_CONTEXT, run_id)
        return [] if context is None else tracker.store.run_steps(context.id)
    except Exception as exc:  # the store may be down: the run still happened
        if tracker.strict:
            raise
        tracker.store_failed(exc)
        return None


def config_file_stem(name: str) -> str:
    """A pipeline's name made safe as the start of its configs' file names.

    Only ``[A-Za-z0-9._-]`` are kept, anything else becomes ``_`` and so do
    leading dots: the file always lands directly in the configs folder (no
    separator, no ``..``, not hidden), whatever the name.  The run keeps the
    exact name; the file name only has to be unique, which the run id makes it.
    """
    safe = _UNSAFE_FILE_CHARS.sub("_", name)
    kept = safe.lstrip(".")
    return "_" * (len(safe) - len(kept)) + kept


def _write_config(
    tracker: _tracker.Tracker,
    spec: PipelineSpec,
    state: RunState,
    params: Mapping[str, Any],
    config_dir: Path | None,
) -> tuple[Path | None, str | None]:
    """Write the run's config; return its path and its content digest (or Nones)."""
    from zentrack._config.run_config import render_run_config, save_run_config
    from zentrack._step.fingerprint import SCHEME
    from zentrack._step.source_names import import_root

    directory = config_dir or tracker.configs
    path = directory / f"{config_file_stem(spec.name)}-{state.id}.yaml"
    entries = list(state.entries.items())  # a straggling worker thread may still add one
    steps = [(key, source, decode_exact(exact)) for key, (source, exact) in entries]
    try:
        rendered = render_run_config(
            path,
            pipeline_source=spec.source,
            pipeline_args=dict(params),
            run_id=state.id,
            steps=steps,
            meta={
                "zentrack": _version(),
                "fingerprint_scheme": SCHEME,
                **({"root": root} if (root := import_root(spec.function)) else {}),
            },
        )
        save_run_config(path, rendered)
        return path, rendered.digest
    except (OSError, ConfigError, ValueError, UnicodeError) as exc:
        log.warning(
            "zentrack: could not write the config of run %s to %s (%s).", state.id, path, exc
        )
        return None, None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zentrack")
    except PackageNotFoundError:
        return "unknown"


class PipelineDecorator(Protocol):
    """What ``@pipeline(name=...)`` returns."""

    def __call__(self, fn: Callable[P, R], /) -> Callable[P, Run[R]]: ...


@overload
def pipeline(fn: Callable[P, R], /) -> Callable[P, Run[R]]: ...
@overload
def pipeline(
    fn: None = None, /, *, name: str | None = None, tags: Mapping[str, str] | None = None
) -> PipelineDecorator: ...
def pipeline(
    fn: Any = None, /, *, name: str | None = None, tags: Mapping[str, str] | None = None
) -> Any:
    """Make each call of ``fn`` one tracked run of its step calls.

    Calling the decorated function returns the :class:`Run` (its
    ``.output`` is what ``fn`` returned) and writes the run's YAML config,
    from which :func:`zentrack.load_config` can rerun it with edited args.

    Args:
        fn: the pipeline function (given by the bare ``@pipeline`` form).
        name: the pipeline's name in the store (default: ``__name__``); no
            ``#``.  Its configs' file names use it with anything outside
            ``[A-Za-z0-9._-]`` replaced by ``_`` (see :func:`config_file_stem`).
        tags: tags every run of the pipeline starts with (``{"team": "vision"}``);
            keys like identifiers (``.`` and ``-`` allowed), values strings.
            :meth:`Run.tag` changes them later.

    Raises:
        ValueError, TypeError: a tag that is not a valid key and string value.
    """
    given_tags = {k: str(v) for k, v in check_tags(tags or {}, removable=False).items()}

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(function) or isinstance(function, type):
            raise TypeError(f"@pipeline decorates functions (got {function!r}).")
        from zentrack._step.spec import check_name

        check_name("@pipeline(name=...)", name or function.__name__)
        spec = PipelineSpec(
            name=name or function.__name__,
            source=source_of(function),
            signature=Signature(callable_signature(function, drop_self=False)),
            function=function,
            tags=given_tags,
        )

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outer = current_run.get()
            if outer is not None:  # nested: its steps are part of the outer run
                output = function(*args, **kwargs)
                return Run(
                    id=outer.id,
                    pipeline=spec.name,
                    state="RUNNING",
                    steps=[],
                    params={},
                    config_path=None,
                    source=spec.source,
                    output=output,
                )
            return run_pipeline(spec, args, kwargs)

        setattr(wrapper, PIPELINE_ATTR, spec)
        return wrapper

    return decorate if fn is None else decorate(fn)
