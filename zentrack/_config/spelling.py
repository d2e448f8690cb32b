"""How values are spelled in a config: spellings every YAML reader reads the same.

Floats are written so that every YAML reader, YAML 1.1 ones such as PyYAML
included, reads them back as the same float: ``repr`` spelling, with ``.0``
added to a bare mantissa (``1e-07`` is written ``1.0e-07``), and ``.nan``,
``.inf``, ``-.inf``.  Ints are written in full.  Strings that some YAML
reader would take for something else (``'1'``, ``'true'``, ``'yes'``,
``'null'``, ``'1e3'``, ``''``) are quoted; strings holding a line break, a
tab, NEL, LS, PS, a byte order mark or a control character are written in
double quotes with escapes, whatever quotes they had, because no other style
keeps them.  Tuples are written as lists.

One rule, :func:`quote_style`, decides a string's style everywhere: for a
value written inline by the patcher (:func:`inline`), and for ruamel's own
string types (which ruamel gives an assigned ``str`` when the old value had
quotes or an anchor) in block dumps.
"""

from __future__ import annotations

import io
import math
import re
import sys
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    PlainScalarString,
    ScalarString,
    SingleQuotedScalarString,
)

from zentrack._config.yaml_io import FLOAT_TAG, STR_TAG, TAG, to_plain

#: Characters written escaped inside double quotes: line breaks, tabs and what YAML
#: readers may take for a line break or a byte order mark, or refuse raw.
ESCAPED: Final = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)

#: Strings written plain (unless a reader would misread them); others are quoted,
#: which sidesteps the corner cases of plain scalars in flow and key context.
PLAIN: Final = re.compile(r"(?!.* #)\w[\w ./+#-]*(?<! )")

_NULL: Final = TAG + "null"

_YAML11: Final = VersionedResolver(version=(1, 1))

_YAML12: Final = VersionedResolver(version=(1, 2))

#: The escapes YAML 1.1 and 1.2 readers both know, for double-quoted strings.
_ESCAPES: Final = {
    "\0": "\\0", "\x07": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\x0b": "\\v",
    "\x0c": "\\f", "\r": "\\r", "\x1b": "\\e", '"': '\\"', "\\": "\\\\", "\x85": "\\N",
    "\u2028": "\\L", "\u2029": "\\P",
}  # fmt: skip

_TO_ESCAPE: Final = re.compile(f'["\\\\]|{ESCAPED.pattern}')

#: The style each of ruamel's string types asks for (``None``: plain if safe).
STRING_STYLES: Final[dict[type, str | None]] = {
    PlainScalarString: None,
    SingleQuotedScalarString: "'",
    DoubleQuotedScalarString: '"',
    LiteralScalarString: "|",
    FoldedScalarString: ">",
}



def float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text:  # YAML 1.1 needs a dot in a float
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text



def int_digits_limit() -> int:
    """The most decimal digits Python (and so any Python YAML reader) reads in an int; 0: any."""
    return sys.get_int_max_str_digits()



def too_many_digits(value: int) -> bool:
    """Whether ``value`` has more decimal digits than Python reads (without converting it)."""
    limit = int_digits_limit()
    if not limit or value.bit_length() < limit * 3:  # 3 bits a digit is an underestimate
        return False
    return bool(abs(value) >= 10**limit)



def misread(text: str) -> bool:
    """Tell whether a YAML 1.1 or 1.2 reader would read this plain text as a non-string."""
    return any(
        resolver.resolve(ScalarNode, text, (True, False)) != STR_TAG
        for resolver in (_YAML11, _YAML12)
    )



def quote_style(text: str, kept: str | None) -> str | None:
    """The quote style to write ``text`` in: ``'"'``, ``"'"`` or None (plain).

    ``kept`` is the quote style the old value had: kept unless the string
    holds a character that only double quotes can escape.
    """
    if ESCAPED.search(text):
        return '"'
    if kept in ("'", '"'):
        return kept
    if PLAIN.fullmatch(text) and not misread(text):
        return None
    return "'"



