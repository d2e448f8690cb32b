"""Loading a config's text safely: its tags, its shape, and values YAML readers disagree on.

A run's config is what its rerun trusts, so loading is strict wherever a
silent surprise would cost a run:

* Values are plain YAML 1.2 (ruamel.yaml's round-trip loader): ``null``,
  bools, ints, floats, strings, lists and string-keyed mappings, which are the
  tracked types.  Every node is checked *before* anything is constructed: an
  explicit tag (``!!python/object/apply:...``, ``!!binary``, ``!!set``,
  ``!custom``, even ``!!str``) is refused, so loading never builds an arbitrary
  Python object.  An unquoted date (``2020-01-01``) is refused with the fix
  "quote it": dates are not tracked, and keeping them as strings silently
  would change their type between a run and its rerun.
* An anchor may name a single value (``lr: &lr 0.01`` then ``lr: *lr``).  An
  alias of a list or mapping, and a merge key (``<<``), are refused: an edit
  through one place would silently change the other, and aliased containers
  are how a small file expands to billions of values.  Each alias of a
  single value is composed as its own node (an :class:`AliasNode`, with the
  marks of its ``*name``), so a save can edit one place and not the other.
* A float too large or too small for a float (``2e400``, ``1e-400``), an int
  with more digits than Python reads (4300 by default), a plain key or value
  in a flow collection that ends in ``:`` (``{b, c:, }``: ruamel reads the
  key ``c:``, YAML 1.1 readers ``c``), and a ``#`` comment in a single value
  are refused rather than read as something other than what was typed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import attrs
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    DocumentStartEvent,
)
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from zentrack._config.spelling import int_digits_limit, new_yaml, too_many_digits
from zentrack._config.yaml_io import (
    DOC_LEVELS,
    FLOAT_TAG,
    MAX_DEPTH,
    SCALAR_TAGS,
    STR_TAG,
    TAG,
    TOO_DEEP,
    Mark,
    Problems,
    config_error,
    key_mark,
    node_mark,
    plain_document,
    same_ordered,
    shown,
    syntax_error,
    to_plain,
    value_mark,
)
from zentrack._step.values import TRACKED_TYPES_TEXT
from zentrack.exceptions import ConfigError

PIPELINE_KEYS: Final = ("source", "run_id", "args")

_INT_TAG: Final = TAG + "int"

_INT_BASES: Final = {"0x": 16, "0o": 8, "0b": 2}

_STEP_KEYS: Final = ("args", "source")

_TOP_KEYS: Final = ("pipeline", "steps")



def _explicit_tag_problem(handle: str | None, suffix: str) -> str:
    """Why an explicit tag is refused: a config holds plain values only."""
    shown = f"{handle}{suffix}" if handle else f"!<{suffix}>" if suffix != "!" else "!"
    name = suffix.removeprefix(TAG) if handle in ("!!", None) else f"{handle}{suffix}"
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



class AliasNode(ScalarNode):
    """An alias (``*name``) of a single value: the anchored node's value at the alias's marks."""

    __slots__ = ("alias_of",)

    def __init__(self, anchored: ScalarNode, start_mark: Any, end_mark: Any) -> None:
        super().__init__(anchored.tag, anchored.value, start_mark, end_mark, style=anchored.style)
        self.alias_of = anchored



class _Composer(Composer):
    """ruamel's composer, with each alias of a single value as its own :class:`AliasNode`.

    An alias of a list or mapping stays the anchored node itself, which
    :func:`_check_nodes` recognises (by identity) and refuses.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            anchored = self.anchors.get(event.anchor)
            if isinstance(anchored, ScalarNode):
                self.parser.get_event()
                return AliasNode(anchored, event.start_mark, event.end_mark)
        return super().compose_node(parent, index)



def _scan_events(text: str, problems: Problems) -> tuple[bool, bool]:
    """Refuse every explicit tag; return whether ``---`` and ``...`` mark the document.

    Tags are looked for in the parser's events, where each one written in the
    text shows, verbatim (``!<tag:...>``) and non-specific (``!``) ones too.
    """
    start = end = False
    depth = 0
    for event in new_yaml().parse(text):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH + DOC_LEVELS + 1:  # stop early: ruamel slows quadratically
                mark = (event.start_mark.line, event.start_mark.column)
                problems.add(mark, TOO_DEEP)
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
        if tag == TAG + "timestamp":
            return (
                f"{node.value} reads as a date or time, which is not a tracked type; quote it "
                f"('{node.value}') to keep it as a string"
            )
        if tag not in SCALAR_TAGS:
            return (
                f"{node.value!r} reads as a YAML {tag.rsplit(':', 1)[-1]}, which is not a "
                "tracked type; quote it to keep it as a string"
            )
    elif tag not in (TAG + "map", TAG + "seq"):
        return _explicit_tag_problem(None, tag)
    return None



