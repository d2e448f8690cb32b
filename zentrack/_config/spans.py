"""Where a config's values, entries and lines are in its text.

ruamel's marks say where a node starts and where the parser went on after
it, which for a block collection or a block scalar runs on over comments
and blank lines, and for an empty value (``key:``) is wherever the parser
was.  :class:`Spans` turns them into the spans an edit needs: a value's own
text, an entry from its key (or the ``?`` of an explicit key) to its value's
end, an item from its dash, and the comment lines that go with an entry.
"""

from __future__ import annotations

from typing import Final

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

#: Characters that end an anchor's name.
ANCHOR_END: Final = frozenset(" \t\r\n,[]{}")



def after_anchor(text: str, node: Node) -> int:
    """Where a node's text goes on after its ``&name`` (its start if it has no anchor)."""
    index: int = node.start_mark.index
    if node.anchor is None or not text.startswith("&", index):
        return index
    index += 1
    while index < len(text) and text[index] not in ANCHOR_END:
        index += 1
    return index



class Unpatchable(Exception):
    """An edit that cannot be saved without changing more than it: the save is refused."""

    def __init__(self, index: int, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.index = index  # where in the old text
        self.path = path  # the edited value, as ``steps.t.args.lr``
        self.reason = reason



def empty(node: Node) -> bool:
    """Whether a node is an empty value (``key:``), whose marks are wherever the parser went on."""
    return isinstance(node, ScalarNode) and node.start_mark.index == node.end_mark.index



def line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1



def line_after(text: str, index: int) -> int:
    """Just past the line break ending the line that ``text[index - 1]`` is on."""
    if index > 0 and text[index - 1] == "\n":
        return index
    found = text.find("\n", index)
    return len(text) if found < 0 else found + 1



class Spans:
    """The spans of a text's nodes; raises :class:`Unpatchable` (naming ``path``) where
    the text is not as the nodes say."""

    def __init__(self, text: str) -> None:
        self.text = text

    def ending(self, index: int) -> str:
        """The line end of the line ``index`` is on (of the line before, at a line start)."""
        text = self.text
        found = text.find("\n", max(index - 1, 0))
        if found < 0:
            found = text.rfind("\n")
        return "\r\n" if found > 0 and text[found - 1] == "\r" else "\n"

    def column(self, index: int) -> int:
        return index - line_start(self.text, index)

    def eol(self, index: int) -> int:
        """Where the line break ending the line of ``index`` starts (``\\r\\n`` included)."""
        found = self.text.find("\n", index)
        if found < 0:
            return len(self.text)
        return found - 1 if found > index and self.text[found - 1] == "\r" else found

    def chunk_start(self, spans: list[tuple[int, int]], i: int) -> int:
        """The start of entry ``i``'s line, or of the comment lines right above it."""
        text = self.text
        line = line_start(text, spans[i][0])
        floor = line_after(text, spans[i - 1][1]) if i else 0
        while line > floor:
            above = line_start(text, line - 1)
            if not text[above:line].lstrip(" \t").startswith("#"):
                break
            line = above
        return line

    def colon(self, key: Node) -> int | None:
        """Just past the ``:`` after a mapping key; None if there is none (``{a, b}``)."""
        text = self.text
        index: int = key.end_mark.index
        while index < len(text):
            char = text[index]
            if char == ":":
                return index + 1
            if char == "#":
                index = line_after(text, index)
            elif char in " \t\r\n":
                index += 1
            else:
                return None
        return None

    def entry_start(self, key: Node) -> int:
        """Where a mapping entry starts: its key, or the ``?`` of an explicit key."""
        start: int = key.start_mark.index
        line = line_start(self.text, start)
        before = self.text[line:start].rstrip()
        return line + len(before) - 1 if before.endswith("?") else start

    def entry_end(self, key: Node, value: Node) -> int:
        if not empty(value):
            return self.end(value, "")
        colon = self.colon(key)
        return int(key.end_mark.index) if colon is None else colon

    def item_span(self, item: Node, flow: bool, path: str) -> tuple[int, int]:
        if flow:
            return item.start_mark.index, self.end(item, path)
        dash = self.dash(item, path)
        return dash, dash + 1 if empty(item) else self.end(item, path)

    def content_start(self, node: Node, path: str) -> int:
        """Where a block collection's first entry (or first item's dash) is."""
        first = node.value[0]
        if isinstance(node, MappingNode):
            return self.entry_start(first[0])
        return self.dash(first, path)

    def value_start(self, node: ScalarNode, path: str) -> int:
        """Where a scalar's value starts, after its anchor."""
        index = after_anchor(self.text, node)
        if node.anchor is None:
            return index
        while index < len(self.text) and self.text[index] in " \t":
            index += 1
        if index >= len(self.text) or self.text[index] in "\r\n#":
            raise Unpatchable(index, path, "the anchored value starts on the line after its anchor")
        return index

    def dash(self, item: Node, path: str) -> int:
        """Where the ``-`` of a block list item is (comments may stand between them)."""
        text = self.text
        index: int = item.start_mark.index - 1
        while index >= 0 and text[index] != "-":
            if text[index] not in " \t\r\n":  # only a comment can be here: go before it
                index = text.rfind("#", line_start(text, index), index + 1)
                if index < 0:
                    break
            index -= 1
        if index < 0:
            raise Unpatchable(item.start_mark.index, path, "the item's dash was not found")
        return index

    def end(self, node: Node, path: str) -> int:
        """Where a value's own text ends (a block collection's marks run on over comments)."""
        if isinstance(node, ScalarNode):
            start: int = node.start_mark.index
            end: int = node.end_mark.index
            if node.style in ("|", ">"):  # its marks run on over the trailing line breaks
                return start + len(self.text[start:end].rstrip())
            return end
        if getattr(node, "flow_style", False):
            return int(node.end_mark.index)
        if not node.value:
            raise Unpatchable(node.start_mark.index, path, "an empty block collection")
        if isinstance(node, MappingNode):
            return self.entry_end(*node.value[-1])
        last = node.value[-1]
        return self.dash(last, path) + 1 if empty(last) else self.end(last, path)
