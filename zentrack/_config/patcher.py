"""The byte patcher: save an edited config by rewriting only what changed.

Comments, spacing, quoting, anchors, line ends and number spellings of
everything else stay byte-identical, so no untouched value can read
differently afterwards, to a YAML 1.1 reader or a 1.2 one.  A value edited
in place is replaced where it stands, in the style the old one had (its
quotes, a block scalar's ``|``, flow or block) and keeps the comments around
it.  A mapping that gained, lost or reordered keys, or a list that grew or
shrank, has just those entries written, cut or moved (a moved entry takes
the comment lines above it along), in its own style: whole lines at its
indentation and dash offset in block style, items joined by ``", "`` in
flow style.  A value that changed kind (a list become a mapping) is
rewritten as one value: the comments on its key's line and above its first
item stay, those on its old items' lines go with them.  An edited or
deleted anchored value hands its anchor to the first alias still repeating
the old value.  Each inserted line ends as the line it follows does.

There is no fallback to rewriting more than the edit: what cannot be done
this way raises :class:`Unpatchable`, and the save is refused naming the
edit and why.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    ScalarString,
    SingleQuotedScalarString,
)

from zentrack._config.anchors import Anchors
from zentrack._config.edits import Chunk, Edit, render
from zentrack._config.spans import Spans, Unpatchable, after_anchor, empty, line_after, line_start
from zentrack._config.spelling import (
    STRING_STYLES,
    block_lines,
    dump,
    inline,
    new_yaml,
    styled,
)
from zentrack._config.yaml_io import guess_indent, same_ordered, to_plain

_BARE_LF: Final = re.compile(r"(?<!\r)\n")

#: What may follow the last entry of a flow collection on its own line.
_LINE_REST: Final = re.compile(r"[ \t]*,?[ \t]*(#.*)?\r?\n")



@attrs.frozen
class Patched:
    """A patched text, and what the read-back check needs to judge it."""

    text: str
    #: Spans of the old text whose comments went with the entries or items cut there.
    droppable: list[tuple[int, int]]
    #: Each edit's span of the old text and the value it edits.
    edits: list[tuple[int, int, str]]

    def edit_at(self, index: int) -> str:
        """The value whose edit covers ``index`` of the old text (the first edit's if none)."""
        for start, end, path in self.edits:
            if start <= index < end:
                return path
        return self.edits[0][2] if self.edits else ""



def patched(text: str, root: Node, was: Any, now: Any, raw: Any) -> Patched:
    """The original text with only what changed rewritten.

    Args:
        text: the text as loaded or last saved.
        root: its node tree (:func:`zentrack._config.validate.parse`).
        was: its data as plain values.
        now: the data as plain values now.
        raw: the data as ruamel holds it (which knows assigned strings' quotes).

    Raises:
        Unpatchable: an edit cannot be made without rewriting more than it.
    """
    patch = _Patch(text, root)
    patch.walk(root, was, now, raw, None, 0, "")
    patch.anchors.hand_over(patch, patch.chunks, patch.edits)
    spans = [(edit.start, edit.end, edit.path) for edit in patch.edits]
    return Patched(patch.result(), patch.droppable, spans)



def _child(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)



def _fresh(value: Any) -> Any:
    """A value to dump anew: ruamel containers keep their flow or block style, plain
    containers get :func:`styled`'s, quoted strings their quotes, and nothing its
    anchor, comments or (for numbers) spelling."""
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
    if isinstance(value, (SingleQuotedScalarString, DoubleQuotedScalarString)):
        return type(value)(str(value))
    return to_plain(value)



class _Patch(Spans):
    """The edits that turn a config's text into its edited data, and nothing more.

    The node tree of the text is walked beside the data as it was loaded
    (``was``), as it is now (``now``) and as ruamel holds it (``raw``).
    """

    def __init__(self, text: str, root: Node) -> None:
        super().__init__(text)
        self.root = root
        self.edits: list[Edit] = []
        self.droppable: list[tuple[int, int]] = []
        self._indent: tuple[int, int, int] | None = None
        self.anchors = Anchors(root)
        self.chunks: list[Chunk] = []  # entries moved elsewhere

    # ------------------------------------------------------------------ text out

    def add(self, start: int, end: int, new: str, depth: int, path: str) -> Edit:
        """Record an edit; line breaks in ``new`` end as the line at ``start`` does."""
        if "\n" in new:
            ending = self.ending(start)
            if ending != "\n":
                new = _BARE_LF.sub(ending, new)
        edit = Edit(start, end, -depth, new, path)
        self.edits.append(edit)
        return edit

    def result(self) -> str:
        text = render(self.text, self.edits, 0, len(self.text))
        if not self.text.endswith("\n") and text.endswith("\n"):  # the last line was cut
            text = text.removesuffix("\n").removesuffix("\r")  # its break before goes too
        return text

    # ------------------------------------------------------------------ walking

    def walk(
        self, node: Node, was: Any, now: Any, raw: Any, key: Node | None, depth: int, path: str
    ) -> None:
        """Edit ``node`` (the value of ``key``, or an item) from ``was`` into ``now``."""
        if same_ordered(was, now):
            return
        if isinstance(node, MappingNode) and type(was) is dict and type(now) is dict:
            names = [key_node.value for key_node, _ in node.value]
            if names != list(was):
                raise Unpatchable(node.start_mark.index, path, "its keys are not those read")
            if list(now) != names:
                self.mapping(node, was, now, raw, key, depth, path)
                return
            for (key_node, value_node), name in zip(node.value, names, strict=True):
                child = _child(path, name)
                self.walk(value_node, was[name], now[name], raw[name], key_node, depth + 1, child)
            return
        if isinstance(node, SequenceNode) and type(was) is list and type(now) is list:
            if len(was) != len(now):
                self.sequence(node, was, now, raw, key, depth, path)
                return
            for i, item in enumerate(node.value):
                self.walk(item, was[i], now[i], raw[i], None, depth + 1, f"{path}[{i}]")
            return
        self.replace(node, raw, key, depth, path)

    def mapping(
        self, node: MappingNode, was: Any, now: Any, raw: Any, key: Node | None, depth: int,
        path: str,
    ) -> None:  # fmt: skip
        """A mapping that gained, lost or reordered keys: cut, write and move whole entries."""
        names, order = list(was), list(now)
        kept = [name for name in names if name in now]
        if not kept:  # every entry goes: the mapping is a new one
            self.replace(node, raw, key, depth, path)
            return
        flow = bool(node.flow_style)
        spans = [(self.entry_start(k), self.entry_end(k, v)) for k, v in node.value]
        stay = _unmoved(kept, [name for name in order if name in was])
        index = {name: i for i, name in enumerate(names)}
        moved: dict[int, Chunk] = {}
        for (key_node, value_node), name in zip(node.value, names, strict=True):
            if name not in now:
                continue
            child = _child(path, name)
            mark = len(self.edits)
            self.walk(value_node, was[name], now[name], raw[name], key_node, depth + 1, child)
            if name not in stay:  # its edits go into the text written where it moves
                inner = self.edits[mark:]
                del self.edits[mark:]
                moved[index[name]] = self.mover(spans, index[name], inner, flow, child)
        gone = [i for i, name in enumerate(names) if name not in now]
        for i in gone:
            self.anchors.forget(node.value[i][0])
            self.anchors.forget(node.value[i][1])
        self.delete(spans, gone, set(moved), flow, depth, path)
        column = self.column(spans[0][0])
        groups: dict[int | None, list[str | Chunk]] = {}
        previous: int | None = None
        for name in order:
            if name in stay:
                previous = index[name]
                continue
            text: str | Chunk
            if name in was:
                text = moved[index[name]]
            elif flow:
                text = f"{inline(name)}: {inline(raw[name])}"
            else:
                entry = CommentedMap([(name, _fresh(raw[name]))])
                text = self.indented(self.block(entry), column, path)
            groups.setdefault(previous, []).append(text)
        first = min(index[name] for name in stay)
        for after, texts in groups.items():
            self.insert(spans, after, first, texts, flow, column, depth, path)

    def mover(
        self, spans: list[tuple[int, int]], i: int, inner: list[Edit], flow: bool, path: str
    ) -> Chunk:
        """Entry ``i`` (with its edits, and the comments above it), to write where it moves."""
        start, end = spans[i]
        if not flow:
            if self.text[line_start(self.text, start) : start].strip():
                raise Unpatchable(start, path, "an entry that follows a dash cannot be moved")
            start, end = self.chunk_start(spans, i), line_after(self.text, end)
        chunk = Chunk(start, end, inner, flow)
        self.chunks.append(chunk)
        return chunk

    def written(self, chunk: Chunk) -> str:
        """A moved entry's text, with the edits inside it."""
        text = render(self.text, chunk.inner, chunk.start, chunk.end)
        if not chunk.flow and not text.endswith("\n"):  # the file's last line
            text += self.ending(chunk.end)
        return text

    def sequence(
        self, node: SequenceNode, was: Any, now: Any, raw: Any, key: Node | None, depth: int,
        path: str,
    ) -> None:  # fmt: skip
        """A list that grew or shrank: keep its common head and tail, edit the middle."""
        old, new = len(was), len(now)
        if not old or not new:  # [] in or out: a new list
            self.replace(node, raw, key, depth, path)
            return
        head = 0
        while head < min(old, new) and same_ordered(was[head], now[head]):
            head += 1
        tail = 0
        while tail < min(old, new) - head and same_ordered(was[-1 - tail], now[-1 - tail]):
            tail += 1
        paired = min(old, new) - tail  # items head..paired-1 are edited in place
        flow = bool(node.flow_style)
        items = node.value
        spans = [self.item_span(item, flow, path) for item in items]
        for i in range(head, paired):
            self.walk(items[i], was[i], now[i], raw[i], None, depth + 1, f"{path}[{i}]")
        gone = list(range(paired, old - tail))
        for i in gone:
            self.anchors.forget(items[i])
        self.delete(spans, gone, set(), flow, depth, path)
        if paired < new - tail:
            mapping, sequence, _ = self.indent
            first = items[0].start_mark.index
            gap = first - spans[0][0]  # "- 1" or "-   1", as this list has it
            if "\n" not in self.text[spans[0][0] : first] and gap > 1 and not empty(items[0]):
                sequence = gap
            column = self.column(spans[0][0])
            texts: list[str | Chunk] = []
            for j in range(paired, new - tail):
                if flow:
                    texts.append(inline(raw[j]))
                else:
                    seq = CommentedSeq([_fresh(raw[j])])
                    lines = self.block(CommentedMap([("k", seq)]), (mapping, sequence, 0))[1:]
                    texts.append(self.indented(lines, column, path))
            after = paired - 1 if paired else None
            self.insert(spans, after, old - tail, texts, flow, column, depth, path)

    # ------------------------------------------------------------------ text edits

    def delete(
        self, spans: list[tuple[int, int]], gone: list[int], moving: set[int], flow: bool,
        depth: int, path: str,
    ) -> None:  # fmt: skip
        """Cut out entries, each run of neighbours at once, with their separators.

        Comments on the lines of ``gone`` entries go with them; ``moving``
        entries take theirs to where :meth:`insert` writes them.
        """
        text, count = self.text, len(spans)
        runs: list[tuple[int, int]] = []
        for i in sorted([*gone, *moving]):
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], i + 1)
            else:
                runs.append((i, i + 1))
        for first, stop in runs:
            start = spans[first][0]
            if flow:
                cut = self.flow_cut(spans, first, stop)
                self.add(*cut, "", depth, path)
                if not moving.intersection(range(first, stop)):
                    self.droppable.append(cut)
                else:
                    self.droppable += [spans[i] for i in range(first, stop) if i not in moving]
            elif not text[line_start(text, start) : start].strip():  # whole lines
                for i in range(first, stop):
                    begin = spans[i][0]
                    begin = self.chunk_start(spans, i) if i in moving else line_start(text, begin)
                    end = line_after(text, spans[i][1])
                    self.add(begin, end, "", depth, path)
                    if i not in moving:
                        self.droppable.append((begin, end))
            elif stop < count and first not in moving:  # "- a: 1\n  b: 2" -> "- b: 2"
                self.add(start, spans[stop][0], "", depth, path)
                self.droppable.append((start, spans[stop][0]))
            else:
                raise Unpatchable(start, path, "cutting the entry after its dash leaves the dash")

    def flow_cut(self, spans: list[tuple[int, int]], first: int, stop: int) -> tuple[int, int]:
        """What to cut for flow entries ``first..stop-1``, with one separator."""
        text = self.text
        start, end = spans[first][0], spans[stop - 1][1]
        if stop < len(spans):  # "a, " up to the next entry
            return start, spans[stop][0]
        line = line_start(text, start)
        rest = line_after(text, end)
        if not text[line:start].strip() and _LINE_REST.fullmatch(text, end, rest):
            return line, rest  # the last entries' own lines, their comments with them
        return spans[first - 1][1], end  # ", a" after the entry before

    def insert(
        self, spans: list[tuple[int, int]], after: int | None, before: int,
        texts: list[str | Chunk], flow: bool, column: int, depth: int, path: str,
    ) -> None:  # fmt: skip
        """Write entries after entry ``after`` (None: before entry ``before``).

        A text is new (its lines end as the line it follows does) or a moved
        entry (which keeps its own line ends).
        """
        text = self.text
        if flow:
            at = spans[after][1] if after is not None else spans[before][0]
            pattern = ", {}" if after is not None else "{}, "
        elif after is not None:
            at = line_after(text, spans[after][1])
        else:
            at = spans[before][0]
            line = line_start(text, at)
            if text[line:at].strip():  # the entry follows a dash: "- a: 1"
                if not all(isinstance(item, str) for item in texts):
                    raise Unpatchable(at, path, "an entry cannot be moved before one after a dash")
                lines = "".join(str(item) for item in texts)
                self.add(at, at, lines[column:] + " " * column, depth, path)
                return
            at = self.chunk_start(spans, before)
        ending = self.ending(at)
        for seq, item in enumerate(texts):
            if isinstance(item, Chunk):
                item.at, item.seq = at, seq

        def new() -> str:
            items = [
                item if not isinstance(item, str) else _BARE_LF.sub(ending, item) for item in texts
            ]
            written = [self.written(item) if isinstance(item, Chunk) else item for item in items]
            if flow:
                return "".join(pattern.format(item) for item in written)
            lines = "".join(written)
            if at == len(text) and not text.endswith("\n"):  # after a last line without a break
                lines = ending + lines[: -len(ending)]
            return lines

        self.edits.append(Edit(at, at, -depth, new, path))

    def replace(self, node: Node, raw: Any, key: Node | None, depth: int, path: str) -> None:
        """Replace one whole value, in the style the old one had."""
        self.anchors.forget(node)
        text = self.text
        if empty(node):
            colon = self.colon(key) if key is not None else self.dash(node, path) + 1
            if colon is None:  # "{a, b}": a key without ":"
                bare = int(key.end_mark.index) if key is not None else 0
                self.add(bare, bare, ": " + inline(raw), depth, path)
            else:
                self.add(colon, colon, " " + inline(raw), depth, path)
            return
        if isinstance(node, ScalarNode):
            self.scalar(node, raw, depth, path)
            return
        end = self.end(node, path)
        if getattr(node, "flow_style", False):
            self.add(node.start_mark.index, end, inline(raw), depth, path)
            self.droppable.append((node.start_mark.index, end))
            return
        # a block collection: keep the comments after its key and above its first entry
        first = self.content_start(node, path)
        line = line_start(text, first)
        own_line = not text[line:first].strip()
        stop = self.eol(end)
        at = self.colon(key) if key is not None else self.dash(node, path) + 1
        if at is None:
            raise Unpatchable(node.start_mark.index, path, "its key has no ':' after it")
        props = after_anchor(text, node) if node.anchor is not None else at
        fresh = _fresh(raw)
        self.droppable.append((line if own_line else first, stop))
        block = isinstance(fresh, (CommentedMap, CommentedSeq)) and len(fresh) > 0
        if key is not None and own_line and block:
            fresh.fa.set_block_style()  # a block value stays block
            lines = self.block(CommentedMap([("k", fresh)]))[1:]
            if isinstance(fresh, CommentedMap) == isinstance(node, MappingNode):
                column = self.column(first)  # where the old entries were
            else:  # where a fresh dump puts it under its key ("k:\n- 1" but "k:\n  a: 1")
                shift = len(lines[0]) - len(lines[0].lstrip(" "))
                column = self.column(self.entry_start(key)) + shift
            cut = line - len(self.ending(line))  # the break before the first entry's line
            new = "\n" + self.indented(lines, column, path).removesuffix("\n")
            self.add(cut, stop, new, depth, path)
            return
        kept = text[props:line].rstrip() if own_line else ""
        self.add(at, stop, " " + inline(raw) + kept, depth, path)

    def scalar(self, node: ScalarNode, raw: Any, depth: int, path: str) -> None:
        """Replace a scalar's text (after its anchor), in its quotes or block style."""
        text = self.text
        start = self.value_start(node, path)
        end = self.end(node, path)
        kept = STRING_STYLES.get(type(raw)) if isinstance(raw, ScalarString) else node.style
        if node.style in ("|", ">"):
            header = start + 1
            while header < len(text) and text[header] in "+-0123456789":
                header += 1
            eol = self.eol(header)
            rest = text[header:eol] if "#" in text[header:eol] else ""  # the header's comment
            new = None
            if isinstance(raw, str) and kept in ("|", ">"):
                new = self.block_scalar(node, str(raw), str(kept), rest, eol)
            edit = self.add(start, max(end, eol), new or inline(raw) + rest, depth, path)
        else:
            edit = self.add(start, end, inline(raw, kept), depth, path)
        self.anchors.replace(node, edit)

    def block_scalar(
        self, node: ScalarNode, value: str, style: str, rest: str, eol: int
    ) -> str | None:
        """A string as a block scalar at the old one's indentation, or None if it cannot be."""
        found = block_lines(value, style)
        if found is None:
            return None
        header, lines = found
        column = None
        for line in self.text[line_after(self.text, eol) : node.end_mark.index].splitlines():
            if line.strip():
                column = len(line) - len(line.lstrip(" "))
                break
        if column is None:  # no line yet: indent from the header's line
            header_line = self.text[line_start(self.text, eol) : eol]
            column = len(header_line) - len(header_line.lstrip(" ")) + self.indent[0]
        body = "".join("\n" + (" " * column + line if line else "") for line in lines)
        return header + rest + body

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
    def indented(lines: list[str], column: int, path: str) -> str:
        """Lines moved right or left together, so that the first starts at ``column``."""
        shift = len(lines[0]) - len(lines[0].lstrip(" ")) if lines else 0
        if any(line[:shift].strip() for line in lines):
            raise Unpatchable(0, path, "its lines do not fit the indentation there")
        return "".join(" " * column + line[shift:] for line in lines)



def _unmoved(old: list[Any], new: list[Any]) -> set[Any]:
    """The most keys that keep their order from ``old`` to ``new``; the others move.

    Of equally many, those that end earliest in ``new`` stay, so a key moved
    to the end (``args[k] = args.pop(k)``) is the one written elsewhere.
    """
    position = {name: i for i, name in enumerate(new)}
    ranks = [position[name] for name in old]
    best: list[list[Any]] = []  # best[i]: the longest run in order ending at old[i]
    for i, rank in enumerate(ranks):
        run: list[Any] = []
        for j in range(i):
            if ranks[j] < rank and len(best[j]) > len(run):
                run = best[j]
        best.append([*run, old[i]])
    if not best:
        return set()
    longest = max(map(len, best))
    runs = [candidate for candidate in best if len(candidate) == longest]
    chosen: list[Any] = min(runs, key=lambda candidate: position[candidate[-1]])
    return set(chosen)
