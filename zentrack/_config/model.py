"""YAML configs of pipeline runs: write, load, validate, edit, save and diff.

A run's config is what its rerun trusts, so this module is strict wherever a
silent surprise would cost a run:

* Values are plain YAML 1.2 (ruamel.yaml's round-trip loader): ``null``,
  bools, ints, floats, strings, lists and string-keyed mappings, which are the
  tracked types.  Every node is checked *before* anything is constructed: an
  explicit tag (``!!python/object/apply:...``, ``!!binary``, ``!!set``,
  ``!custom``, even ``!!str``) is refused, so loading never builds an arbitrary
  Python object.  An unquoted date (``2020-01-01``) is refused with the fix
  "quote it": dates are not tracked, and keeping them as strings silently
  would change their type between a run and its rerun.
* Floats are written so that every YAML reader, YAML 1.1 ones such as PyYAML
  included, reads them back as the same float: ``repr`` spelling, with
  ``.0`` added to a bare mantissa (``1e-07`` is written ``1.0e-07``), and
  ``.nan``, ``.inf``, ``-.inf``.  Ints are written in full, however large.
  Strings that some YAML reader would take for something else (``'1'``,
  ``'true'``, ``'yes'``, ``'null'``, ``'1e3'``, ``''``) are quoted.  Tuples are
  written as lists, and load back as lists.
* An anchor may name a single value (``lr: &lr 0.01`` then ``lr: *lr``).  An
  alias of a list or mapping, and a merge key (``<<``), are refused: an edit
  through one place would silently change the other, and aliased containers
  are how a small file expands to billions of values.
* Saving rewrites only what changed, so comments, spacing, quoting and
  number spellings of everything else stay byte-identical.  A value edited
  in place is replaced where it stands.  A mapping that gained or lost keys,
  or a list that grew or shrank, has just those entries written or cut, in
  its own style: whole lines at its indentation and dash offset in block
  style, items joined by ``", "`` in flow style.  A value that changed kind
  (a list become a mapping), or a mapping whose keys were reordered, is
  rewritten as one value in the style the old one had.  Every text is
  loaded back and compared with the config in memory before it is written;
  only if no such patch can be made does ruamel.yaml's full round trip
  write the file (keeping comments, key order, quoting and number
  spellings, but normalising spacing).
"""

from __future__ import annotations

import codecs
import contextlib
import enum
import io
import json
import math
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarfloat import ScalarFloat
from ruamel.yaml.scalarint import ScalarInt
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    ScalarString,
    SingleQuotedScalarString,
)

from zentrack._step.decorator import spec_of
from zentrack._step.values import TRACKED_TYPES_TEXT, canonical_json, describe_type
from zentrack.exceptions import ConfigError

__all__ = [
    "MISSING",
    "Config",
    "StepConfig",
    "diff_configs",
    "load_config",
    "parse_value",
    "to_plain",
    "unused_keys_error",
    "validate_against",
    "write_run_config",
]


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"


#: Stands for the side of a :func:`diff_configs` row where the arg is absent.
MISSING: Final = _Missing.MISSING

