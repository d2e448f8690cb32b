"""The first stage of a tracked call: the ``@step`` decorator, binding a call's
params, the tracked value types, and what a fingerprint is made of (params,
code digest, content hashes of inputs, source names).

Private, like every stage folder (``zentrack.step`` and ``zentrack.runs`` are
public functions a same-named subpackage would shadow); nothing is re-exported
here, so importing the package costs nothing.
"""
