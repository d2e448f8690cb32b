"""The output cache a fingerprint keys: cached outputs on disk, the
materializers that write and read them, and the lineage linking an output
to the step that produced it.

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
