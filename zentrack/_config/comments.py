"""Where a config's comments are, so that a save can show it kept every one.

A ``#`` starts a comment at the start of a line or after white space,
outside every scalar (a quoted string, a block scalar's lines or a plain
value may hold a ``#`` that is text).  ruamel attaches comments to tokens in
ways that depend on where they sit, so they are found in the text, with the
node tree saying where the scalars are.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterator
from typing import Final

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from zentrack._config.spans import after_anchor

#: A ``#`` that starts a comment unless it is inside a scalar.
_HASH: Final = re.compile(r"(?<![^ \t\r\n])#")

def _scalar_spans(text: str, root: Node | None) -> Iterator[tuple[int, int]]:
    """Where each scalar's own text is (a block scalar's from the line after its header)."""
    stack = [] if root is None else [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            stack += [item for pair in node.value for item in pair]
        elif isinstance(node, SequenceNode):
            stack += node.value
        elif isinstance(node, ScalarNode) and node.end_mark.index > node.start_mark.index:
            start = after_anchor(text, node)
            if node.style in ("|", ">"):  # its header may end in a comment
                found = text.find("\n", start)
                start = len(text) if found < 0 else found + 1
            yield start, node.end_mark.index



def comments(text: str, root: Node | None) -> list[tuple[int, str]]:
    """Every comment in ``text`` (parsed as ``root``): where it starts, and its text."""
    spans = sorted(_scalar_spans(text, root))
    starts = [start for start, _ in spans]
    found: list[tuple[int, str]] = []
    line_end = -1
    for match in _HASH.finditer(text):
        at = match.start()
        if at < line_end:  # a '#' inside a comment
            continue
        i = bisect.bisect_right(starts, at) - 1
        if i >= 0 and at < spans[i][1]:
            continue
        stop = text.find("\n", at)
        line_end = len(text) if stop < 0 else stop
        found.append((at, text[at:line_end].rstrip()))
    return found



def unkept(
    old: list[tuple[int, str]], new: list[tuple[int, str]], droppable: list[tuple[int, int]]
) -> tuple[list[tuple[int, str]], list[str]]:
    """Comments of the old text missing from the new one, and comments the new one gained.

    A comment inside a ``droppable`` span of the old text (on the lines of
    an entry the edit removed) may go.  Comments are matched by their text,
    so one that moved with its entry is kept.
    """
    left = Counter(comment for _, comment in new)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(droppable):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    starts = [start for start, _ in merged]

    def may_go(at: int) -> bool:
        i = bisect.bisect_right(starts, at) - 1
        return i >= 0 and at < merged[i][1]

    kept = [(at, comment) for at, comment in old if not may_go(at)]
    dropped = [(at, comment) for at, comment in old if may_go(at)]
    missing = []
    for at, comment in kept:  # comments that must stay take the matches first
        if left[comment] > 0:
            left[comment] -= 1
        else:
            missing.append((at, comment))
    for _, comment in dropped:
        if left[comment] > 0:
            left[comment] -= 1
    return missing, sorted(comment for comment, count in left.items() if count > 0)
