"""The journal line, one owner: its keys, its version, its builders and its reader.

A journal line is one compact JSON object.  The builders here are the only
code that writes one (:func:`step_line` on the hot path of every tracked
call, from JSON texts the call already has; :func:`run_line` for pipeline
runs); :func:`parse_line` reads one back and :func:`record_from_line` turns
it into the :class:`Record` users read.

Keys of a step line, in the order written: ``v`` line version, ``id`` record
id, ``fp`` fingerprint, ``p`` exact params, ``i`` input digests, ``st``
state, ``t0``/``t1`` start and end in nanoseconds since the epoch, then the
optional ``err`` error, ``cached`` the record id a cache hit reuses, ``out``
the cached output, ``run``/``key`` run id and config key, ``m`` metrics,
then the step's own ``step``, ``src`` source, ``code`` code digest, ``cp``
code parts, ``ver`` version.  A run line has ``kind: "run"``, ``id``,
``pipeline``, ``src``, ``st``, ``pid``, ``host``, ``alive``, ``tags`` (given
to ``@pipeline``) and, as the run goes, ``t0``, ``t1``, ``p``, ``config``,
``err``.

An annotation line (:func:`annotation_line`) changes a run after the fact or
while it goes: ``kind: "annotate"``, ``run`` the run id, ``t`` when (ns), then
any of ``m`` run-level metrics (exact form), ``tags`` (``null`` removes one)
and ``note`` (``null`` removes it).  The store folds annotations into the
run's ``a`` key (:func:`merge_annotation`), last writer by ``t`` winning per
metric, per tag and for the note, so annotations drained out of order (two
processes' journals) still end as they were made.
``config_sha256`` is the digest of what the run's config says (see
``zentrack._config.yaml_io.content_digest``).

Journals and the store can be written by others (a shared folder, a shared
server), so :func:`parse_line` holds every line it reads to this schema
(:func:`validate_line`) and a line that breaks it is refused with a
``ValueError`` naming the key, before any of its values is used.
"""

from __future__ import annotations

import json
import json.scanner
import os
import re
import reprlib
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, Final

import attrs

from zentrack._record.journal import is_alive_name
from zentrack._step.values import MISSING, Missing, exact_value, untag

#: Journal line format version, written into every line as ``"v"``.
LINE_VERSION: Final = 1
#: The ``kind`` of a pipeline run's line and of a run annotation's line.
RUN_KIND: Final = "run"
ANNOTATION_KIND: Final = "annotate"
#: Params a record's repr shows (each value's repr cut by ``reprlib``).
_REPR_PARAMS: Final = 8
#: What a tag key may be: it becomes part of an MLMD property name and a CLI ``key=value``.
TAG_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
#: What a cached output's ``out`` key holds (from the cache's metadata).
OUTPUT_KEYS: Final = ("uri", "materializer", "type", "sha256", "size")
_HEAD: Final = f'{{"v":{LINE_VERSION},"id":"'
#: States a step line may record (MLMD execution states zentrack writes).
STEP_STATES: Final = frozenset({"COMPLETE", "FAILED", "CANCELED", "CACHED"})
#: States a run line may record.
RUN_STATES: Final = frozenset({"RUNNING", "COMPLETE", "FAILED", "CANCELED"})
_FINGERPRINT: Final = re.compile(r"[0-9a-f]{64}")


def step_line(
    record_id: str,
    fp: str | None,
    params: str,
    inputs: str,
    state: str,
    started: int,
    ended: int,
    more: str,
    tail: str,
) -> str:
    """One step call's journal line.

    Args:
        record_id: the record id.
        fp: the fingerprint; None when ``params`` is also the canonical
            params text, for the reader to compute (see
            :func:`with_fingerprint`): a step that does not cache needs no
            fingerprint while it runs.
        params: the exact params, as JSON text.
        inputs: the input digests, as JSON text.
        state: ``COMPLETE``, ``FAILED``, ``CANCELED`` or ``CACHED``.
        started: start time, nanoseconds since the epoch.
        ended: end time, likewise.
        more: the optional keys, built by :func:`error_key`, :func:`cached_key`,
            :func:`output_keys` and :func:`run_keys`, in that order ("" for none).
        tail: the step's own keys, built once per step by :func:`step_tail`.
    """
    fp_key = "" if fp is None else f'"fp":"{fp}",'
    return (
        f'{_HEAD}{record_id}",{fp_key}"p":{params},"i":{inputs},"st":"{state}",'
        f'"t0":{started},"t1":{ended}{more}{tail}}}\n'
    )


