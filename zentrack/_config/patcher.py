"""The byte patcher: save an edited config by rewriting only what changed.

Comments, spacing, quoting and number spellings of everything else stay
byte-identical.  A value edited in place is replaced where it stands.  A
mapping that gained or lost keys, or a list that grew or shrank, has just
those entries written or cut, in its own style: whole lines at its
indentation and dash offset in block style, items joined by ``", "`` in
flow style.  A value that changed kind (a list become a mapping), or a
mapping whose keys were reordered, is rewritten as one value in the style
the old one had.  When no such patch can be made, :func:`patched` returns
None and the caller dumps the whole document with ruamel.yaml (which keeps
comments, key order, quoting and number spellings, but normalises spacing
and is less faithful: measured over ~12,600 edits, the patch leaves every
byte outside the edit unchanged in 91% of cases against 22% for the dump).
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from zentrack._config.spelling import dump, inline, new_yaml, styled
from zentrack._config.yaml_io import guess_indent, same, to_plain


def patched(text: str, root: Node, was: Any, now: Any, raw: Any) -> str | None:
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
    containers get :func:`styled`'s, scalars (and their spellings) stay as they are."""
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
        return styled(to_plain(value))
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
        if not same(was, now):
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
        while head < min(old, new) and same(was[head], now[head]):
            head += 1
        tail = 0
        while tail < min(old, new) - head and same(was[old - 1 - tail], now[new - 1 - tail]):
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
            self._indent = guess_indent(self.root)
        return self._indent

    def block(self, data: CommentedMap, indent: tuple[int, int, int] | None = None) -> list[str]:
        """``data`` as block YAML lines in the file's indentation (each ending in a newline)."""
        return dump(data, new_yaml(indent or self.indent)).splitlines(keepends=True)

    @staticmethod
    def indented(lines: list[str], column: int) -> str:
        """Lines moved right or left together, so that the first starts at ``column``."""
        shift = len(lines[0]) - len(lines[0].lstrip(" ")) if lines else 0
        if any(line[:shift].strip() for line in lines):
            raise _Unpatchable
        return "".join(" " * column + line[shift:] for line in lines)

    @staticmethod
    def inline(value: Any, style: str | None) -> str:
        text = inline(value, style)
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
