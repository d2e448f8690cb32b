"""Seeing runs: the self-contained HTML report of a comparison, the local
read-only viewer (``zentrack ui``) and the notebook display of runs.

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