def _int_problem(node: ScalarNode) -> str | None:
    """Why an int is refused: it has more digits than Python (so any Python reader) reads."""
    limit = int_digits_limit()
    text = str(node.value).lower().lstrip("+-").replace("_", "")
    base = _INT_BASES.get(text[:2])
    if base is not None:  # Python reads these in any length, but cannot print them
        try:
            long = too_many_digits(int(text[2:], base))
        except ValueError:
            return None
        digits = "more"
    else:
        long = bool(limit) and len(text) > limit
        digits = str(len(text))
    if not long:
        return None
    return (
        f"the int {text[:12]}... has {digits} digits, more than the {limit} that Python and "
        "so YAML readers read; quote it to keep it as a string, or shorten it"
    )



def _flow_colon_problem(node: ScalarNode) -> str | None:
    """Why a plain scalar ending in ``:`` in a flow collection is refused: readers disagree."""
    text = str(node.value)
    if node.style is not None or not text.endswith(":"):
        return None
    bare = text.rstrip(":")
    return (
        f"{text} is read as {text!r} by ruamel.yaml but as {bare!r} by YAML 1.1 readers; "
        f"write `{bare}: null` for a key without a value, or quote it ('{text}')"
    )



def _check_nodes(root: Node, problems: Problems) -> None:
    """Check every node for tracked values before anything is constructed."""
    seen: set[int] = set()

    def visit(node: Node, depth: int, where: Mark, flow: bool) -> None:
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
        mark = node_mark(node)
        if depth > MAX_DEPTH + DOC_LEVELS and not isinstance(node, ScalarNode):
            problems.add(mark, TOO_DEEP)
            return
        problem = _tag_problem(node)
        if problem is None and isinstance(node, ScalarNode):
            if node.tag == _INT_TAG:
                problem = _int_problem(node)
            elif flow:
                problem = _flow_colon_problem(node)
        if problem is not None:
            problems.add(mark, problem)
            return
        inner = flow or bool(getattr(node, "flow_style", False))
        if isinstance(node, MappingNode):
            keys: dict[str, Mark] = {}
            for key_node, value_node in node.value:
                key_mark = node_mark(key_node)
                if key_node.tag == TAG + "merge":
                    problems.add(
                        key_mark, "merge keys ('<<') are not supported; write the keys out"
                    )
                    continue
                key_problem = _tag_problem(key_node)
                if key_problem is None and inner and isinstance(key_node, ScalarNode):
                    key_problem = _flow_colon_problem(key_node)
                if key_problem is not None:
                    problems.add(key_mark, key_problem)
                elif not isinstance(key_node, ScalarNode) or key_node.tag != STR_TAG:
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
                visit(value_node, depth + 1, key_mark, inner)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                visit(item, depth + 1, mark, inner)

    visit(root, 0, node_mark(root), False)



@attrs.frozen
class Parsed:
    """A checked document: its node tree, its data and what saving must respect."""

    root: Node | None
    data: Any
    start: bool  # the document opens with an explicit '---'
    end: bool  # ... and closes with '...'



def parse(text: str, label: str) -> Parsed:
    """Check the text's events and node tree, then construct its data from that tree.

    Nothing is constructed before every node is known to be a plain value.
    """
    problems = Problems(label)
    yaml = new_yaml()
    yaml.Composer = _Composer
    try:
        start, end = _scan_events(text, problems)
        problems.raise_if_any()
        root = yaml.compose(text)
    except YAMLError as exc:
        raise syntax_error(label, text, exc) from exc
    except RecursionError as exc:
        message = "values are nested too deeply to read; flatten them"
        raise config_error(label, (0, 0), message) from exc
    if root is None:
        return Parsed(None, None, start, end)
    _check_nodes(root, problems)
    problems.raise_if_any()
    try:
        data = yaml.constructor.construct_document(root)
    except YAMLError as exc:
        raise syntax_error(label, text, exc) from exc
    return Parsed(root, data, start, end)



