"""How values read in tables: numbers to N significant digits, text cut to fit, times.

Shared by every view of runs (the HTML report, the text leaderboard, the
notebook tables and the viewer) so a number, a duration or a start time
reads the same everywhere.  The report's JavaScript has a
twin of :func:`format_number` (``fmt`` in :mod:`zentrack._report.assets`);
the browser tests check that both give the same text.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

#: Significant digits shown by default.
DIGITS: Final = 4
#: Integers below this magnitude are shown in full, whatever ``digits`` is.
_WHOLE_LIMIT: Final = 10**6
#: The types a tracked value can have; anything else in a comparison column is
#: its "missing" marker (``zentrack.compare_runs`` puts one where a run lacks the key).
_TRACKED: Final = (int, float, str, bool, type(None), list, tuple, dict)
#: Words in a metric name that make smaller values better (``val_loss``, ``mse``, ...).
_LOWER_IS_BETTER: Final = re.compile(r"loss|error|err|mse|mae|rmse|time", re.IGNORECASE)


def is_number(value: object) -> bool:
    """Tell whether ``value`` is an int or a float (``bool`` is not a number here)."""
    return type(value) in (int, float)


def format_number(value: float, digits: int = DIGITS) -> str:
    """``value`` to ``digits`` significant digits, as a person writes it.

    Integers below a million are shown whole; magnitudes below 0.001 or from a
    million up in short scientific form (``1.5e-5``, ``2.346e7``); from
    ``10**digits`` to a million rounded to a whole number (``12346``); the
    rest in fixed form without trailing zeros (``0.9346``, ``0.001``, ``3``).
    Halves round away from zero, as JavaScript's ``toPrecision`` does.
    """
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    exact = Decimal(value)
    magnitude = abs(exact)
    sign = "-" if exact < 0 else ""
    if magnitude == 0:
        return "0"
    if magnitude == magnitude.to_integral_value() and magnitude < _WHOLE_LIMIT:
        return sign + str(int(magnitude))
    if magnitude >= _WHOLE_LIMIT or magnitude < Decimal("0.001"):
        exponent = magnitude.adjusted()
        mantissa = _round(magnitude.scaleb(-exponent), digits - 1)
        if mantissa >= 10:
            exponent += 1
            mantissa = _round(magnitude.scaleb(-exponent), digits - 1)
        return f"{sign}{_strip(mantissa)}e{exponent}"
    if magnitude >= 10**digits:
        return sign + str(int(_round(magnitude, 0)))
    rounded = _round(magnitude, digits - 1 - magnitude.adjusted())
    return sign + _strip(rounded)


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _strip(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def display_text(value: Any) -> str:
    """The text of a value in a cell: strings as they are, anything else as Python writes it."""
    if type(value) is str:
        return value
    return repr(value)


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "\u2026"


def higher_is_better(metric: str) -> bool:
    """Guess a metric's direction from its name: losses, errors and times go down."""
    return _LOWER_IS_BETTER.search(metric.rpartition(".")[2]) is None


def present(value: object) -> bool:
    """Tell a value from the "missing" marker of a comparison column."""
    return isinstance(value, _TRACKED)


def varies(values: Iterable[Any]) -> bool:
    """Whether a column holds two different values (``1`` and ``1.0`` differ; absence counts)."""
    seen = {(type(v), repr(v)) if present(v) else None for v in values}
    return len(seen) > 1


def group_same_params(params: Mapping[str, list[Any]], differing: set[str]) -> list[list[str]]:
    """Group the params that differ, have one name and hold the same values in every run.

    A pipeline argument handed on to a step (``pipeline.lr`` and ``train.lr``)
    is one quantity: tables show it once, under both steps' names.  Each
    group lists the pipeline's key first.
    """
    groups: dict[tuple[Any, ...], list[str]] = {}
    for key, values in params.items():
        if key not in differing:
            groups[(key,)] = [key]
            continue
        signature = tuple((type(v), repr(v)) if present(v) else None for v in values)
        groups.setdefault((key.rpartition(".")[2], *signature), []).append(key)
    return [sorted(keys, key=lambda k: not k.startswith("pipeline.")) for keys in groups.values()]


def format_value(value: Any, digits: int = DIGITS, *, quote: bool = False) -> str:
    """A value as a cell shows it: numbers to ``digits`` significant digits, text as is.

    ``quote`` writes every value as Python does (``'1'``, ``1.0``), for
    columns that mix types; ``bool`` and containers always read as Python.
    """
    if is_number(value):
        return repr(value) if quote else format_number(value, digits)
    if type(value) is str and not quote:
        return value
    return repr(value)


def format_duration(seconds: float) -> str:
    """``57 ms``, ``4.2 s``, ``4 m 05 s``, ``2 h 07 m``, ``3 d 04 h``: two units at most.

    The twin of ``duration`` in ``static/report.js``.
    """
    s = max(0.0, seconds)
    if s < 1:
        return f"{format_number(_significant(s * 1000, 2), 3)} ms"
    if s < 60:
        return f"{format_number(_significant(s, 2 if s < 10 else 3), 3)} s"
    whole = int(s)
    if s < 3600:
        return f"{whole // 60} m {whole % 60:02d} s"
    if s < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60:02d} m"
    return f"{whole // 86400} d {whole % 86400 // 3600:02d} h"


def _significant(value: float, digits: int) -> float:
    """``value`` rounded to ``digits`` significant digits as JavaScript's ``toPrecision`` does."""
    if value == 0 or not math.isfinite(value):
        return value
    exact = Decimal(value)
    return float(_round(exact, digits - 1 - exact.adjusted()))


def format_started(started: float, *, with_date: bool = True) -> str:
    """A start time in local time: ``2024-05-03 14:02:33``, or ``14:02:33`` without the date."""
    if not started:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S", time.localtime(started))


def one_day(times: Iterable[float]) -> bool:
    """Whether every (non-zero) time falls on one local day: tables then show times alone."""
    days = {time.strftime("%Y-%m-%d", time.localtime(t)) for t in times if t}
    return len(days) <= 1