def _escape(match: re.Match[str]) -> str:
    char = match.group()
    known = _ESCAPES.get(char)
    if known is not None:
        return known
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"



def string_text(text: str, kept: str | None) -> str:
    """A string as a one-line YAML scalar, in the style :func:`quote_style` picks."""
    style = quote_style(text, kept)
    if style is None:
        return text
    if style == "'":
        return "'" + text.replace("'", "''") + "'"
    return '"' + _TO_ESCAPE.sub(_escape, text) + '"'



def block_lines(value: str, style: str) -> tuple[str, list[str]] | None:
    """A string as a block scalar's header and lines, or None if that style cannot hold it.

    Only what reads back exactly without an indentation indicator or the
    ``+`` chomping is written so; a folded scalar holds a single line.
    """
    if not value or ESCAPED.search(value.replace("\n", "")):
        return None
    body, chomp = (value[:-1], "") if value.endswith("\n") else (value, "-")
    lines = body.split("\n")
    if not lines[0] or lines[0][0] == " " or not lines[-1]:
        return None
    if any(line and not line.strip() for line in lines):
        return None
    if style == ">" and (len(lines) > 1 or lines[0] != lines[0].strip()):
        return None
    return style + chomp, lines



def inline(value: Any, kept: str | None = None) -> str:
    """One value as single-line YAML, valid in block and flow context.

    Containers are written in flow style; ``kept`` is the quote style a
    string keeps (ruamel's string types say their own).
    """
    if isinstance(value, ScalarString):
        return string_text(str(value), STRING_STYLES.get(type(value)))
    if isinstance(value, str):
        return string_text(value, kept)
    if value is None:
        return "null"
    if isinstance(value, (bool, ScalarBoolean)):  # an anchored bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return float_text(float(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(inline(item) for item in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{inline(key)}: {inline(item)}" for key, item in value.items())
        return "{" + ", ".join(pairs) + "}"
    return inline(to_plain(value))  # raises the ConfigError of an untracked value



class _Representer(RoundTripRepresenter):
    """ruamel's round-trip representer, with spellings every YAML reader agrees on."""



def _represent_float(rep: RoundTripRepresenter, data: float) -> ScalarNode:
    return rep.represent_scalar(FLOAT_TAG, float_text(data))



def _represent_none(rep: RoundTripRepresenter, data: None) -> ScalarNode:
    return rep.represent_scalar(_NULL, "null")



def _represent_str(rep: RoundTripRepresenter, data: str) -> ScalarNode:
    kept = STRING_STYLES.get(type(data)) if isinstance(data, ScalarString) else None
    style = quote_style(str(data), kept)
    return rep.represent_scalar(STR_TAG, str(data), style=style)



_Representer.add_representer(float, _represent_float)

_Representer.add_representer(type(None), _represent_none)

for _kind in (str, *STRING_STYLES):
    _Representer.add_representer(_kind, _represent_str)



def new_yaml(
    indent: tuple[int, int, int] = (2, 4, 2), *, start: bool = False, end: bool = False
) -> YAML:
    """A fresh round-trip YAML (instances keep state, so one per use)."""
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.width = 1 << 30  # never fold a long value onto a second line
    yaml.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    yaml.explicit_start = start
    yaml.explicit_end = end
    return yaml



def styled(value: Any) -> Any:
    """Turn a plain value into ruamel nodes: lists and mappings of scalars in flow style."""
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(styled(item) for item in value)
        if all(not isinstance(item, (list, tuple, dict)) for item in value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        mapping = CommentedMap((key, styled(item)) for key, item in value.items())
        if all(not isinstance(item, (list, tuple, dict)) for item in value.values()):
            mapping.fa.set_flow_style()
        return mapping
    return value



def dump(data: Any, yaml: YAML) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
