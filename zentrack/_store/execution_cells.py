"""The custom properties one step record becomes in MLMD, before either writer writes them.

Built once, written by MLMD (protobufs) or by :mod:`.sqlite_writes` (rows),
so both paths store exactly the same properties.
"""

from __future__ import annotations

from typing import Any

from zentrack._step.values import untag
from zentrack._store.schema import (
    METRIC_PREFIX,
    PROP_ERROR,
    PROP_FINGERPRINT,
    PROP_RECORD,
    PROP_RUN,
    Cells,
    native_cell,
    native_cells,
)


def record_cells(data: dict[str, Any], text: str) -> Cells:
    """The properties of the step record ``data`` (parsed from the journal line ``text``).

    Params and metrics in MLMD's native types; a name no MLMD property can
    have (a lone surrogate) leaves them to the record alone, with a note in
    ``zentrack.error``; a name holding a NUL is left out, as MLMD leaves it.
    """
    cells: Cells = {}
    # Without a tag anywhere in the line, its JSON values are the values themselves.
    tagged = '"__tuple__"' in text or '"__dict__"' in text
    try:
        native_cells(untag(data["p"]) if tagged else data["p"], cells)
        metrics = data.get("m")
        if metrics:
            native_cells(untag(metrics) if tagged else metrics, cells, METRIC_PREFIX)
        for name in [n for n in cells if "\0" in n or not n.isascii()]:
            name.encode()  # a lone surrogate: no MLMD property can be named so
            if "\0" in name:  # MLMD drops such a property; the record keeps it
                del cells[name]
    except Exception as exc:  # never let one record block the others
        cells = {PROP_ERROR: ("string_value", f"native properties not written: {exc!r}")}
    cells[PROP_FINGERPRINT] = ("string_value", data["fp"])
    cells[PROP_RECORD] = ("string_value", text.rstrip("\n"))
    if data.get("err"):  # NULs, surrogates: JSON-quoted, as a param's string would be
        cells[PROP_ERROR] = native_cell(str(data["err"]))
    if data.get("run"):
        cells[PROP_RUN] = ("string_value", data["run"])
    return cells
