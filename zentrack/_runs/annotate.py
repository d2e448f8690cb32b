"""Tags, a note and run-level metrics on a pipeline run, during it or long after.

An annotation is one journal line (:func:`zentrack._record.line.annotation_line`),
made durable at once and written to the run's MLMD Context by the next
flush, like a step call's record: a tag given while another process holds
the store's writer lock waits in the journal instead of being lost.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from zentrack._record import tracker as _tracker
from zentrack._record.line import TAG_KEY, annotation_line
from zentrack._step.values import (
    MISSING,
    NOT_TRACKED,
    TRACKED_TYPES_TEXT,
    Missing,
    a_described,
    as_tracked,
)

#: Longest tag value and note kept (characters): tags label runs, notes describe them.
MAX_TAG: Final = 500
MAX_NOTE: Final = 20_000


def check_tags(tags: Mapping[str, Any], *, removable: bool = True) -> dict[str, str | None]:
    """Tags as given, checked: keys like identifiers, values strings (``None`` removes one).

    Raises:
        ValueError: a key that cannot be a tag key, or a value too long.
        TypeError: a value that is not a string (or ``None`` where removal is allowed).
    """
    out: dict[str, str | None] = {}
    for key, value in tags.items():
        if type(key) is not str or not TAG_KEY.fullmatch(key):
            raise ValueError(
                f"Tag key {key!r:.80} must start with a letter or '_' and go on with up to 63 "
                "letters, digits, '_', '.' or '-'; rename it (e.g. 'data_version')."
            )
        if value is None and removable:
            out[key] = None
            continue
        if type(value) is not str:
            allowed = "a str, or None to remove it" if removable else "a str"
            raise TypeError(
                f"Tag {key!r} must be {allowed} (got {value!r:.80} that is a "
                f"{type(value).__qualname__}); pass str(value)."
            )
        if len(value) > MAX_TAG:
            raise ValueError(
                f"Tag {key!r} is {len(value):,} characters long, more than {MAX_TAG}; keep "
                "tags short and put longer text in the run's note."
            )
        out[key] = value
    return out


def check_note(text: object) -> str | None:
    """A note as given, checked: a string of at most :data:`MAX_NOTE` characters, or None."""
    if text is None:
        return None
    if type(text) is not str:
        raise TypeError(
            f"A run's note must be a str, or None to remove it (got {text!r:.80} that is a "
            f"{type(text).__qualname__})."
        )
    if len(text) > MAX_NOTE:
        raise ValueError(
            f"The note is {len(text):,} characters long, more than {MAX_NOTE:,}; shorten it "
            "or keep the text in a file and note where."
        )
    return text


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as stored: tracked values, NumPy scalars made the Python number.

    Raises:
        TypeError: a value of no tracked type, as for a step's metrics.
    """
    checked: dict[str, Any] = {}
    for name, value in metrics.items():
        plain = as_tracked(value)
        if plain is NOT_TRACKED:
            raise TypeError(
                f"Metric {name!r} must be of a tracked type ({TRACKED_TYPES_TEXT}) "
                f"(got {value!r:.80} that is {a_described(value)}); convert it, "
                "e.g. with float(value)."
            )
        checked[name] = plain
    return checked


def annotate(
    run_id: str,
    *,
    metrics: Mapping[str, Any] | None = None,
    tags: Mapping[str, str | None] | None = None,
    note: str | Missing | None = MISSING,
) -> None:
    """Journal one annotation of ``run_id`` in the active store (values already checked)."""
    line = annotation_line(run_id, time.time_ns(), metrics=metrics, tags=tags, note=note)
    _tracker.active().record(line)
