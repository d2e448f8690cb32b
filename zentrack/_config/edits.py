"""Text edits: what replaces which span of a config's old text, and the text they make."""

from __future__ import annotations

from collections.abc import Callable

from zentrack._config.spans import Unpatchable


class Edit:
    """Replace ``text[start:end]`` by ``new``; at one position deeper edits come first.

    ``new`` may be a function, called when the text is rendered: an entry
    moved there is written once every edit inside it is known.
    """

    __slots__ = ("end", "new", "order", "path", "start")

    def __init__(
        self, start: int, end: int, order: int, new: str | Callable[[], str], path: str
    ) -> None:
        self.start, self.end, self.order, self.new, self.path = start, end, order, new, path

    def key(self) -> tuple[int, int, int]:
        return (self.start, self.end, self.order)



class Chunk:
    """An entry's text moved elsewhere: ``text[start:end]`` with the ``inner`` edits.

    ``at`` is where it is written (in the old text), ``seq`` its place among
    what is written there.
    """

    __slots__ = ("at", "end", "flow", "inner", "seq", "start")

    def __init__(self, start: int, end: int, inner: list[Edit], flow: bool) -> None:
        self.start, self.end, self.inner, self.flow = start, end, inner, flow
        self.at = self.seq = 0



def render(text: str, edits: list[Edit], start: int, end: int) -> str:
    """``text[start:end]`` with ``edits`` made (each must lie inside, none overlap)."""
    parts: list[str] = []
    position = start
    previous: tuple[int, int, int] | None = None
    for edit in sorted(edits, key=Edit.key):
        if edit.start < position or edit.end > end or previous == edit.key():
            raise Unpatchable(edit.start, edit.path, "it overlaps another edit of that text")
        new = edit.new if isinstance(edit.new, str) else edit.new()
        parts += [text[position : edit.start], new]
        position, previous = edit.end, edit.key()
    return "".join(parts) + text[position:end]