def _check_source(mapping: Any, owner: str, problems: Problems, what: str, missing: Mark) -> None:
    if "source" not in mapping:
        problems.add(
            missing, f"{owner} has no 'source'; add `source: package.module.Name` naming {what}"
        )
        return
    source = mapping["source"]
    if not isinstance(source, str) or not source.strip():
        problems.add(
            value_mark(mapping, "source"),
            f"the source of {owner} must be a dotted name like 'package.module.Name' "
            f"(got {shown(source)}); write the import path of {what}",
        )



def check_shape(data: Any, root: Node, problems: Problems) -> None:
    """Check the config's layout: pipeline source and args, steps with source and args."""
    if not isinstance(data, CommentedMap):
        problems.add(
            node_mark(root),
            f"the top level is {shown(data).split(' that is ')[-1]}, not a mapping; a config "
            "is a mapping with 'pipeline' and 'steps'",
        )
        problems.raise_if_any()
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(
                key_mark(data, key),
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
            value_mark(data, "pipeline"),
            f"'pipeline' must be a mapping with a 'source' (got {shown(data['pipeline'])}); "
            f"add `source: package.module.function` naming {pipeline_what}",
        )
    else:
        pipeline = data["pipeline"]
        _check_source(pipeline, "'pipeline'", problems, pipeline_what, key_mark(data, "pipeline"))
        run_id = pipeline.get("run_id")
        if run_id is not None and not isinstance(run_id, str):
            problems.add(
                value_mark(pipeline, "run_id"),
                f"'pipeline.run_id' must be a string or null (got {shown(run_id)}); quote it",
            )
        if "args" in pipeline and not isinstance(pipeline["args"], CommentedMap):
            problems.add(
                value_mark(pipeline, "args"),
                f"'pipeline.args' must be a mapping of argument names to values (got "
                f"{shown(pipeline['args'])}); write `args: {{}}` for none",
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
            value_mark(data, "steps"),
            f"'steps' must be a mapping of step keys to their source and args (got "
            f"{shown(steps)}); write `steps: {{}}` for none",
        )
        return
    for key, entry in steps.items():
        owner = f"step {key!r}"
        if not key:
            problems.add(key_mark(steps, key), "a step key is empty; write the step's name")
        if not isinstance(entry, CommentedMap):
            problems.add(
                value_mark(steps, key),
                f"{owner} must be a mapping with 'source' and 'args' (got {shown(entry)}); "
                "write them under the step key",
            )
            continue
        for name in entry:
            if name not in _STEP_KEYS:
                problems.add(
                    key_mark(entry, name),
                    f"unknown key {name!r} in {owner}; a step has only 'source' and 'args', "
                    "so remove it or fix its name",
                )
        _check_source(
            entry,
            owner,
            problems,
            "the function or class decorated with @zentrack.step",
            key_mark(steps, key),
        )
        if "args" not in entry:
            problems.add(
                key_mark(steps, key),
                f"{owner} has no 'args'; add `args:` with its parameters (`args: {{}}` for none)",
            )
        elif not isinstance(entry["args"], CommentedMap):
            problems.add(
                value_mark(entry, "args"),
                f"the args of {owner} must be a mapping of parameter names to values (got "
                f"{shown(entry['args'])}); write `args: {{}}` for none",
            )



def loads_as(text: str, plain: Any) -> bool:
    """Whether ``text`` loads as ``plain``, key order included."""
    try:
        return same_ordered(plain_document(parse(text, "<written>").data), plain)
    except ConfigError:
        return False



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
    parsed = parse(text, label)
    problems = Problems(label)
    quoted = json.dumps(text) if "\n" in text else "'" + text.replace("'", "''") + "'"
    for token in new_yaml().scan(text):
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
        check_float_range(parsed.root, problems)
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



def check_float_range(root: Node, problems: Problems) -> None:
    """Refuse floats written as finite non-zero numbers that a float cannot hold."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            stack += [item for pair in node.value for item in pair]
        elif isinstance(node, SequenceNode):
            stack += node.value
        elif node.tag == FLOAT_TAG and getattr(node, "style", None) is None:
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
                node_mark(node),
                f"{written} is out of a float's range and would be read as {read}; {fix}, or "
                f"quote it ('{written}') to keep it as a string",
            )
