"""Recording a call: the journal-line format (one owner, :mod:`.line`), the
append-only journal, the per-process tracker, and the drain that writes
journal lines into MLMD.

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
