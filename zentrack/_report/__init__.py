"""Where the HTML report and the notebook display of runs live.

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
