"""The one value grammar of the command line: YAML 1.2 scalars, read as a config file reads them.

``find lr=.5``, ``fingerprint mod:step lr=.5``, ``why``, ``config set FILE
trainer.lr .5`` and ``rerun RUN --set trainer.lr=.5`` all read ``.5`` the
same way (the float 0.5), through :func:`zentrack.parse_config_value`, so a
value means one thing wherever it is typed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import zentrack as zt
from zentrack.exceptions import ConfigError

#: The ``--help`` text of every command that takes values.
VALUE_SYNTAX: Final = """\
VALUE syntax (the same for find, fingerprint, why, config set and rerun --set):
values are YAML 1.2, read as a config file reads them.
  0.5  .5  -1e-3  .inf  -.inf  .nan   floats
  3  -5                               ints
  true  false                         bools
  null  ~                             None (Python's None is refused: write null)
  abc  'abc'  '0.5'  ''               strings (quote a number to keep it text)
  [1, 2]  {a: 1}                      a list, a dict
A VALUE may start with '-' (-1e-3, -.inf, -5); put -- before one that
starts like an option (-o..., -h..., -v...).  Quote for the shell
too: lr="'0.5'" is the string '0.5'."""

#: Python spellings YAML 1.2 reads as strings, though a Python user means None or a float.
_PYTHON_SPELLING: Final = re.compile(r"None|[-+]?(?:inf|Inf|INF|infinity|Infinity)|nan|NaN|NAN")


def parse_value(text: str) -> Any:
    """Read one command-line value as YAML 1.2 (see :data:`VALUE_SYNTAX`).

    Raises:
        ConfigError: the text is not one YAML value, is not read as it was
            typed (a ``#`` comment, a float out of range), or is a Python
            spelling (``None``, ``inf``, ``nan``) that YAML reads as a string.
    """
    if _PYTHON_SPELLING.fullmatch(text):
        if text == "None":
            yaml = "null"
        elif text.lower() == "nan":
            yaml = ".nan"
        else:
            yaml = ("-" if text.startswith("-") else "") + ".inf"
        raise ConfigError(
            f"value {text!r} is the Python spelling, which YAML reads as the string "
            f"{text!r}; write {yaml} for the value, or quote it ('{text}') to mean the string"
        )
    return zt.parse_config_value(text)


def assignments(items: Sequence[str], what: str = "name=value") -> dict[str, Any]:
    """``["lr=.5", "n=3"]`` -> ``{"lr": 0.5, "n": 3}``, each value by :func:`parse_value`."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected {what}, got {item!r}; write it as {what}")
        out[key] = parse_value(text)
    return out