def step_tail(
    name: str, source: str, code: str, code_parts: Mapping[str, str], version: str | None
) -> str:
    """The keys of a step line that are the same for every call of the step."""
    return (
        f',"step":{encode_basestring_ascii(name)},'
        f'"src":{encode_basestring_ascii(source)},"code":"{code}",'
        f'"cp":{json.dumps(code_parts, sort_keys=True)},'
        f'"ver":{json.dumps(version)}'
    )


def error_key(message: str) -> str:
    """The ``err`` key of a failed call's line (the message cut at 4,000 characters)."""
    return f',"err":{json.dumps(message[:4000])}'


def cached_key(original: str | None) -> str:
    """The ``cached`` key of a cache hit's line: the record id of the call it reuses."""
    return f',"cached":{json.dumps(original)}'


def output_keys(meta: Mapping[str, Any] | None) -> str:
    """The ``out`` key of a journal line: where the call's output is cached ("" if not)."""
    if meta is None:
        return ""
    out = {k: meta[k] for k in OUTPUT_KEYS}
    return f',"out":{json.dumps(out)}'


def run_keys(metrics: Mapping[str, Any], key: tuple[str, str] | None) -> str:
    """The ``run``, ``key`` and ``m`` keys: a call's run id, config key and metrics."""
    text = ""
    if key is not None:
        text = (
            f',"run":{encode_basestring_ascii(key[0])},"key":{encode_basestring_ascii(key[1])}'
        )
    return text + f',"m":{exact_value(dict(metrics))}' if metrics else text


def run_line(
    run_id: str, pipeline: str, source: str, state: str, alive: str | None, **more: Any
) -> str:
    """A pipeline run's journal line (written at its start and at its end).

    ``more`` adds ``t0``, ``t1``, ``p`` (exact params, decoded), ``config``
    and ``err`` as the run goes.
    """
    data = {
        "v": LINE_VERSION,
        "kind": RUN_KIND,
        "id": run_id,
        "pipeline": pipeline,
        "src": source,
        "st": state,
        "pid": os.getpid(),
        "host": os.uname().nodename,
        "alive": alive,
        **more,
    }
    return json.dumps(data, separators=(",", ":"), allow_nan=True) + "\n"


def annotation_line(
    run_id: str,
    at: int,
    *,
    metrics: Mapping[str, Any] | None = None,
    tags: Mapping[str, str | None] | None = None,
    note: str | Missing | None = MISSING,
) -> str:
    """A run annotation's journal line: run-level metrics, tags or the note, changed at ``at``.

    Args:
        run_id: the run annotated.
        at: when, nanoseconds since the epoch (the later of two changes wins).
        metrics: run-level metrics (tracked values).
        tags: tags to set, ``None`` to remove one.
        note: the new note, ``None`` to remove it (``MISSING``: unchanged).
    """
    text = (
        f'{{"v":{LINE_VERSION},"kind":"{ANNOTATION_KIND}",'
        f'"run":{encode_basestring_ascii(run_id)},"t":{at}'
    )
    if metrics:
        text += f',"m":{exact_value(dict(metrics))}'
    if tags:
        text += f',"tags":{json.dumps(dict(tags), sort_keys=True)}'
    if note is not MISSING:
        text += f',"note":{json.dumps(note)}'
    return text + "}\n"


def merge_annotation(folded: Mapping[str, Any], line: Mapping[str, Any]) -> dict[str, Any]:
    """Fold one annotation line into a run's ``a`` key (a new dict; ``folded`` is kept).

    ``a`` holds ``{"m": {name: [exact, t]}, "tags": {key: [value or null, t]},
    "note": [text or null, t]}``: every entry keeps its time, so a change
    older than the one stored (a journal drained late) does not undo it, and
    a removal stays one.
    """
    at = line["t"]
    out: dict[str, Any] = {
        "m": dict(folded.get("m") or {}),
        "tags": dict(folded.get("tags") or {}),
    }
    if folded.get("note") is not None:
        out["note"] = folded["note"]
    for field in ("m", "tags"):
        for key, value in (line.get(field) or {}).items():
            if key not in out[field] or out[field][key][1] <= at:
                out[field][key] = [value, at]
    if "note" in line and ("note" not in out or out["note"][1] <= at):
        out["note"] = [line["note"], at]
    return out