_Y: Final = "tag:yaml.org,2002:"
_STR: Final = _Y + "str"
_FLOAT: Final = _Y + "float"
_NULL: Final = _Y + "null"
_SCALAR_TAGS: Final = frozenset(_Y + t for t in ("str", "int", "float", "bool", "null"))
_MAX_DEPTH: Final = 100  # containers nest as deep as zentrack._step.values allows
_DOC_LEVELS: Final = 4  # a document's own levels above an arg: steps, step, args
_TOO_DEEP: Final = (
    f"values nested over {_MAX_DEPTH} levels deep are not supported; flatten this value"
)
_PIPELINE_KEYS: Final = ("source", "run_id", "args")
_STEP_KEYS: Final = ("args", "source")
_TOP_KEYS: Final = ("pipeline", "steps")
_HEADER: Final = (
    "written by zentrack for run {run_id}; edit args and rerun with `zentrack config run FILE`"
)
#: Characters written escaped inside double quotes: line breaks, tabs and what YAML
#: readers may take for a line break or a byte order mark, or refuse raw.
_ESCAPED: Final = re.compile(
    "[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
#: Strings written plain (unless a reader would misread them); others are quoted,
#: which sidesteps the corner cases of plain scalars in flow and key context.
_PLAIN: Final = re.compile(r"(?!.* #)\w[\w ./+#-]*(?<! )")
_DOCUMENT_START: Final = re.compile(r"^---(?=[ \t]|$)", re.MULTILINE)
_YAML11: Final = VersionedResolver(version=(1, 1))
_YAML12: Final = VersionedResolver(version=(1, 2))

_Mark = tuple[int, int]  # 0-based (line, column), as ruamel keeps them


# --------------------------------------------------------------------------- values


def to_plain(value: Any) -> Any:
    """Return a config value as exact builtin types (what a step receives).

    ruamel.yaml loads ``0.01`` as a ``float`` subclass that remembers its
    spelling, and mappings as ``CommentedMap``; zentrack tracks exact types, so
    a run must pass the plain copy.  Tuples become lists, as in the file.

    Raises:
        ConfigError: a value is not of a tracked type.
    """
    return _plain(value, "value", 0)


def _plain_document(data: Any) -> Any:
    """A whole document as builtins, its values allowed the depth of a parameter."""
    return _plain(data, "config", -_DOC_LEVELS)


def _plain(value: Any, where: str, depth: int) -> Any:
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
    if depth <= _MAX_DEPTH:
        if kind is list or kind is tuple or isinstance(value, CommentedSeq):
            return [_plain(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
        if kind is dict or isinstance(value, CommentedMap):
            plain: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConfigError(
                        f"{where} has the key {key!r} that is a {describe_type(key)}; "
                        "mapping keys in a config must be strings."
                    )
                plain[str(key)] = _plain(item, f"{where}[{key!r}]", depth + 1)
            return plain
    raise ConfigError(
        f"{where} must be of a tracked type ({TRACKED_TYPES_TEXT}), nested at most "
        f"{_MAX_DEPTH} levels (got {value!r:.80} that is a {describe_type(value)}); "
        "convert it to one, e.g. float(x) for a numpy float or str(x) for a date."
    )


def _same(a: Any, b: Any) -> bool:
    """Exact equality of plain values: ``1``, ``1.0`` and ``True`` differ, NaN equals NaN."""
    return a is b or canonical_json(a) == canonical_json(b)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text:  # YAML 1.1 needs a dot in a float
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def _misread(text: str) -> bool:
    """Tell whether a YAML 1.1 or 1.2 reader would read this plain text as a non-string."""
    return any(
        resolver.resolve(ScalarNode, text, (True, False)) != _STR for resolver in (_YAML11, _YAML12)
    )


class _Representer(RoundTripRepresenter):
    """ruamel's round-trip representer, with spellings every YAML reader agrees on."""


def _represent_float(rep: RoundTripRepresenter, data: float) -> ScalarNode:
    return rep.represent_scalar(_FLOAT, _float_text(data))


def _represent_none(rep: RoundTripRepresenter, data: None) -> ScalarNode:
    return rep.represent_scalar(_NULL, "null")


def _represent_str(rep: RoundTripRepresenter, data: str) -> ScalarNode:
    style = None
    if _ESCAPED.search(data):
        style = '"'
    elif not _PLAIN.fullmatch(data) or _misread(data):
        style = "'"
    return rep.represent_scalar(_STR, data, style=style)


_Representer.add_representer(float, _represent_float)
_Representer.add_representer(type(None), _represent_none)
_Representer.add_representer(str, _represent_str)


def _yaml(
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


def _styled(value: Any) -> Any:
    """Turn a plain value into ruamel nodes: lists and mappings of scalars in flow style."""
    if isinstance(value, (list, tuple)):
        seq = CommentedSeq(_styled(item) for item in value)
        if all(not isinstance(item, (list, tuple, dict)) for item in value):
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):
        mapping = CommentedMap((key, _styled(item)) for key, item in value.items())
        if all(not isinstance(item, (list, tuple, dict)) for item in value.values()):
            mapping.fa.set_flow_style()
        return mapping
    return value


def _dump(data: Any, yaml: YAML) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _inline(value: Any, style: str | None) -> str | None:
    """One value as single-line YAML valid in block and flow context, or None."""
    yaml = _yaml()
    yaml.default_flow_style = True
    if isinstance(value, (list, tuple, dict, CommentedSeq, CommentedMap)):
        text = _dump(to_plain(value), yaml).rstrip("\n")
    else:
        if type(value) is str and style == "'":
            value = SingleQuotedScalarString(value)
        elif type(value) is str and style == '"':
            value = DoubleQuotedScalarString(value)
        text = _dump([value], yaml).rstrip("\n")
        if not (text.startswith("[") and text.endswith("]")):
            return None
        text = text[1:-1]
    return None if "\n" in text else text


# --------------------------------------------------------------------------- errors


class _Problems:
    """Problems found in one text, reported together as one ConfigError."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.items: list[tuple[int, int, str]] = []

    def add(self, mark: _Mark, message: str) -> None:
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


def _error(label: str, mark: _Mark, message: str) -> ConfigError:
    problems = _Problems(label)
    problems.add(mark, message)
    return problems.error()


def _node_mark(node: Node) -> _Mark:
    return (node.start_mark.line, node.start_mark.column)


def _lc(pair: Any) -> _Mark | None:
    if isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(x, int) for x in pair):
        return (pair[0], pair[1])
    return None


def _map_mark(mapping: Any) -> _Mark:
    lc = getattr(mapping, "lc", None)
    line, col = getattr(lc, "line", None), getattr(lc, "col", None)
    return (line, col) if isinstance(line, int) and isinstance(col, int) else (0, 0)


def _key_mark(mapping: Any, key: str) -> _Mark:
    try:
        return _lc(mapping.lc.key(key)) or _map_mark(mapping)
    except (AttributeError, KeyError):
        return _map_mark(mapping)


def _value_mark(mapping: Any, key: str) -> _Mark:
    if mapping.get(key) is None:  # an empty value's mark is wherever the parser went on
        return _key_mark(mapping, key)
    try:
        return _lc(mapping.lc.value(key)) or _map_mark(mapping)
    except (AttributeError, KeyError):
        return _map_mark(mapping)


def _shown(value: Any) -> str:
    kinds = {bool: "a bool", int: "an int", float: "a float", str: "a string"}
    try:
        plain = to_plain(value)
    except ConfigError:
        return f"{value!r:.60} that is a {describe_type(value)}"
    if plain is None:
        return "null"
    kind = kinds.get(type(plain)) or ("a list" if type(plain) is list else "a mapping")
    return f"{plain!r:.60} that is {kind}"


def _syntax_error(label: str, text: str, exc: YAMLError) -> ConfigError:
    mark: _Mark = (0, 0)
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
        return _error(
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
    return _error(label, mark, f"invalid YAML ({' '.join(what.split())}); {fix}")


# --------------------------------------------------------------------------- loading


def _explicit_tag_problem(handle: str | None, suffix: str) -> str:
    """Why an explicit tag is refused: a config holds plain values only."""
    shown = f"{handle}{suffix}" if handle else f"!<{suffix}>" if suffix != "!" else "!"
    name = suffix.removeprefix(_Y) if handle in ("!!", None) else f"{handle}{suffix}"
    if name.startswith("python/"):
        return (
            f"the tag {shown} is refused because it could construct arbitrary Python objects; "
            f"remove it (a config holds plain values: {TRACKED_TYPES_TEXT})"
        )
    if name == "str":
        return f"the tag {shown} is not supported; quote the value instead to make it a string"
    if name in ("int", "float", "bool", "null", "map", "seq"):
        return f"the tag {shown} is not supported; remove it and write the value plainly"
    if name == "binary":
        return (
            f"binary data ({shown}) is not a tracked type; save it to a file and put the file's "
            "path in the config"
        )
    if name in ("set", "omap", "pairs"):
        return f"{shown} is not a tracked type; write a list or a mapping instead"
    return (
        f"the tag {shown} is not supported; remove it (a config holds plain values: "
        f"{TRACKED_TYPES_TEXT})"
    )


def _scan_events(text: str, problems: _Problems) -> tuple[bool, bool]:
    """Refuse every explicit tag; return whether ``---`` and ``...`` mark the document.

    Tags are looked for in the parser's events, where each one written in the
    text shows, verbatim (``!<tag:...>``) and non-specific (``!``) ones too.
    """
    start = end = False
    depth = 0
    for event in _yaml().parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH + _DOC_LEVELS + 1:  # stop early: ruamel slows quadratically
                mark = (event.start_mark.line, event.start_mark.column)
                problems.add(mark, _TOO_DEEP)
                break
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        elif isinstance(event, DocumentStartEvent):
            start = start or bool(event.explicit)
        elif isinstance(event, DocumentEndEvent):
            end = end or bool(event.explicit)
        ctag = getattr(event, "ctag", None)
        if ctag is not None:
            mark = (event.start_mark.line, event.start_mark.column)
            problems.add(mark, _explicit_tag_problem(ctag.handle, str(ctag.suffix or "")))
    return start, end


def _tag_problem(node: Node) -> str | None:
    """Why a node's resolved type is refused, or None for a plain tracked value."""
    tag = node.tag or ""
    if isinstance(node, ScalarNode):
        if tag == _Y + "timestamp":
            return (
                f"{node.value} reads as a date or time, which is not a tracked type; quote it "
                f"('{node.value}') to keep it as a string"
            )
        if tag not in _SCALAR_TAGS:
            return (
                f"{node.value!r} reads as a YAML {tag.rsplit(':', 1)[-1]}, which is not a "
                "tracked type; quote it to keep it as a string"
            )
    elif tag not in (_Y + "map", _Y + "seq"):
        return _explicit_tag_problem(None, tag)
    return None


def _check_nodes(root: Node, problems: _Problems) -> bool:
    """Check every node for tracked values before anything is constructed.

    Returns:
        Whether the document uses anchors (then saving never patches text).
    """
    seen: set[int] = set()
    anchors = False

    def visit(node: Node, depth: int, where: _Mark) -> None:
        nonlocal anchors
        if getattr(node, "anchor", None) is not None:
            anchors = True
        if id(node) in seen:
            if not isinstance(node, ScalarNode):
                kind = "list" if isinstance(node, SequenceNode) else "mapping"
                problems.add(
                    where,
                    f"an alias (*{node.anchor}) of a {kind} is not supported, because an edit "
                    f"through one place would change both; write the {kind} out (aliases may "
                    "repeat single values only)",
                )
            return
        seen.add(id(node))
        mark = _node_mark(node)
        if depth > _MAX_DEPTH + _DOC_LEVELS and not isinstance(node, ScalarNode):
            problems.add(mark, _TOO_DEEP)
            return
        problem = _tag_problem(node)
        if problem is not None:
            problems.add(mark, problem)
            return
        if isinstance(node, MappingNode):
            keys: dict[str, _Mark] = {}
            for key_node, value_node in node.value:
                key_mark = _node_mark(key_node)
                if key_node.tag == _Y + "merge":
                    problems.add(
                        key_mark, "merge keys ('<<') are not supported; write the keys out"
                    )
                    continue
                key_problem = _tag_problem(key_node)
                if key_problem is not None:
                    problems.add(key_mark, key_problem)
                elif not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                    shown = key_node.value if isinstance(key_node, ScalarNode) else "..."
                    problems.add(
                        key_mark,
                        f"the key {shown} is not a string; mapping keys must be strings, so "
                        f"quote it ('{shown}':)",
                    )
                elif key_node.value in keys:
                    problems.add(
                        key_mark,
                        f"duplicate key {key_node.value!r} (first at line "
                        f"{keys[key_node.value][0] + 1}); remove one of them",
                    )
                else:
                    keys[key_node.value] = key_mark
                visit(value_node, depth + 1, key_mark)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                visit(item, depth + 1, mark)

    visit(root, 0, _node_mark(root))
    return anchors


@attrs.frozen
class _Parsed:
    """A checked document: its node tree, its data and what saving must respect."""

    root: Node | None
    data: Any
    anchors: bool  # saving never patches text around anchors
    start: bool  # the document opens with an explicit '---'
    end: bool  # ... and closes with '...'


def _parse(text: str, label: str) -> _Parsed:
    """Check the text's events and node tree, then construct its data.

    Nothing is constructed before every node is known to be a plain value.
    """
    problems = _Problems(label)
    try:
        start, end = _scan_events(text, problems)
        problems.raise_if_any()
        root = _yaml().compose(text)
    except YAMLError as exc:
        raise _syntax_error(label, text, exc) from exc
    except RecursionError as exc:
        raise _error(label, (0, 0), "values are nested too deeply to read; flatten them") from exc
    if root is None:
        return _Parsed(None, None, False, start, end)
    anchors = _check_nodes(root, problems)
    problems.raise_if_any()
    try:
        data = _yaml().load(text)
    except YAMLError as exc:
        raise _syntax_error(label, text, exc) from exc
    except ValueError as exc:  # e.g. an int longer than Python's int-to-str limit
        raise _error(label, (0, 0), f"a value cannot be read ({exc}); shorten it") from exc
    return _Parsed(root, data, anchors, start, end)


def _read(path: Path) -> tuple[str, str, bool]:
    """Read a config file: (text with \\n line ends, original line end, had a BOM)."""
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise _error(
            label, (0, 0), "no such config file; check the path (a pipeline run writes one)"
        ) from exc
    except IsADirectoryError as exc:
        raise _error(
            label, (0, 0), "this is a directory, not a config file; name the YAML file in it"
        ) from exc
    except OSError as exc:
        raise _error(
            label, (0, 0), f"the config cannot be read ({exc.strerror}); check its permissions"
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start)
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1)
        raise _error(
            label,
            (line, col),
            f"the byte {raw[exc.start : exc.start + 1]!r} is not UTF-8; save the file as UTF-8",
        ) from exc
    newline = "\r\n" if "\r\n" in text else "\n"
    return text.replace("\r\n", "\n"), newline, raw.startswith(codecs.BOM_UTF8)


def _check_source(mapping: Any, owner: str, problems: _Problems, what: str, missing: _Mark) -> None:
    if "source" not in mapping:
        problems.add(
            missing, f"{owner} has no 'source'; add `source: package.module.Name` naming {what}"
        )
        return
    source = mapping["source"]
    if not isinstance(source, str) or not source.strip():
        problems.add(
            _value_mark(mapping, "source"),
            f"the source of {owner} must be a dotted name like 'package.module.Name' "
            f"(got {_shown(source)}); write the import path of {what}",
        )


def _check_shape(data: Any, root: Node, problems: _Problems) -> None:
    """Check the config's layout: pipeline source and args, steps with source and args."""
    if not isinstance(data, CommentedMap):
        problems.add(
            _node_mark(root),
            f"the top level is {_shown(data).split(' that is ')[-1]}, not a mapping; a config "
            "is a mapping with 'pipeline' and 'steps'",
        )
        problems.raise_if_any()
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(
                _key_mark(data, key),
                f"unknown top-level key {key!r}; a config has only 'pipeline' and 'steps', so "
                "remove it or fix its name",
            )
    pipeline_what = "the function decorated with @zentrack.pipeline"
    if "pipeline" not in data:
        problems.add(
            (0, 0),
            f"'pipeline' is missing; add `pipeline:` with `source: package.module.function` "
            f"naming {pipeline_what}",
        )
    elif not isinstance(data["pipeline"], CommentedMap):
        problems.add(
            _value_mark(data, "pipeline"),
            f"'pipeline' must be a mapping with a 'source' (got {_shown(data['pipeline'])}); "
            f"add `source: package.module.function` naming {pipeline_what}",
        )
    else:
        pipeline = data["pipeline"]
        _check_source(pipeline, "'pipeline'", problems, pipeline_what, _key_mark(data, "pipeline"))
        run_id = pipeline.get("run_id")
        if run_id is not None and not isinstance(run_id, str):
            problems.add(
                _value_mark(pipeline, "run_id"),
                f"'pipeline.run_id' must be a string or null (got {_shown(run_id)}); quote it",
            )
        if "args" in pipeline and not isinstance(pipeline["args"], CommentedMap):
            problems.add(
                _value_mark(pipeline, "args"),
                f"'pipeline.args' must be a mapping of argument names to values (got "
                f"{_shown(pipeline['args'])}); write `args: {{}}` for none",
            )
    if "steps" not in data:
        problems.add(
            (0, 0),
            "'steps' is missing; add `steps:` mapping each step key to its source and args "
            "(`steps: {}` for none)",
        )
        return
    steps = data["steps"]
    if not isinstance(steps, CommentedMap):
        problems.add(
            _value_mark(data, "steps"),
            f"'steps' must be a mapping of step keys to their source and args (got "
            f"{_shown(steps)}); write `steps: {{}}` for none",
        )
        return
    for key, entry in steps.items():
        owner = f"step {key!r}"
        if not key:
            problems.add(_key_mark(steps, key), "a step key is empty; write the step's name")
        if not isinstance(entry, CommentedMap):
            problems.add(
                _value_mark(steps, key),
                f"{owner} must be a mapping with 'source' and 'args' (got {_shown(entry)}); "
                "write them under the step key",
            )
            continue
        for name in entry:
            if name not in _STEP_KEYS:
                problems.add(
                    _key_mark(entry, name),
                    f"unknown key {name!r} in {owner}; a step has only 'source' and 'args', "
                    "so remove it or fix its name",
                )
        _check_source(
            entry,
            owner,
            problems,
            "the function or class decorated with @zentrack.step",
            _key_mark(steps, key),
        )
        if "args" not in entry:
            problems.add(
                _key_mark(steps, key),
                f"{owner} has no 'args'; add `args:` with its parameters (`args: {{}}` for none)",
            )
        elif not isinstance(entry["args"], CommentedMap):
            problems.add(
                _value_mark(entry, "args"),
                f"the args of {owner} must be a mapping of parameter names to values (got "
                f"{_shown(entry['args'])}); write `args: {{}}` for none",
            )


def _guess_indent(root: Node) -> tuple[int, int, int]:
    """The file's block indentation as ruamel's (mapping, sequence, offset)."""
    maps: Counter[int] = Counter()
    seqs: Counter[tuple[int, int]] = Counter()

    def visit(node: Node, depth: int) -> None:
        if depth > _MAX_DEPTH or not isinstance(node, MappingNode) or node.flow_style:
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


# --------------------------------------------------------------------------- the config


@attrs.frozen
class StepConfig:
    """One entry under ``steps:``.

    Frozen so that an edit cannot silently miss the file: ``args`` is the
    mapping held by the loaded document, so ``args["lr"] = 0.02`` is saved.

    Attributes:
        key: the key under ``steps:`` (``"trainer"``, or ``"trainer#2"`` for the
            step's second call in one run).
        source: ``"package.module.QualName"`` of the step function or class.
        args: the step's parameters as they are in the file.
    """

    key: str
    source: str
    args: MutableMapping[str, Any] = attrs.field(repr=lambda args: repr(dict(args)))

    def plain_args(self) -> dict[str, Any]:
        """The args as exact builtin types: what a run passes to the step."""
        return _plain(self.args, "args", -1)  # type: ignore[no-any-return]


class Config:
    """A loaded config: edit its args in place, then :meth:`save`.

    Made by :func:`load_config`.  ``steps`` and ``pipeline_args`` are live
    views of the document: assign to their keys (or use :meth:`set`) and
    the change is saved.  Steps cannot be added or removed through this
    object; write a new config with :func:`write_run_config` for that.
    Comments are kept, not edited: one added through ruamel's comment API is
    not written.
    """

    def __init__(
        self,
        parsed: _Parsed,
        text: str,
        *,
        path: Path | None,
        label: str,
        newline: str = "\n",
        bom: bool = False,
    ) -> None:
        self.path = path
        self._data: CommentedMap = parsed.data
        self._label = label
        self._newline = newline
        self._bom = bom
        pipeline = self._data["pipeline"]
        args = pipeline.get("args")
        self._pipeline_args: CommentedMap = args if args is not None else CommentedMap()
        self._entries: dict[str, CommentedMap] = dict(self._data["steps"].items())
        self.steps: dict[str, StepConfig] = {
            key: StepConfig(key, str(entry["source"]), entry["args"])
            for key, entry in self._entries.items()
        }
        self._baseline(parsed, text)

    def _baseline(self, parsed: _Parsed, text: str) -> None:
        """Remember the text as written, which the next save patches."""
        self._parsed = parsed
        self._text = text
        self._snapshot = _plain_document(self._data)

    def __repr__(self) -> str:
        return (
            f"<Config {self._label} pipeline={self.pipeline_source!r} run_id={self.run_id!r} "
            f"steps={list(self.steps)}>"
        )

    @property
    def pipeline_source(self) -> str:
        """``"package.module.function"`` of the ``@zentrack.pipeline`` function."""
        return str(self._data["pipeline"]["source"])

    @property
    def pipeline_args(self) -> MutableMapping[str, Any]:
        """The pipeline function's own arguments (empty if the file has none)."""
        return self._pipeline_args

    @property
    def run_id(self) -> str | None:
        """The id of the run that wrote the config, if it says."""
        run_id = self._data["pipeline"].get("run_id")
        return None if run_id is None else str(run_id)

    @property
    def meta(self) -> dict[str, Any]:
        """What else ``pipeline:`` records (zentrack version, fingerprint scheme, ...)."""
        pipeline = self._data["pipeline"]
        return {k: to_plain(v) for k, v in pipeline.items() if k not in _PIPELINE_KEYS}

    def plain_pipeline_args(self) -> dict[str, Any]:
        """The pipeline args as exact builtin types: what a run passes to the pipeline."""
        return _plain(self._pipeline_args, "pipeline args", -1)  # type: ignore[no-any-return]

    def set(self, dotted: str, value: Any) -> None:
        """Set one existing arg from a dotted key, as ``zentrack config set`` does.

        ``"trainer.lr"`` is ``steps["trainer"].args["lr"]``, ``"pipeline.lr"``
        the pipeline's own ``lr``, ``"trainer.optimizer.lr"`` a key inside a
        mapping arg, and ``"steps.KEY.lr"`` names a step explicitly (for a step
        keyed ``pipeline``).  A quoted string stays quoted the same way.

        When the source of the step (or pipeline) can be imported, the arg is
        checked against its signature as :meth:`run` would check it, so a
        value that run would refuse is refused now and nothing changes.

        Raises:
            ConfigError: no such step or arg, ``value`` is not of a tracked
                type, or its type contradicts the signature.
        """
        step, parts = self._path(dotted)
        target, key = self._locate(dotted)
        old = target[key]
        new = _styled(_checked(value, dotted))
        if type(new) is str:
            if isinstance(old, SingleQuotedScalarString):
                new = SingleQuotedScalarString(new)
            elif isinstance(old, DoubleQuotedScalarString):
                new = DoubleQuotedScalarString(new)
        target[key] = new
        try:
            self._check_arg(step, parts[0])
        except ConfigError:
            target[key] = old
            raise

    def _check_arg(self, step: str | None, name: str) -> None:
        """Check one arg of a step (None: of the pipeline) against the code, if it imports."""
        from zentrack._config.rerun import resolve_source

        source = self.pipeline_source if step is None else self.steps[step].source
        try:
            obj = resolve_source(source)
        except Exception:  # code that does not import here is checked when it runs
            return
        args: MutableMapping[str, Any]
        if step is None:
            spec = getattr(obj, "__zentrack_pipeline__", None)
            owner, declared, args = "the pipeline", None, self._pipeline_args
        else:
            spec = spec_of(obj)
            owner, args = f"step {step!r}", self.steps[step].args
            declared = None if spec is None else spec.declared
        if spec is None:
            return
        problems = _Problems(self._label)
        _check_args(owner, spec.signature, declared, args, problems, only=name)
        problems.raise_if_any()

    def _path(self, dotted: str) -> tuple[str | None, list[str]]:
        """The step key (None for the pipeline) and the arg path a dotted key names."""
        head, _, rest = dotted.partition(".")
        if head == "pipeline" and rest:
            return None, rest.split(".")
        key, rest = _split_step(dotted, self.steps)
        if key is None:
            raise ConfigError(
                f"{self._label}: {dotted!r} names no arg; write 'pipeline.ARG' or "
                f"'STEP.ARG' with STEP one of {sorted(self.steps)}."
            )
        return key, rest.split(".")

    def _locate(self, dotted: str) -> tuple[CommentedMap, str]:
        step, parts = self._path(dotted)
        owner = "the pipeline" if step is None else f"step {step!r}"
        mapping: Any = self._pipeline_args if step is None else self.steps[step].args
        for depth, part in enumerate(parts):
            if not isinstance(mapping, CommentedMap) or part not in mapping:
                inside = ".".join(parts[:depth])
                where = f"{owner}" + (f" arg {inside!r}" if inside else "")
                valid = sorted(mapping) if isinstance(mapping, Mapping) else []
                line, col = _map_mark(mapping)
                raise ConfigError(
                    f"{self._label}:{line + 1}:{col + 1}: {where} has no arg {part!r} "
                    f"(it has {valid}); fix the name in {dotted!r}, or add the arg to the "
                    "file first."
                )
            if depth < len(parts) - 1:
                mapping = mapping[part]
        return mapping, parts[-1]

    def _attach(self) -> None:
        """Put pipeline args given in memory into a file that had none."""
        pipeline = self._data["pipeline"]
        if len(self._pipeline_args) and "args" not in pipeline:
            position = sum(1 for key in ("source", "run_id") if key in pipeline)
            pipeline.insert(position, "args", self._pipeline_args)

    def to_text(self) -> str:
        """The config as it would be saved, checked to load back as it is in memory."""
        self._attach()
        plain = _plain_document(self._data)
        parsed = self._parsed
        assert parsed.root is not None  # a config's document is never empty
        text = None
        if not parsed.anchors:
            text = _patched(self._text, parsed.root, self._snapshot, plain, self._data)
        if text is None or not _loads_as(text, plain):
            indent = _guess_indent(parsed.root)
            text = _dump(self._data, _yaml(indent, start=parsed.start, end=parsed.end))
            opening = _DOCUMENT_START.search(self._text) if parsed.start else None
            if opening is not None and _DOCUMENT_START.match(text):
                text = self._text[: opening.start()] + text  # ruamel drops what precedes '---'
            if not _loads_as(text, plain):
                raise ConfigError(
                    f"{self._label}: the edited config would not load back as it is in memory; "
                    "please report this as a zentrack bug, with the edit made."
                )
        return text.replace("\n", self._newline) if self._newline != "\n" else text

    def run(self, *, config_dir: str | os.PathLike[str] | None = None) -> Any:
        """Rerun the pipeline with this config's args; return the new :class:`Run`.

        The whole config is validated against the code before anything runs;
        the config's args take precedence over the values in the pipeline's code
        (a class-step instance built before the run runs on a stand-in built
        with the config's args).

        Raises:
            ConfigError: the config does not match the code: nothing ran.  Also
                raised after the run when it never made a step call the config
                has args for and that could not be known beforehand (the run
                that wrote the config is not in the store, or had other
                pipeline args); that run is recorded FAILED.
        """
        from zentrack._config.rerun import run_config

        return run_config(self, config_dir=config_dir)

    def plan(self) -> Any:
        """Say, without running anything, which steps would hit or miss the cache."""
        from zentrack._config.plan import plan_config

        return plan_config(self)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the config, changing only what was edited, and return where.

        Args:
            path: where to write (default: the file it was loaded from); the
                config then belongs to that file.

        Raises:
            ConfigError: a value set in memory is not of a tracked type.
            OSError: the file cannot be written (an existing one is left as it was).
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ConfigError("This config was not loaded from a file; pass save(path).")
        text = self.to_text()
        _write(target, text, self._bom)
        normal = text.replace("\r\n", "\n")
        self._baseline(_parse(normal, self._label), normal)
        self.path = target
        return target


def _split_step(dotted: str, steps: Mapping[str, Any]) -> tuple[str | None, str]:
    """Split ``"KEY.arg"`` (or ``"steps.KEY.arg"``) at the longest matching step key."""
    candidates = [dotted[len("steps.") :]] if dotted.startswith("steps.") else []
    for text in [*candidates, dotted]:
        keys = [key for key in steps if text.startswith(f"{key}.") and len(text) > len(key) + 1]
        if keys:
            key = max(keys, key=len)
            return key, text[len(key) + 1 :]
    return None, ""


def _step_prefix(key: str) -> str:
    return f"steps.{key}" if key in ("pipeline", "steps") else key


def _checked(value: Any, where: str) -> Any:
    try:
        return to_plain(value)
    except ConfigError:
        raise ConfigError(
            f"The value for {where!r} must be of a tracked type ({TRACKED_TYPES_TEXT}) (got "
            f"{value!r:.80} that is a {describe_type(value)}); convert it to one."
        ) from None


def _patched(text: str, root: Node, was: Any, now: Any, raw: Any) -> str | None:
    """The original text with only what changed rewritten, or None if that cannot be done."""
    patch = _Patch(text, root)
    try:
        patch.walk(root, was, now, raw, None, 0)
        return patch.result()
    except _Unpatchable:
        return None


class _Unpatchable(Exception):
    """An edit the text patcher cannot make; the caller dumps the whole document instead."""


def _empty(node: Node) -> bool:
    """Whether a node is an empty value (``key:``), whose marks are wherever the parser went on."""
    return isinstance(node, ScalarNode) and node.start_mark.index == node.end_mark.index


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _line_after(text: str, index: int) -> int:
    """Just past the line break ending the line that ``text[index - 1]`` is on."""
    if index > 0 and text[index - 1] == "\n":
        return index
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1


def _fresh(value: Any) -> Any:
    """A value to emit anew: ruamel containers keep their flow or block style, plain
    containers get :func:`_styled`'s, scalars (and their spellings) stay as they are."""
    if isinstance(value, CommentedSeq):
        seq = CommentedSeq(_fresh(item) for item in value)
        if value.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    if isinstance(value, CommentedMap):
        mapping = CommentedMap((key, _fresh(item)) for key, item in value.items())
        if value.fa.flow_style():
            mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, (list, tuple, dict)):
        return _styled(to_plain(value))
    return value


class _Patch:
    """The edits that turn a config's text into its edited data, and nothing more.

    The node tree of the text is walked beside the data as it was loaded
    (``was``), as it is now (``now``) and as ruamel holds it (``raw``, which
    knows quoting).  A changed scalar or flow value is replaced where it
    stands.  A mapping that gained or lost keys, or a list that grew or
    shrank, keeps its unchanged entries' text: lost entries are cut out and
    new ones written in the collection's own style (block lines at its
    indentation and dash offset, or flow items joined by ``", "``).  What
    cannot be edited entry by entry (reordered keys, a list that became a
    mapping) is replaced as one value, in the style the old one had.
    Anything else raises :class:`_Unpatchable`.
    """

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        self.root = root
        #: (start, end, -depth, new text): at one position, deeper edits come first
        self.edits: list[tuple[int, int, int, str]] = []
        self._indent: tuple[int, int, int] | None = None

    def result(self) -> str:
        parts: list[str] = []
        position = 0
        previous: tuple[int, int, int] | None = None
        for start, end, order, new in sorted(self.edits):
            if start < position or previous == (start, end, order):
                raise _Unpatchable  # overlapping edits, or insertions in no definite order
            parts += [self.text[position:start], new]
            position, previous = end, (start, end, order)
        text = "".join(parts) + self.text[position:]
        if not self.text.endswith("\n"):  # the last line was cut: its break before goes too
            text = text.removesuffix("\n")
        return text

    def add(self, start: int, end: int, new: str, depth: int) -> None:
        self.edits.append((start, end, -depth, new))

    # ------------------------------------------------------------------ walking

    def walk(self, node: Node, was: Any, now: Any, raw: Any, key: Node | None, depth: int) -> None:
        """Edit ``node`` (the value of ``key``, or an item) from ``was`` into ``now``."""
        mark = len(self.edits)
        try:
            if self.entries(node, was, now, raw, depth):
                return
        except _Unpatchable:
            del self.edits[mark:]
        if not _same(was, now):
            self.replace(node, raw, key, depth)

    def entries(self, node: Node, was: Any, now: Any, raw: Any, depth: int) -> bool:
        """Edit a mapping or list entry by entry; False if it is not one that stayed one."""
        if isinstance(node, MappingNode) and type(was) is dict and type(now) is dict:
            keys = [key_node.value for key_node, _ in node.value]
            if keys != list(was):
                return False
            if keys != list(now):
                self.mapping(node, was, now, raw, depth)
                return True
            for (key_node, value_node), key in zip(node.value, keys, strict=True):
                self.walk(value_node, was[key], now[key], raw[key], key_node, depth + 1)
            return True
        if (
            isinstance(node, SequenceNode)
            and type(was) is list
            and type(now) is list
            and len(node.value) == len(was)
        ):
            if len(was) != len(now):
                self.sequence(node, was, now, raw, depth)
                return True
            for item, old, new, value in zip(node.value, was, now, raw, strict=True):
                self.walk(item, old, new, value, None, depth + 1)
            return True
        return False

    def mapping(self, node: MappingNode, was: Any, now: Any, raw: Any, depth: int) -> None:
        """A mapping that gained or lost keys: cut out and write in whole entries."""
        keys, order = list(was), list(now)
        kept = [key for key in keys if key in now]
        if not kept or kept != [key for key in order if key in was]:
            raise _Unpatchable  # nothing to keep, or keys reordered: replace it whole
        flow = bool(node.flow_style)
        column = node.value[0][0].start_mark.column
        spans = [(k.start_mark.index, self.entry_end(k, v)) for k, v in node.value]
        for (key_node, value_node), key in zip(node.value, keys, strict=True):
            if key in now:
                self.walk(value_node, was[key], now[key], raw[key], key_node, depth + 1)
        self.delete(spans, [i for i, key in enumerate(keys) if key not in now], flow, depth)
        index = {key: i for i, key in enumerate(keys)}
        groups: dict[int | None, list[str]] = {}
        previous: int | None = None
        for key in order:
            if key in was:
                previous = index[key]
                continue
            if flow:
                text = f"{self.inline(key, None)}: {self.inline(raw[key], None)}"
            else:
                text = self.indented(self.block(CommentedMap([(key, _fresh(raw[key]))])), column)
            groups.setdefault(previous, []).append(text)
        for after, texts in groups.items():
            self.insert(spans, after, index[kept[0]], texts, flow, column, depth)

    def sequence(self, node: SequenceNode, was: Any, now: Any, raw: Any, depth: int) -> None:
        """A list that grew or shrank: keep its common head and tail, edit the middle."""
        old, new = len(was), len(now)
        if not old or not new:
            raise _Unpatchable  # [] in or out: replace it whole
        head = 0
        while head < min(old, new) and _same(was[head], now[head]):
            head += 1
        tail = 0
        while tail < min(old, new) - head and _same(was[old - 1 - tail], now[new - 1 - tail]):
            tail += 1
        paired = min(old, new) - tail  # items head..paired-1 are edited in place
        flow = bool(node.flow_style)
        items = node.value
        if any(_empty(item) for item in items):
            raise _Unpatchable
        spans = [
            (item.start_mark.index if flow else self.dash(item), self.end(item)) for item in items
        ]
        for i in range(head, paired):
            self.walk(items[i], was[i], now[i], raw[i], None, depth + 1)
        self.delete(spans, list(range(paired, old - tail)), flow, depth)
        if paired < new - tail:
            mapping, sequence, _ = self.indent
            gap = items[0].start_mark.index - spans[0][0]  # "- 1" or "-   1", as this list has it
            if "\n" not in self.text[spans[0][0] : items[0].start_mark.index] and gap > 1:
                sequence = gap
            texts = []
            for j in range(paired, new - tail):
                if flow:
                    texts.append(self.inline(raw[j], None))
                else:
                    seq = CommentedSeq([_fresh(raw[j])])
                    lines = self.block(CommentedMap([("k", seq)]), (mapping, sequence, 0))[1:]
                    texts.append(self.indented(lines, node.start_mark.column))
            after = paired - 1 if paired else None
            self.insert(spans, after, old - tail, texts, flow, node.start_mark.column, depth)

    # ------------------------------------------------------------------ text edits

    def delete(self, spans: list[tuple[int, int]], gone: list[int], flow: bool, depth: int) -> None:
        """Cut out entries, each run of neighbours at once, with their separators."""
        text, count = self.text, len(spans)
        runs: list[tuple[int, int]] = []
        for i in gone:
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        for first, stop in runs:
            start = spans[first][0]
            line = _line_start(text, start)
            if flow and first:  # ", a, b" after the entry before
                self.add(spans[first - 1][1], spans[stop - 1][1], "", depth)
            elif not flow and not text[line:start].strip():  # whole lines
                self.add(line, _line_after(text, spans[stop - 1][1]), "", depth)
            elif stop < count:  # "a, " up to the next entry ("- a: 1\n  b: 2": "a: 1\n  ")
                self.add(start, spans[stop][0], "", depth)
            else:
                raise _Unpatchable

    def insert(
        self,
        spans: list[tuple[int, int]],
        after: int | None,
        before: int,
        texts: list[str],
        flow: bool,
        column: int,
        depth: int,
    ) -> None:
        """Write new entries after entry ``after`` (None: before entry ``before``)."""
        text = self.text
        if flow:
            if after is not None:
                at = spans[after][1]
                self.add(at, at, "".join(f", {item}" for item in texts), depth)
            else:
                at = spans[before][0]
                self.add(at, at, "".join(f"{item}, " for item in texts), depth)
            return
        lines = "".join(texts)  # whole lines at the collection's indentation
        if after is not None:
            at = _line_after(text, spans[after][1])
            if at == len(text) and not text.endswith("\n"):
                lines = "\n" + lines.removesuffix("\n")
        else:
            at = spans[before][0]
            line = _line_start(text, at)
            if text[line:at].strip():  # the entry follows a dash: "- a: 1"
                lines = lines[column:] + " " * column
            else:
                at = line
        self.add(at, at, lines, depth)

    def replace(self, node: Node, raw: Any, key: Node | None, depth: int) -> None:
        """Replace one whole value, in the style the old one had."""
        if _empty(node):
            if key is None:
                raise _Unpatchable
            at = self.colon(key)
            self.add(at, at, " " + self.inline(raw, None), depth)
            return
        start = node.start_mark.index
        if isinstance(node, ScalarNode) or getattr(node, "flow_style", False):
            style = node.style if isinstance(node, ScalarNode) else None
            self.add(start, self.end(node), self.inline(raw, style), depth)
            return
        at = self.colon(key) if key is not None else self.dash(node) + 1
        end = self.end(node)
        fresh = _fresh(raw)
        if key is None or not isinstance(fresh, (CommentedMap, CommentedSeq)) or not fresh:
            self.add(at, end, " " + self.inline(raw, None), depth)
            return
        fresh.fa.set_block_style()  # a block value stays block
        lines = self.block(CommentedMap([("k", fresh)]))[1:]
        eol = self.text.find("\n", at)
        if 0 <= eol < start:  # keep a comment after "key:"
            at = eol
        if isinstance(fresh, CommentedMap) == isinstance(node, MappingNode):
            column = node.start_mark.column  # where the old entries were
        else:  # where a fresh dump puts it under its key ("k:\n- 1" but "k:\n  a: 1")
            column = key.start_mark.column + len(lines[0]) - len(lines[0].lstrip(" "))
        new = "\n" + self.indented(lines, column).removesuffix("\n")
        self.add(at, end, new, depth)

    # ------------------------------------------------------------------ helpers

    @property
    def indent(self) -> tuple[int, int, int]:
        if self._indent is None:
            self._indent = _guess_indent(self.root)
        return self._indent

    def block(self, data: CommentedMap, indent: tuple[int, int, int] | None = None) -> list[str]:
        """``data`` as block YAML lines in the file's indentation (each ending in a newline)."""
        return _dump(data, _yaml(indent or self.indent)).splitlines(keepends=True)

    @staticmethod
    def indented(lines: list[str], column: int) -> str:
        """Lines moved right or left together, so that the first starts at ``column``."""
        shift = len(lines[0]) - len(lines[0].lstrip(" ")) if lines else 0
        if any(line[:shift].strip() for line in lines):
            raise _Unpatchable
        return "".join(" " * column + line[shift:] for line in lines)

    @staticmethod
    def inline(value: Any, style: str | None) -> str:
        text = _inline(value, style)
        if text is None:
            raise _Unpatchable
        return text

    def colon(self, key: Node) -> int:
        """Just past the ``:`` after a mapping key."""
        index: int = key.end_mark.index
        while index < len(self.text) and self.text[index] in " \t":
            index += 1
        if not self.text.startswith(":", index):
            raise _Unpatchable
        return index + 1

    def dash(self, item: Node) -> int:
        """Where the ``-`` of a block list item is."""
        index: int = item.start_mark.index - 1
        while index >= 0 and self.text[index] in " \t\n":
            index -= 1
        if index < 0 or self.text[index] != "-":
            raise _Unpatchable
        return index

    def end(self, node: Node) -> int:
        """Where a value's own text ends (a block collection's marks run on over comments)."""
        if isinstance(node, ScalarNode):
            if _empty(node):
                raise _Unpatchable
            start: int = node.start_mark.index
            end: int = node.end_mark.index
            if node.style in ("|", ">"):  # its marks run on over the trailing line breaks
                return start + len(self.text[start:end].rstrip())
            return end
        if getattr(node, "flow_style", False):
            return int(node.end_mark.index)
        if not node.value:
            raise _Unpatchable
        if isinstance(node, MappingNode):
            return self.entry_end(*node.value[-1])
        return self.end(node.value[-1])

    def entry_end(self, key: Node, value: Node) -> int:
        return self.colon(key) if _empty(value) else self.end(value)


def _loads_as(text: str, plain: Any) -> bool:
    try:
        return _same(_plain_document(_parse(text, "<written>").data), plain)
    except ConfigError:
        return False


def _write(path: Path, text: str, bom: bool) -> None:
    """Replace ``path`` atomically, keeping an existing file's permissions.

    An I/O failure stays an ``OSError`` (it is not a bad config), and leaves
    any existing file as it was.
    """
    payload = (codecs.BOM_UTF8 if bom else b"") + text.encode("utf-8")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else None
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as stream:
            stream.write(payload)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- public functions


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read, check and return the config at ``path``.

    Nothing is constructed before every node is known to be a plain tracked
    value, so a hostile file cannot run code.

    Raises:
        ConfigError: listing every problem found, each as ``file:line:column:
            what is wrong; what to do``.
    """
    file = Path(path)
    label = str(path)
    text, newline, bom = _read(file)
    parsed = _parse(text, label)
    if parsed.root is None:
        raise _error(
            label,
            (0, 0),
            "the config is empty; it needs `pipeline:` (with a source) and `steps:`",
        )
    problems = _Problems(label)
    _check_shape(parsed.data, parsed.root, problems)
    problems.raise_if_any()
    return Config(parsed, text, path=file, label=label, newline=newline, bom=bom)


def parse_value(text: str) -> Any:
    """Read one value as YAML, with the rules of a config file.

    For ``zentrack config set FILE trainer.lr 0.02``: ``"0.02"`` is a float,
    ``"1"`` an int, ``"true"`` a bool, ``"null"`` None, ``"[1, 2]"`` a list,
    ``"'1'"`` the string ``"1"`` and ``"abc"`` a string.  An empty (or blank)
    text is returned as it is, since a shell's ``""`` means an empty string;
    write ``null`` for None.  A text that YAML would not read as what was
    typed is refused, with how to quote it: a ``#`` comment (YAML drops it,
    so ``"# x"`` would be null) and a number too large or too small for a
    float (``2e400`` would be ``.inf``, ``1e-400`` would be ``0.0``).

    Raises:
        ConfigError: the text is not YAML, not a tracked value (a date, a tag),
            or not read as it was typed.
    """
    if not text.strip():
        return text
    label = f"value {text!r}" if len(text) <= 60 else f"value {text[:60]!r}..."
    parsed = _parse(text, label)
    problems = _Problems(label)
    quoted = json.dumps(text) if "\n" in text else "'" + text.replace("'", "''") + "'"
    for token in _yaml().scan(text):
        comment = _first_comment(getattr(token, "comment", None))
        if comment is not None:
            problems.add(
                (comment.start_mark.line, comment.start_mark.column),
                f"{comment.value.strip()!r} is a YAML comment, which would be dropped from the "
                f"value; to set the text as a string, quote it as YAML ({quoted}, inside the "
                "shell's own quotes), or leave the comment out",
            )
            break
    if (parsed.root is None or parsed.start or parsed.end) and not problems.items:
        problems.add(
            (0, 0),
            f"{text!r} is not a single YAML value (a '---' or '...' marks a document); write "
            f"null for None, or quote it ({quoted}) to set it as a string",
        )
    if parsed.root is not None:
        _check_float_range(parsed.root, problems)
    problems.raise_if_any()
    return to_plain(parsed.data)


def _first_comment(found: Any) -> Any:
    """The first comment token in what ruamel attaches to a token (nested lists), or None."""
    if isinstance(found, list):
        for item in found:
            comment = _first_comment(item)
            if comment is not None:
                return comment
        return None
    return found if hasattr(found, "value") and hasattr(found, "start_mark") else None


def _check_float_range(root: Node, problems: _Problems) -> None:
    """Refuse floats written as finite non-zero numbers that a float cannot hold."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            stack += [item for pair in node.value for item in pair]
        elif isinstance(node, SequenceNode):
            stack += node.value
        elif node.tag == _FLOAT and getattr(node, "style", None) is None:
            written = str(node.value)
            try:
                value = float(written)
            except ValueError:  # .inf, .nan: YAML's own spellings
                continue
            mantissa = re.split("[eE]", written)[0]
            if math.isinf(value):
                read = ".inf" if value > 0 else "-.inf"
                fix = f"write {read} for infinity"
            elif value == 0 and re.search("[1-9]", mantissa):
                read, fix = "0.0", "write 0.0 for zero"
            else:
                continue
            problems.add(
                _node_mark(node),
                f"{written} is out of a float's range and would be read as {read}; {fix}, or "
                f"quote it ('{written}') to keep it as a string",
            )


