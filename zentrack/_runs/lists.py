"""The lists ``zt.runs()`` and ``zt.find()`` return: plain lists that show as tables.

Still ``list`` (indexing, ``len``, ``==`` with a list, JSON, pickling all
work), with a ``__repr__`` that stays short however many items there are,
an IPython ``_repr_pretty_`` that prints the text table, and a
``_repr_html_`` that a notebook shows as an HTML table.  A slice is a list
of the same kind, so ``zt.runs()[:5]`` shows as a table too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, SupportsIndex, overload

from zentrack._record.line import Record
from zentrack._runs.pipeline import Run

#: Items a repr shows before "... N more".
SHOWN: Final = 10
#: Rows the pretty (IPython) text table shows.
PRETTY_ROWS: Final = 20


def _short_repr(items: list[Any], noun: str) -> str:
    if len(items) <= SHOWN:
        return repr(items)
    head = ",\n ".join(map(repr, items[:SHOWN]))
    return f"[{head},\n ... and {len(items) - SHOWN:,} more {noun}]"


def _more(count: int, noun: str) -> str:
    left = count - PRETTY_ROWS
    return f"\n... and {left:,} more {noun}" if left > 0 else ""


class RunList(list[Run[Any]]):
    """Runs, newest first, as :func:`zentrack.runs` returns them."""

    def __init__(self, runs: Iterable[Run[Any]] = ()) -> None:
        super().__init__(runs)

    @overload
    def __getitem__(self, index: SupportsIndex) -> Run[Any]: ...
    @overload
    def __getitem__(self, index: slice) -> RunList: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Run[Any] | RunList:
        if isinstance(index, slice):
            return RunList(super().__getitem__(index))
        return super().__getitem__(index)

    def __repr__(self) -> str:
        return _short_repr(list(self), "runs")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        from zentrack._report.text import runs_text

        printer.text(runs_text(list(self)[:PRETTY_ROWS]) + _more(len(self), "runs"))

    def _repr_html_(self) -> str:
        from zentrack._report.notebook import runs_html

        return runs_html(self)


class RecordList(list[Record]):
    """Step records, oldest first, as :func:`zentrack.find` returns them."""

    def __init__(self, records: Iterable[Record] = ()) -> None:
        super().__init__(records)

    @overload
    def __getitem__(self, index: SupportsIndex) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> RecordList: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Record | RecordList:
        if isinstance(index, slice):
            return RecordList(super().__getitem__(index))
        return super().__getitem__(index)

    def __repr__(self) -> str:
        return _short_repr(list(self), "records")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        from zentrack._report.text import records_text

        printer.text(records_text(list(self)[:PRETTY_ROWS]) + _more(len(self), "records"))

    def _repr_html_(self) -> str:
        from zentrack._report.notebook import records_html

        return records_html(self)
