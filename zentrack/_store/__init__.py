"""The MLMD side: the adapter (the only code that imports ``ml_metadata``),
the schema (every MLMD type and property name), value encoding for SQL
servers, store locations and the explanations of errors opening a store.

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