def valid_annotation(line: Mapping[str, Any]) -> bool:
    """Tell whether a parsed annotation line has the shape :func:`annotation_line` writes.

    Lines come from journals other processes wrote: a bad one is skipped by
    the store rather than trusted (its tag keys become property names).
    """
    tags = line.get("tags") or {}
    return (
        type(line.get("run")) is str
        and bool(line["run"])
        and type(line.get("t")) is int
        and isinstance(line.get("m") or {}, dict)
        and isinstance(tags, dict)
        and all(
            type(k) is str and TAG_KEY.fullmatch(k) and (v is None or type(v) is str)
            for k, v in tags.items()
        )
        and (line.get("note") is None or type(line.get("note")) is str)
    )


def run_annotations(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], str | None]:
    """A run's metrics, tags and note from its stored data (run line keys plus ``a``).

    Tags given to ``@pipeline`` (the run line's ``tags``) come first; later
    annotations set, change or remove them.
    """
    folded = data.get("a") or {}
    metrics = untag({name: value for name, (value, _) in (folded.get("m") or {}).items()})
    tags = dict(data.get("tags") or {})
    for key, (value, _) in (folded.get("tags") or {}).items():
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = value
    note = folded.get("note")
    return metrics, tags, note[0] if note else None


@attrs.frozen(repr=False)
class Record:
    """One tracked call as stored: a read-only view of an MLMD Execution.

    Attributes:
        step: the step's name.
        fingerprint: the call's fingerprint (sha256 hex).
        params: the parameters, with their exact values and types.
        state: ``"COMPLETE"``, ``"FAILED"``, ``"CACHED"``, ...
        metrics: metrics logged during the call.
        execution_id: the MLMD Execution id (``None`` until flushed).
        run_id: the pipeline run it belongs to, if any.
    """

    step: str
    fingerprint: str
    params: dict[str, Any]
    state: str
    metrics: dict[str, Any] = attrs.field(factory=dict)
    execution_id: int | None = None
    run_id: str | None = None
    record_id: str = ""
    source: str = ""
    inputs: dict[str, str] = attrs.field(factory=dict)
    code: str = ""
    version: str | None = None
    error: str | None = None
    started: float = 0.0
    ended: float = 0.0
    cached_execution_id: int | None = None
    cached_record_id: str | None = None
    key: str | None = None
    code_parts: dict[str, str] = attrs.field(factory=dict)
    output_uri: str | None = None

    def __repr__(self) -> str:
        shown = list(self.params.items())[:_REPR_PARAMS]
        params = ", ".join(f"{k}={reprlib.repr(v)}" for k, v in shown)
        if len(self.params) > _REPR_PARAMS:
            params += f", ... {len(self.params) - _REPR_PARAMS} more"
        return (
            f"Record(step={reprlib.repr(self.step)}, state={self.state}, "
            f"fingerprint={self.fingerprint[:12]}…, execution_id={self.execution_id}, "
            f"params={{{params}}})"
        )

    def _repr_html_(self) -> str:
        """Jupyter: the record's fields, params and metrics as a table."""
        from zentrack._report.notebook import record_html

        return record_html(self)


def parse_line(line: bytes | str) -> dict[str, Any]:
    """Decode a journal line and check it against its schema.

    Params and metrics stay in their tagged JSON form (tuples as
    ``{"__tuple__": [...]}``); :func:`record_from_line` untags them.

    Raises:
        ValueError: not JSON, nested too deep to decode, another version, or
            a key missing or of the wrong type (:func:`validate_line`).
    """
    try:
        data = _scan_whole(line) if type(line) is str else json.loads(line)
    except RecursionError:
        raise ValueError("the line is nested too deep to decode") from None
    if type(data) is dict and "fp" not in data and "kind" not in data:
        text = line if isinstance(line, str) else line.decode("utf-8", "replace")
        fp = _fingerprint_of_line(text, data)
        if fp is not None:
            data["fp"] = fp
    return validate_line(data)


def _fingerprint_of_line(text: str, data: dict[str, Any]) -> str | None:
    """The fingerprint of a step line written without one, from its own text.

    Such a line's params are canonical (see :func:`step_line`), so its raw
    ``p`` and ``i`` texts and its step name, code digest and version are
    what the fingerprint hashes.  None if the line is not laid out as
    :func:`step_line` writes it: it is then refused for lacking ``fp``.
    """
    ident, step, code, version = data.get("id"), data.get("step"), data.get("code"), data.get("ver")
    if not (type(ident) is type(step) is type(code) is str and type(version) in (str, type(None))):
        return None
    head = _head_without_fp(ident)
    if not text.startswith(head):
        return None
    try:
        _, p_end = _scan(text, len(head))
        if not text.startswith(',"i":', p_end):
            return None
        _, i_end = _scan(text, p_end + 5)
    except (StopIteration, ValueError, RecursionError):
        return None
    from zentrack._step.fingerprint import fingerprint, identity, step_hasher

    primed = step_hasher(step, identity(version, code))
    return fingerprint(primed, text[len(head) : p_end], text[p_end + 5 : i_end])


