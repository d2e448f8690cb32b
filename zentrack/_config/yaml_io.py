"""YAML I/O for configs: reading and writing files, plain values, error marks.

A config is read as written (line ends included: each line keeps its own
when saved) and written atomically.  Its values become exact builtins
(:func:`to_plain`); how they are spelled is :mod:`.spelling`'s job.
Problems are reported together, each as ``file:line:column: what is wrong;
what to do``.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import math
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Final

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarfloat import ScalarFloat
from ruamel.yaml.scalarint import ScalarInt
from ruamel.yaml.scalarstring import (
    ScalarString,
)

from zentrack._files import open_own
from zentrack._step.values import TRACKED_TYPES_TEXT, a_described, canonical_json
from zentrack.exceptions import ConfigError

TAG: Final = "tag:yaml.org,2002:"
#: Configs larger than this are refused unread (values over 64 KiB are kept beside them).
MAX_CONFIG_BYTES: Final = 4 << 20

STR_TAG: Final = TAG + "str"

FLOAT_TAG: Final = TAG + "float"

SCALAR_TAGS: Final = frozenset(TAG + t for t in ("str", "int", "float", "bool", "null"))

MAX_DEPTH: Final = 100  # containers nest as deep as zentrack._step.values allows

DOC_LEVELS: Final = 4  # a document's own levels above an arg: steps, step, args

TOO_DEEP: Final = (
    f"values nested over {MAX_DEPTH} levels deep are not supported; flatten this value"
)

Mark = tuple[int, int]  # 0-based (line, column), as ruamel keeps them



def to_plain(value: Any) -> Any:
    """Return a config value as exact builtin types (what a step receives).

    ruamel.yaml loads ``0.01`` as a ``float`` subclass that remembers its
    spelling, and mappings as ``CommentedMap``; zentrack tracks exact types, so
    a run must pass the plain copy.  Tuples become lists, as in the file.

    Raises:
        ConfigError: a value is not of a tracked type.
    """
    return plain_value(value, "value", 0)



def plain_document(data: Any) -> Any:
    """A whole document as builtins, its values allowed the depth of a parameter."""
    return plain_value(data, "config", -DOC_LEVELS)


def content_digest(data: Any) -> str:
    """The sha256 of what a config says (sources, args, types), not of its comments or layout.

    Recorded with the run that writes a config, so that a rerun by run id can
    tell whether someone changed what the config runs since.
    """
    text = json.dumps(plain_document(data), sort_keys=True, allow_nan=True, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()



def plain_value(value: Any, where: str, depth: int) -> Any:
    """``value`` as builtins, ``where`` naming it in errors, ``depth`` levels already nested."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, ScalarBoolean):  # an anchored bool: an int subclass
        return bool(value)
    if isinstance(value, ScalarFloat):
        return float(value)
    if isinstance(value, ScalarInt):
        return int(value)
    if isinstance(value, ScalarString):
        return str(value)
    if depth <= MAX_DEPTH:
        if kind is list or kind is tuple or isinstance(value, CommentedSeq):
            return [plain_value(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        if kind is dict or isinstance(value, CommentedMap):
            plain: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConfigError(
                        f"{where} has the key {key!r} that is {a_described(key)}; "
                        "mapping keys in a config must be strings."
                    )
                plain[str(key)] = plain_value(item, f"{where}[{key!r}]", depth + 1)
            return plain
    raise ConfigError(
        f"{where} must be of a tracked type ({TRACKED_TYPES_TEXT}), nested at most "
        f"{MAX_DEPTH} levels (got {value!r:.80} that is {a_described(value)}); "
        "convert it to one, e.g. float(x) for a numpy float or str(x) for a date."
    )



def same(a: Any, b: Any) -> bool:
    """Exact equality of plain values: ``1``, ``1.0`` and ``True`` differ, NaN equals NaN."""
    return a is b or canonical_json(a) == canonical_json(b)



def same_ordered(a: Any, b: Any) -> bool:
    """:func:`same`, and mappings have their keys in the same order (what a file shows).

    Compares without converting to text, so an int too long to print compares too.
    """
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        return (a == b and math.copysign(1.0, a) == math.copysign(1.0, b)) or (a != a and b != b)
    if kind is list:
        return len(a) == len(b) and all(map(same_ordered, a, b))
    if kind is dict:
        return list(a) == list(b) and all(same_ordered(a[key], b[key]) for key in a)
    return bool(a == b)



class Problems:
    """Problems found in one text, reported together as one ConfigError."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.items: list[tuple[int, int, str]] = []

    def add(self, mark: Mark, message: str) -> None:
        self.items.append((mark[0], mark[1], message))

    def error(self) -> ConfigError:
        lines = dict.fromkeys(
            f"{self.label}:{line + 1}:{col + 1}: {message}"
            for line, col, message in sorted(self.items, key=lambda item: item[:2])
        )
        return ConfigError("\n".join(lines))

    def raise_if_any(self) -> None:
        if self.items:
            raise self.error()



def config_error(label: str, mark: Mark, message: str) -> ConfigError:
    problems = Problems(label)
    problems.add(mark, message)
    return problems.error()



def node_mark(node: Node) -> Mark:
    return (node.start_mark.line, node.start_mark.column)



def _lc(pair: Any) -> Mark | None:
    if isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, int) for x in pair):
        return (pair[0], pair[1])
    return None



def map_mark(mapping: Any) -> Mark:
    lc = getattr(mapping, "lc", None)
    line, col = getattr(lc, "line", None), getattr(lc, "col", None)
    return (line, col) if isinstance(line, int) and isinstance(col, int) else (0, 0)



def key_mark(mapping: Any, key: str) -> Mark:
    try:
        return _lc(mapping.lc.key(key)) or map_mark(mapping)
    except (AttributeError, KeyError):
        return map_mark(mapping)



def value_mark(mapping: Any, key: str) -> Mark:
    if mapping.get(key) is None:  # an empty value's mark is wherever the parser went on
        return key_mark(mapping, key)
    try:
        return _lc(mapping.lc.value(key)) or map_mark(mapping)
    except (AttributeError, KeyError):
        return map_mark(mapping)



def shown(value: Any) -> str:
    kinds = {bool: "a bool", int: "an int", float: "a float", str: "a string"}
    try:
        plain = to_plain(value)
    except ConfigError:
        return f"{value!r:.60} that is {a_described(value)}"
    if plain is None:
        return "null"
    kind = kinds.get(type(plain)) or ("a list" if type(plain) is list else "a mapping")
    return f"{plain!r:.60} that is {kind}"



def syntax_error(label: str, text: str, exc: YAMLError) -> ConfigError:
    mark: Mark = (0, 0)
    if isinstance(exc, MarkedYAMLError):
        found = exc.problem_mark or exc.context_mark
        if found is not None:
            mark = (found.line, found.column)
        problem = exc.problem or str(exc)
        what = f"{exc.context}: {problem}" if exc.context else problem
    elif isinstance(exc, ReaderError):
        position = min(max(exc.position, 0), len(text))
        code = exc.character if isinstance(exc.character, int) else 0xFFFD
        mark = (text.count("\n", 0, position), position - (text.rfind("\n", 0, position) + 1))
        return config_error(
            label,
            mark,
            f"the character U+{code:04X} is not allowed in YAML; remove it, or write it as "
            f"the escape {json.dumps(chr(code))} inside a double-quoted string",
        )
    else:
        what = str(exc)
    if "another document" in what:
        fix = "a config is a single YAML document, so remove the second '---' and what follows"
    else:
        fix = "fix the YAML syntax (often the indentation) at or just before this position"
    return config_error(label, mark, f"invalid YAML ({' '.join(what.split())}); {fix}")



def read_config_file(path: Path) -> tuple[str, bool]:
    """Read a config file: (its text as written, line ends included; whether it had a BOM).

    A file over :data:`MAX_CONFIG_BYTES` is refused before it is parsed (the
    YAML parser takes seconds per 100 kB).
    """
    label = str(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise config_error(
                label,
                (0, 0),
                f"the config is larger than {MAX_CONFIG_BYTES // (1 << 20)} MiB, more than a "
                "config of args needs; zentrack writes large values beside the config, so this "
                "file was not written by zentrack: check where it comes from",
            )
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise config_error(
            label, (0, 0), "no such config file; check the path (a pipeline run writes one)"
        ) from exc
    except IsADirectoryError as exc:
        raise config_error(
            label, (0, 0), "this is a directory, not a config file; name the YAML file in it"
        ) from exc
    except OSError as exc:
        raise config_error(
            label, (0, 0), f"the config cannot be read ({exc.strerror}); check its permissions"
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start)
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1)
        raise config_error(
            label,
            (line, col),
            f"the byte {raw[exc.start : exc.start + 1]!r} is not UTF-8; save the file as UTF-8",
        ) from exc
    return text, raw.startswith(codecs.BOM_UTF8)



def guess_indent(root: Node) -> tuple[int, int, int]:
    """The file's block indentation as ruamel's (mapping, sequence, offset)."""
    maps: Counter[int] = Counter()
    seqs: Counter[tuple[int, int]] = Counter()

    def visit(node: Node, depth: int) -> None:
        if depth > MAX_DEPTH or not isinstance(node, MappingNode) or node.flow_style:
            return
        for key_node, value_node in node.value:
            column = key_node.start_mark.column
            if isinstance(value_node, MappingNode) and not value_node.flow_style:
                if value_node.value:
                    maps[value_node.value[0][0].start_mark.column - column] += 1
            elif isinstance(value_node, SequenceNode) and not value_node.flow_style:
                if value_node.value:
                    dash = value_node.start_mark.column - column
                    seqs[(value_node.value[0].start_mark.column - column, dash)] += 1
                for item in value_node.value:
                    visit(item, depth + 1)
            visit(value_node, depth + 1)

    visit(root, 0)
    mapping = maps.most_common(1)[0][0] if maps else 2
    mapping = mapping if mapping > 0 else 2
    if seqs:
        sequence, offset = seqs.most_common(1)[0][0]
        if sequence > offset >= 0:
            return mapping, sequence, offset
    return mapping, mapping + 2, mapping



def checked(value: Any, where: str) -> Any:
    try:
        return to_plain(value)
    except ConfigError:
        raise ConfigError(
            f"The value for {where!r} must be of a tracked type ({TRACKED_TYPES_TEXT}) (got "
            f"{value!r:.80} that is {a_described(value)}); convert it to one."
        ) from None



def write_atomically(path: Path, text: str, bom: bool) -> None:
    """Replace ``path`` atomically, keeping an existing file's permissions.

    An I/O failure stays an ``OSError`` (it is not a bad config), and leaves
    any existing file as it was.
    """
    payload = (codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else None
        fd = open_own(temporary, os.O_WRONLY, exclusive=True)
        with os.fdopen(fd, "wb") as stream:
            stream.write(payload)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
