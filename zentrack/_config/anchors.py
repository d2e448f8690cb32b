"""Anchors and aliases of single values, kept valid whatever an edit removes or moves.

An alias of a single value is its own node (:class:`AliasNode`), so an edit
of one place leaves the others.  When the anchored value is edited, deleted,
or moved after one of its aliases, the first alias left (in the new order)
takes the anchor and the old value: ``b: *x`` becomes ``b: &x 0.5``.
"""

from __future__ import annotations

import re
from typing import Final

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from zentrack._config.edits import Chunk, Edit
from zentrack._config.spans import Spans
from zentrack._config.spelling import inline
from zentrack._config.validate import AliasNode
from zentrack._config.yaml_io import STR_TAG

#: What a plain scalar copied into flow context could be cut short at.
_FLOW_UNSAFE: Final = re.compile(r"[,\[\]{}]|: | #")



def _aliases(root: Node) -> dict[int, tuple[ScalarNode, list[AliasNode]]]:
    """Each anchored single value's aliases, in the order they appear."""
    found: dict[int, tuple[ScalarNode, list[AliasNode]]] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, AliasNode):
            found.setdefault(id(node.alias_of), (node.alias_of, []))[1].append(node)
        elif isinstance(node, MappingNode):
            stack += reversed([item for pair in node.value for item in pair])
        elif isinstance(node, SequenceNode):
            stack += reversed(node.value)
    return found



class Anchors:
    """The anchored single values of a text, their aliases, and which an edit removes."""

    def __init__(self, root: Node) -> None:
        self.aliases = _aliases(root)
        self.gone: set[int] = set()  # anchored values and aliases an edit removes
        self.replaced: dict[int, Edit] = {}  # the edit of each replaced anchored value

    def forget(self, node: Node) -> None:
        """Note the anchored values and aliases inside ``node``, whose text an edit removes."""
        if not self.aliases:
            return
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, MappingNode):
                stack += [part for pair in item.value for part in pair]
            elif isinstance(item, SequenceNode):
                stack += item.value
            elif isinstance(item, AliasNode) or item.anchor is not None:
                self.gone.add(id(item))

    def replace(self, node: ScalarNode, edit: Edit) -> None:
        """Note the edit that replaces an anchored value (it may have to take the anchor)."""
        if node.anchor is not None:
            self.replaced[id(node)] = edit

    def hand_over(self, spans: Spans, chunks: list[Chunk], edits: list[Edit]) -> None:
        """Keep each anchor on the first place that still holds its old value.

        ``chunks`` are the entries moved elsewhere; ``edits`` those of the
        text outside them.  The alias that takes an anchor is written as
        ``&name old value``.
        """

        def position(node: Node) -> tuple[int, int, int, int]:  # sorts as the new text does
            index: int = node.start_mark.index
            moved = [chunk for chunk in chunks if chunk.start <= index < chunk.end]
            if not moved:
                return (index, 0, 0, 0)
            outer = max(moved, key=lambda chunk: chunk.end - chunk.start)
            return (outer.at, -1, outer.seq, index)

        def edits_at(index: int) -> list[Edit]:  # those of the moved entry there, if any
            moved = [chunk for chunk in chunks if chunk.start <= index < chunk.end]
            return min(moved, key=lambda chunk: chunk.end - chunk.start).inner if moved else edits

        for anchored, aliases in self.aliases.values():
            left = [node for node in (anchored, *aliases) if id(node) not in self.gone]
            if not left:
                continue
            first = min(left, key=position)
            if first is anchored:
                continue
            name = f"&{anchored.anchor}"
            start = anchored.start_mark.index
            if id(anchored) not in self.gone:  # it stays, after an alias: without its anchor
                edits_at(start).append(Edit(start, spans.value_start(anchored, name), 0, "", name))
            elif id(anchored) in self.replaced:  # its new value goes without the anchor
                self.replaced[id(anchored)].start = start
            at, end = first.start_mark.index, first.end_mark.index
            new = f"{name} {self._old_text(spans, anchored)}"
            edits_at(at).append(Edit(at, end, 0, new, name))

    @staticmethod
    def _old_text(spans: Spans, node: ScalarNode) -> str:
        """An anchored value's text, as it can be written at one of its aliases."""
        old = spans.text[spans.value_start(node, "") : spans.end(node, "")]
        if node.tag == STR_TAG and (
            node.style in ("|", ">")
            or "\n" in old
            or (node.style is None and _FLOW_UNSAFE.search(old))
        ):
            return inline(str(node.value))
        return old