def with_fingerprint(text: str, data: Mapping[str, Any]) -> str:
    """A step line's text with its ``fp`` key, as stored in MLMD (parsed ``data``'s).

    A line written without one gets it back where :func:`step_line` puts
    it, so a stored record's JSON always holds its fingerprint.
    """
    head = _head_without_fp(data["id"])
    if not text.startswith(head):
        return text
    return f'{_HEAD}{data["id"]}","fp":"{data["fp"]}","p":{text[len(head):]}'


def _head_without_fp(record_id: str) -> str:
    """How :func:`step_line` starts a line it writes without ``fp``."""
    return f'{_HEAD}{record_id}","p":'


_scan: Final[Callable[[str, int], tuple[Any, int]]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]  # (typeshed names the class, not its argument)
)


def _scan_whole(text: str) -> Any:
    """``json.loads(text)``: the scanner run directly on a line that is one JSON value.

    Skips ``loads``' layers (a drain reads every line); anything else (leading
    or trailing whitespace, extra data, not JSON) is left to ``json.loads``,
    which decodes it or raises its own error.
    """
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def _text(limit: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and len(v) <= limit


def _name(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 200 and v.isprintable()


def _int(v: Any) -> bool:
    return type(v) is int


def _text_map(v: Any) -> bool:
    return type(v) is dict and all(type(x) is str for x in v.values())


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _output(v: Any) -> bool:
    return (
        type(v) is dict
        and all(type(v.get(k)) is str for k in OUTPUT_KEYS if k != "size")
        and _int(v.get("size"))
    )


_ANY_TEXT: Final = _text(1 << 20)
#: key -> (required, check) for a step line; unknown keys are allowed (newer writers).
_STEP_SCHEMA: Final[dict[str, tuple[bool, Callable[[Any], bool]]]] = {
    "id": (True, _name),
    "fp": (True, lambda v: isinstance(v, str) and _FINGERPRINT.fullmatch(v) is not None),
    "p": (True, lambda v: v is None or type(v) is dict),
    "st": (True, lambda v: type(v) is str and v in STEP_STATES),
    "step": (True, _name),
    "i": (False, _optional(_text_map)),
    "t0": (False, _int),
    "t1": (False, _int),
    "err": (False, _optional(_ANY_TEXT)),
    "cached": (False, _optional(_name)),
    "out": (False, _optional(_output)),
    "run": (False, _optional(_name)),
    "key": (False, _optional(_name)),
    "m": (False, _optional(lambda v: type(v) is dict)),
    "src": (False, _ANY_TEXT),
    "code": (False, _ANY_TEXT),
    "cp": (False, _optional(_text_map)),
    "ver": (False, _optional(_ANY_TEXT)),
}
_RUN_SCHEMA: Final[dict[str, tuple[bool, Callable[[Any], bool]]]] = {
    "id": (True, _name),
    "st": (True, lambda v: type(v) is str and v in RUN_STATES),
    "pipeline": (True, lambda v: v == "" or _name(v)),
    "src": (False, _ANY_TEXT),
    "pid": (False, _int),
    "host": (False, _ANY_TEXT),
    "alive": (False, lambda v: v is None or v == "" or is_alive_name(v)),
    "t0": (False, _int),
    "t1": (False, _optional(_int)),
    "p": (False, lambda v: v is None or type(v) is dict),
    "config": (False, _optional(_ANY_TEXT)),
    "tags": (
        False,
        _optional(
            lambda v: type(v) is dict
            and all(TAG_KEY.fullmatch(str(k)) and type(x) is str for k, x in v.items())
        ),
    ),
    "a": (False, _optional(lambda v: type(v) is dict)),
    "config_sha256": (
        False,
        lambda v: v is None or (isinstance(v, str) and _FINGERPRINT.fullmatch(v) is not None),
    ),
    "err": (False, _optional(_ANY_TEXT)),
}


_STEP_REQUIRED: Final = frozenset(k for k, (required, _) in _STEP_SCHEMA.items() if required)
_RUN_REQUIRED: Final = frozenset(k for k, (required, _) in _RUN_SCHEMA.items() if required)


def _step_line_ok(data: dict[str, Any]) -> bool:
    """:data:`_STEP_SCHEMA`'s checks written out (a lookup decodes a line: this is its cost).

    False sends the line through the generic loop, which names what is wrong;
    ``tests/test_journal.py`` checks that both always agree (``inline=False``).
    """
    get = data.get
    ident, step, params = get("id"), get("step"), get("p", _ABSENT)
    state = get("st")
    if not (_name(ident) and _name(step) and type(state) is str and state in STEP_STATES):
        return False
    if not (params is None or type(params) is dict):
        return False
    fp = get("fp")
    if not (isinstance(fp, str) and _FINGERPRINT.fullmatch(fp) is not None):
        return False
    if type(get("t0", 0)) is not int or type(get("t1", 0)) is not int:
        return False
    if not (_ANY_TEXT(get("src", "")) and _ANY_TEXT(get("code", ""))):
        return False
    for key in ("run", "key", "cached"):
        value = get(key)
        if value is not None and not _name(value):
            return False
    for key in ("err", "ver"):
        value = get(key)
        if value is not None and not _ANY_TEXT(value):
            return False
    for key in ("i", "cp"):
        value = get(key)
        if value is not None and not _text_map(value):
            return False
    metrics, output = get("m"), get("out")
    return (metrics is None or type(metrics) is dict) and (output is None or _output(output))


_ABSENT: Final = object()


def validate_line(data: Any, *, inline: bool = True) -> dict[str, Any]:
    """Return ``data`` if it is a well-formed line of this version, else raise.

    ``inline=False`` skips the written-out step-line checks (tests compare both).

    Every key the readers and the store writer use is checked for presence
    and type, so a malformed line is refused here, once, instead of failing
    deep inside a flush (and every flush after it) or a read.

    Raises:
        ValueError: naming the version, or the key that is missing or wrong.
    """
    if type(data) is not dict:
        raise ValueError(f"a journal line is a JSON object (got {type(data).__name__})")
    if data.get("v") != LINE_VERSION:
        raise ValueError(f"unsupported journal line version {data.get('v')!r:.40}")
    kind = data.get("kind", "step")
    if kind == ANNOTATION_KIND:
        if not valid_annotation(data):
            raise ValueError("malformed run annotation (its run, t, m, tags or note)")
        return data
    if kind not in ("step", RUN_KIND):
        raise ValueError(f"unknown line kind {kind!r:.40}")
    run = kind == RUN_KIND
    if inline and not run and _step_line_ok(data):  # every read decodes step lines
        return data
    schema, required = (_RUN_SCHEMA, _RUN_REQUIRED) if run else (_STEP_SCHEMA, _STEP_REQUIRED)
    if not required <= data.keys():
        missing = sorted(required - data.keys())
        raise ValueError(f"the {kind} line has no {missing[0]!r}")
    for key, value in data.items():  # the keys present only: a drain checks every line
        rule = schema.get(key)
        if rule is not None and not rule[1](value):
            raise ValueError(f"the {kind} line's {key!r} is malformed: {value!r:.60}")
    return data


def record_from_line(
    data: dict[str, Any],
    execution_id: int | None = None,
    *,
    tagged: bool = True,
    cached_execution_id: int | None = None,
) -> Record:
    """Build a :class:`Record` from a parsed journal line.

    ``tagged=False`` says the line's text holds no ``"__tuple__"`` or
    ``"__dict__"`` tag, so its params and metrics are used as parsed.
    """
    params = data["p"] or {}
    metrics = data.get("m") or {}
    return Record(
        step=data["step"],
        fingerprint=data["fp"],
        params=untag(params) if tagged else params,
        state=data["st"],
        metrics=untag(metrics) if tagged else metrics,
        execution_id=execution_id,
        cached_execution_id=cached_execution_id,
        run_id=data.get("run"),
        record_id=data["id"],
        source=data.get("src", ""),
        inputs=data.get("i") or {},
        code=data.get("code", ""),
        version=data.get("ver"),
        error=data.get("err"),
        started=data.get("t0", 0) / 1e9,
        ended=data.get("t1", 0) / 1e9,
        cached_record_id=data.get("cached"),
        key=data.get("key"),
        code_parts=data.get("cp") or {},
        output_uri=(data.get("out") or {}).get("uri"),
    )