def diff_configs(a: Config, b: Config) -> list[tuple[str, Any, Any]]:
    """List the args that differ between two configs, sorted by dotted key.

    Keys are ``"pipeline.ARG"`` and ``"STEP.ARG"`` (``"steps.STEP.ARG"`` for a
    step keyed ``pipeline`` or ``steps``), the spelling :meth:`Config.set`
    accepts.  Values are plain and compared exactly, as the fingerprint
    does: ``1`` and ``1.0`` differ, NaN equals NaN.  An arg only one config
    has gets :data:`MISSING` on the other side.  Sources are not compared.
    """
    left, right = _flat_args(a), _flat_args(b)
    rows: list[tuple[str, Any, Any]] = []
    for key in sorted(left.keys() | right.keys()):
        old, new = left.get(key, MISSING), right.get(key, MISSING)
        if old is MISSING or new is MISSING or not _same(old, new):
            rows.append((key, old, new))
    return rows


def _flat_args(config: Config) -> dict[str, Any]:
    flat = {f"pipeline.{k}": v for k, v in config.plain_pipeline_args().items()}
    for key, step in config.steps.items():
        prefix = _step_prefix(key)
        flat.update({f"{prefix}.{name}": value for name, value in step.plain_args().items()})
    return flat


#: A written run config larger than this is not read back to check it.
_VERIFY_WRITTEN_BYTES: Final = 256 * 1024


