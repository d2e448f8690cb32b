"""How values read in tables: numbers to N significant digits, text cut to fit.

Shared by every view of runs (the HTML report, and any text or notebook
table) so a number reads the same everywhere.  The report's JavaScript has a
twin of :func:`format_number` (``fmt`` in :mod:`zentrack._report.assets`);
the browser tests check that both give the same text.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

#: Significant digits shown by default.
DIGITS: Final = 4
#: Integers below this magnitude are shown in full, whatever ``digits`` is.
_WHOLE_LIMIT: Final = 10**6
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
