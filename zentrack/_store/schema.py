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


def set_native(value: Any, v: object) -> None:
    """Write ``v`` into an MLMD ``Value`` in the type a plain reader expects.

    int -> int_value (string beyond 64 bits), float -> double_value (string
    for NaN and infinities, which MLMD rejects), bool -> bool_value, str ->
    string_value (JSON-quoted, ASCII-escaped, when MLMD would mangle it:
    NUL bytes, the ``mlmd-struct::`` prefix, lone surrogates), None and
    containers -> JSON as string_value.  Every branch sets a
    field: an MLMD Value with no field set aborts the process.
    """
    kind = type(v)
    if kind is bool:
        value.bool_value = v
    elif kind is int:
        if -_INT64 <= v < _INT64:  # type: ignore[operator]
            value.int_value = v
        else:
            value.string_value = str(v)
    elif kind is float:
        if math.isfinite(v):  # type: ignore[arg-type]
            value.double_value = v
        else:
            value.string_value = repr(v)
    elif kind is str:
        text: str = v  # type: ignore[assignment]
        if "\0" in text or text.startswith(STRUCT_PREFIX) or not utf8_encodable(text):
            text = json.dumps(text)
        value.string_value = text
    else:
        value.string_value = json.dumps(v, sort_keys=True, allow_nan=True)


def set_natives(props: Any, values: Mapping[str, Any], prefix: str = "") -> None:
    """:func:`set_native` of every ``prefix + name`` in a protobuf map; ints, floats, bools inline.

    The flush writes a few of these per record: the common scalars skip the
    call (a sixth of a flush's own time went to it).
    """
    for name, v in values.items():
        kind = type(v)
        if kind is int and -_INT64 <= v < _INT64:
            props[prefix + name].int_value = v
        elif kind is float and v - v == 0.0:  # finite (NaN and infinities give NaN)
            props[prefix + name].double_value = v
        elif kind is bool:
            props[prefix + name].bool_value = v
        elif kind is str and v.isascii() and "\0" not in v and not v.startswith(STRUCT_PREFIX):
            props[prefix + name].string_value = v  # ASCII: valid UTF-8, kept as it is
        else:
            set_native(props[prefix + name], v)


def utf8_encodable(text: str) -> bool:
    """False for strings with lone surrogates, which protobuf cannot hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
