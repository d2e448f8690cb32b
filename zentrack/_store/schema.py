"""The MLMD layout zentrack writes: every type name and property name, and the value form.

The one owner of these names: the adapter, the drain, the run queries and
reruns import them from here (``docs/mlmd.md`` documents them for readers
that use plain MLMD).

* one ExecutionType per step, named ``zentrack.step.<step name>``;
* one Execution per tracked call, ``external_id`` = the record id (so a
  replayed journal line is recognised and skipped), each parameter a custom
  property under its own name in MLMD's native type (:func:`set_native`),
  plus ``zentrack.fingerprint``, ``zentrack.record`` (the exact record as
  JSON) and, for failures, ``zentrack.error``;
* one Context of type ``zentrack.Fingerprint`` per fingerprint, named by it,
  associated with every execution that has it: the indexed lookup path;
* one Context of type ``zentrack.PipelineRun`` per run, a child of its
  ``zentrack.Pipeline`` context, with the pipeline's params under their own
  names, ``zentrack.state``, ``zentrack.pipeline``, ``zentrack.config``,
  ``zentrack.record`` (the run's data as JSON, annotations folded under
  ``a``), and what annotations made of the run: run-level metrics as
  ``zentrack.metric.<name>`` (native types, like a step's), tags as
  ``zentrack.tag.<key>`` (strings) and the note as ``zentrack.note``;
* one ``zentrack.Output`` artifact per cached output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Final

STEP_TYPE_PREFIX: Final = "zentrack.step."
FINGERPRINT_CONTEXT: Final = "zentrack.Fingerprint"
PROP_FINGERPRINT: Final = "zentrack.fingerprint"
PROP_RECORD: Final = "zentrack.record"
PROP_ERROR: Final = "zentrack.error"
PROP_STATE: Final = "zentrack.state"
PROP_RUN: Final = "zentrack.run"
PROP_CACHED_FROM: Final = "zentrack.cached_execution_id"
OUTPUT_ARTIFACT: Final = "zentrack.Output"
PROP_PIPELINE: Final = "zentrack.pipeline"
PROP_CONFIG: Final = "zentrack.config"
RUN_CONTEXT: Final = "zentrack.PipelineRun"
PIPELINE_CONTEXT: Final = "zentrack.Pipeline"
METRIC_PREFIX: Final = "zentrack.metric."
#: A run's tags: ``zentrack.tag.<key>`` string properties of its context.
TAG_PREFIX: Final = "zentrack.tag."
#: A run's free-text note, a string property of its context.
PROP_NOTE: Final = "zentrack.note"
#: MLMD reads a string value starting with this as a struct: never written verbatim.
STRUCT_PREFIX: Final = "mlmd-struct::"
_INT64: Final = 2**63
#: Properties of an output artifact beyond the fingerprint (``zentrack.<name>``).
OUTPUT_PROPS: Final = ("materializer", "type", "sha256")
PROP_OUTPUT_SIZE: Final = "zentrack.size"
#: MLMD's ``Execution.State`` values (``last_known_state``), by name: a record's state.
EXECUTION_STATES: Final = {
    "UNKNOWN": 0,
    "NEW": 1,
    "RUNNING": 2,
    "COMPLETE": 3,
    "FAILED": 4,
    "CACHED": 5,
    "CANCELED": 6,
}


def native_cell(v: object) -> tuple[str, Any]:
    """The MLMD ``Value`` field a plain reader expects for ``v``, and what it holds.

    int -> int_value (string beyond 64 bits), float -> double_value (string
    for NaN and infinities, which MLMD rejects), bool -> bool_value, str ->
    string_value (JSON-quoted, ASCII-escaped, when MLMD would mangle it:
    NUL bytes, the ``mlmd-struct::`` prefix, lone surrogates), None and
    containers -> JSON as string_value.  Every branch names a field: an MLMD
    Value with no field set aborts the process.  The one decision for the
    protobuf writes (:func:`set_native`) and the direct SQLite rows
    (:mod:`.sqlite_writes`), so the two cannot differ.
    """
    kind = type(v)
    if kind is bool:
        return "bool_value", v
    if kind is int:
        if -_INT64 <= v < _INT64:  # type: ignore[operator]
            return "int_value", v
        return "string_value", str(v)
    if kind is float:
        if math.isfinite(v):  # type: ignore[arg-type]
            return "double_value", v
        return "string_value", repr(v)
    if kind is str:
        text: str = v  # type: ignore[assignment]
        if "\0" in text or text.startswith(STRUCT_PREFIX) or not utf8_encodable(text):
            text = json.dumps(text)
        return "string_value", text
    return "string_value", json.dumps(v, sort_keys=True, allow_nan=True)


def set_native(value: Any, v: object) -> None:
    """Write ``v`` into an MLMD ``Value`` in the type a plain reader expects.

    See :func:`native_cell`.
    """
    field, cell = native_cell(v)
    setattr(value, field, cell)


#: A record's custom properties before they are written: name -> (MLMD value field, value).
Cells = dict[str, tuple[str, Any]]


def native_cells(values: Mapping[str, Any], cells: Cells, prefix: str = "") -> None:
    """Add :func:`native_cell` of every ``prefix + name`` to ``cells``; common scalars inline.

    The flush makes a few of these per record: the common scalars skip the
    call (a sixth of a flush's own time went to it).
    """
    for name, v in values.items():
        kind = type(v)
        if kind is int and -_INT64 <= v < _INT64:
            cells[prefix + name] = ("int_value", v)
        elif kind is float and v - v == 0.0:  # finite (NaN and infinities give NaN)
            cells[prefix + name] = ("double_value", v)
        elif kind is bool:
            cells[prefix + name] = ("bool_value", v)
        elif kind is str and v.isascii() and "\0" not in v and not v.startswith(STRUCT_PREFIX):
            cells[prefix + name] = ("string_value", v)  # ASCII: valid UTF-8, as it is
        else:
            cells[prefix + name] = native_cell(v)


def utf8_encodable(text: str) -> bool:
    """False for strings with lone surrogates, which protobuf cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