def write_run_config(
    path: str | os.PathLike[str],
    *,
    pipeline_source: str,
    pipeline_args: Mapping[str, Any],
    run_id: str,
    steps: Sequence[tuple[str, str, Mapping[str, Any]]],
    meta: Mapping[str, Any],
) -> Path:
    """Write a fresh config for a run, creating missing directories, and return its path.

    Args are written with their keys sorted (nested mappings keep their
    order), tuples as lists; ``meta`` (zentrack version, fingerprint
    scheme, creation time, ...) goes under ``pipeline:`` after the args.

    Args:
        path: the file to write (replaced atomically if it exists).
        pipeline_source: ``"package.module.function"`` of the pipeline.
        pipeline_args: the pipeline function's own arguments.
        run_id: the run the config records.
        steps: ``(key, source, args)`` in call order.
        meta: more facts about the run, of tracked types.

    Raises:
        ConfigError: a value is not of a tracked type, a step key repeats, or a
            meta key is one of ``source``, ``run_id``, ``args``.
        OSError: the file cannot be written.
    """
    target = Path(path)
    for name, value in (("pipeline_source", pipeline_source), ("run_id", run_id)):
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"write_run_config: {name} must be a non-empty string (got {value!r})."
            )
    clash = sorted(set(meta) & set(_PIPELINE_KEYS))
    if clash:
        raise ConfigError(
            f"write_run_config: meta keys {clash} clash with the config's own keys; rename them."
        )
    pipeline = CommentedMap()
    pipeline["source"] = pipeline_source
    pipeline["run_id"] = run_id
    pipeline["args"] = _sorted_args(pipeline_args, "pipeline args")
    for key, value in meta.items():
        pipeline[key] = _styled(_checked(value, f"pipeline.{key}"))
    entries = CommentedMap()
    for key, source, args in steps:
        if key in entries:
            raise ConfigError(
                f"write_run_config: the step key {key!r} repeats; step keys must be unique."
            )
        if not isinstance(key, str) or not key or not isinstance(source, str) or not source:
            raise ConfigError(
                f"write_run_config: step key and source must be non-empty strings "
                f"(got {key!r}, {source!r})."
            )
        entry = CommentedMap()
        entry["args"] = _sorted_args(args, f"args of step {key!r}")
        entry["source"] = source
        entries[key] = entry
    data = CommentedMap()
    data["pipeline"] = pipeline
    data["steps"] = entries
    shown = run_id if _PLAIN.fullmatch(run_id) else json.dumps(run_id)  # a comment is raw
    data.yaml_set_start_comment(_HEADER.format(run_id=shown))
    text = _dump(data, _yaml())
    # ruamel's own emitter wrote it; reading it back is a self-check, skipped
    # for huge configs, where ruamel's pure-Python scanner takes seconds a MB.
    if len(text) <= _VERIFY_WRITTEN_BYTES and not _loads_as(text, _plain_document(data)):
        raise ConfigError(
            f"write_run_config: the config for {str(target)!r} would not load back as given; "
            "please report this as a zentrack bug, with the args."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(target, text, bom=False)
    return target


def _sorted_args(args: Mapping[str, Any], owner: str) -> CommentedMap:
    mapping = CommentedMap()
    for name in sorted(args):
        if not isinstance(name, str):
            raise ConfigError(f"write_run_config: {owner} have the non-string name {name!r}.")
        mapping[name] = _styled(_checked(args[name], f"{owner}: {name}"))
    return mapping


# --------------------------------------------------------------------------- validation


class _NoDefault(enum.Enum):
    NO_DEFAULT = 0


#: Which value types an arg may hold, by the type of its default.
_FITS: Final[dict[type, tuple[type, ...]]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    str: (str,),
    list: (list,),
    tuple: (list,),
    dict: (dict,),
}
_KIND_NAMES: Final = {
    bool: "a bool",
    int: "an int",
    float: "a float",
    str: "a string",
    list: "a list",
    tuple: "a list",
    dict: "a mapping",
}


def validate_against(
    config: Config,
    resolve: Callable[[str], Any],
    *,
    recorded: tuple[str, Collection[str]] | None = None,
) -> None:
    """Check a config against the code it names, before anything runs.

    ``resolve(source)`` imports and returns what a source names (raising
    ImportError or AttributeError).  The pipeline source must name a
    ``@zentrack.pipeline`` function, and the config must give every argument
    of it that has no default; each step source must name a
    ``@zentrack.step`` whose name matches its key; every arg must be one of
    the callable's parameters, of a type its default allows (an int where a
    float is the default is fine, a bool where an int is is not; None is
    always allowed).

    Args:
        config: the loaded config.
        resolve: imports what a source names.
        recorded: ``(run id, config keys)`` of the step calls a run of this
            pipeline made with the config's pipeline args, when known; a step
            key not among them would not be used, so it is refused.

    Raises:
        ConfigError: listing every problem, each as ``file:line:column: ...``.
    """
    problems = _Problems(config._label)
    pipeline = config._data["pipeline"]
    obj = _resolved(resolve, config.pipeline_source, _value_mark(pipeline, "source"), problems)
    if obj is not None:
        spec = getattr(obj, "__zentrack_pipeline__", None)
        if spec is None:
            problems.add(
                _value_mark(pipeline, "source"),
                f"{config.pipeline_source!r} is {_kind_of(obj)}, not a pipeline; source must "
                "name a function decorated with @zentrack.pipeline",
            )
        else:
            _check_args("the pipeline", spec.signature, None, config.pipeline_args, problems)
            _check_required(config, spec.signature, problems)
    for key, step in config.steps.items():
        entry = config._entries[key]
        mark = _value_mark(entry, "source")
        obj = _resolved(resolve, step.source, mark, problems)
        if obj is None:
            continue
        step_spec = spec_of(obj)
        if step_spec is None:
            problems.add(
                mark,
                f"{step.source!r} is {_kind_of(obj)}, not a zentrack step; source must name a "
                "function or class decorated with @zentrack.step",
            )
            continue
        base, sep, count = key.rpartition("#")
        if not (
            key == step_spec.name
            or (sep and base == step_spec.name and count.isdigit() and int(count) >= 2)
        ):
            problems.add(
                _key_mark(config._data["steps"], key),
                f"the step key {key!r} does not match the name {step_spec.name!r} of its source; "
                f"write {step_spec.name!r} (or {step_spec.name + '#2'!r} for its second call)",
            )
        elif recorded is not None and key not in recorded[1]:
            problems.add(
                _key_mark(config._data["steps"], key),
                _uncalled_key(key, step_spec.name, *recorded),
            )
        _check_args(f"step {key!r}", step_spec.signature, step_spec.declared, step.args, problems)
    problems.raise_if_any()


def _uncalled_key(key: str, name: str, run_id: str, keys: Collection[str]) -> str:
    """Why a step key that the recorded run never called is refused."""
    calls = [
        k for k in keys if k == name or (k.startswith(f"{name}#") and k[len(name) + 1 :].isdigit())
    ]
    shown = ", ".join(repr(k) for k in calls)
    if len(calls) == 1:
        made = f"called step {name!r} once (key {shown})"
        fix = f"remove the key or fix it to {shown}"
    elif calls:
        made = f"called step {name!r} {len(calls)} times (keys {shown})"
        fix = f"remove the key or fix it to one of {shown}"
    else:
        made, fix = f"never called step {name!r}", "remove the key"
    return (
        f"the pipeline makes no step call keyed {key!r}: the run {run_id} that wrote this "
        f"config {made} with the same pipeline args, so these args would not be used; {fix} "
        "(if the pipeline's code now makes this call, run the pipeline to write a config "
        "that has it)"
    )


def _check_required(config: Config, signature: Any, problems: _Problems) -> None:
    """Every pipeline argument without a default must be in the config's pipeline args."""
    missing = [
        name
        for name in signature.names
        if name not in signature.defaults and name not in config.pipeline_args
    ]
    if not missing:
        return
    pipeline = config._data["pipeline"]
    if "args" in pipeline:
        mark = _key_mark(pipeline, "args")
    else:
        mark = _key_mark(config._data, "pipeline")
    names = ", ".join(repr(name) for name in missing)
    problems.add(
        mark,
        f"the pipeline needs the arg{'s' if len(missing) > 1 else ''} {names}, which the config "
        "does not give (a run writes only args of tracked types, not data such as a dataset); "
        f"add {'them' if len(missing) > 1 else 'it'} under `args:` of `pipeline:`, or give "
        f"{'them defaults' if len(missing) > 1 else 'it a default'} in the pipeline's code",
    )


def unused_keys_error(config: Config, run_id: str, keys: Collection[str]) -> ConfigError:
    """The error for step keys of ``config`` that run ``run_id`` never called.

    Raised after the run, when the keys a pipeline calls could not be known
    before it (see :func:`zentrack._config.rerun.recorded_calls`).
    """
    problems = _Problems(config._label)
    steps = config._data["steps"]
    for key in keys:
        problems.add(
            _key_mark(steps, key),
            f"the run {run_id} made no step call keyed {key!r}, so these args were not used "
            "and the run is recorded FAILED; remove the key or fix it (the config that run "
            "wrote lists the calls it made)",
        )
    return problems.error()


def _kind_of(obj: Any) -> str:
    if isinstance(obj, type):
        return "a class"
    if callable(obj):
        return "a function"
    return f"a {describe_type(obj)}"


def _resolved(resolve: Callable[[str], Any], source: str, mark: _Mark, problems: _Problems) -> Any:
    try:
        return resolve(source)
    except (ImportError, AttributeError) as exc:
        problems.add(
            mark,
            f"{source!r} cannot be imported ({type(exc).__name__}: {exc}); check the dotted "
            "name and that its package is importable",
        )
        return None


def _check_args(
    owner: str,
    signature: Any,
    declared: frozenset[str] | None,
    args: MutableMapping[str, Any],
    problems: _Problems,
    *,
    only: str | None = None,
) -> None:
    names: tuple[str, ...] = tuple(signature.names)
    defaults: Mapping[str, Any] = signature.defaults
    for name, raw in args.items():
        if only is not None and name != only:
            continue
        if name not in names:
            extra = signature.var_keyword
            if extra is None:
                problems.add(
                    _key_mark(args, name),
                    f"{owner} has no arg {name!r}; valid args are {', '.join(names) or 'none'}, "
                    "so remove it or fix its name",
                )
            elif name == extra:
                if not isinstance(to_plain(args[name]), dict):
                    problems.add(
                        _value_mark(args, name),
                        f"arg {name!r} of {owner} holds its **{extra} keyword args, so it must "
                        f"be a mapping such as {{momentum: 0.9}}",
                    )
            else:
                # Its **kwargs are recorded under their own name: a key beside
                # them would be dropped silently on the rerun.
                problems.add(
                    _key_mark(args, name),
                    f"{owner} has no arg {name!r}; its other keyword args go under "
                    f"{extra!r} (its **{extra}), so write it as {extra}: {{{name}: ...}}",
                )
            continue
        if declared is not None and name not in declared:
            problems.add(
                _key_mark(args, name),
                f"{name!r} is an input of {owner}, not a parameter (see params= of its "
                "@step); remove it from the config",
            )
            continue
        default = defaults.get(name, _NoDefault.NO_DEFAULT)
        fits = _FITS.get(type(default))
        value = to_plain(raw)
        if fits is None or value is None or type(value) in fits:
            continue
        kind = _KIND_NAMES[type(default)]
        hint = ""
        if type(value) is str:
            with contextlib.suppress(ConfigError):
                hint = " without quotes" if type(parse_value(value)) in fits else ""
        problems.add(
            _value_mark(args, name),
            f"arg {name!r} of {owner} is {_shown(value)}, but its default {default!r:.40} is "
            f"{kind}; write {kind}{hint}",
        )
