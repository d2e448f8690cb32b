"""Pipeline runs and reading them back: ``@pipeline`` and its run context,
queries over recorded runs, and ``explain`` (why a call would miss the cache).

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
