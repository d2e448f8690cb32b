"""YAML configs of pipeline runs: YAML I/O and quoting, validation, the
config model, the byte patcher, the writer of a run's config, plans and reruns.

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
