"""Which code a config may make zentrack import, decided before anything is imported.

Running a config imports the code it names, as ``python -m`` does, and a
config may come from a stranger.  Importing a module runs it: ``this``
prints the Zen of Python, ``unittest.__main__`` starts unittest, a module
planted beside the config runs whatever it holds.  So a source is checked
by name first (:func:`source_name_problem`), and then only the pipeline's
own code is imported (:class:`SourceGuard`): the pipeline module, modules
of its top-level package, and sources the recorded run of the config used.
Anything else resolves only if it is already imported (which runs nothing
new), and is otherwise refused with :class:`SourceRefused`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from typing import Any


class SourceRefused(ImportError):
    """A config names code zentrack does not import for a config (the message says why)."""


def source_name_problem(source: str) -> str | None:
    """Why ``source`` may not be imported for a config, judged by its name alone (or None).

    Refused: anything but a dotted name of identifiers; a ``__main__``
    module inside a package (``unittest.__main__``, ``pip.__main__``: a
    program that runs when imported); the standard library (``this``,
    ``antigravity``, ``idlelib``: no pipeline lives there).
    """
    parts = source.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return (
            f"{source!r} is not a dotted name like package.module.function; a source names "
            "the pipeline or step by module and name"
        )
    if "__main__" in parts[1:]:
        return (
            f"{source!r} names a __main__ module, a program that runs when it is imported; "
            "zentrack does not import it: name the module that defines the pipeline or step"
        )
    top = parts[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return (
            f"{source!r} is in the standard library module {top!r}, where no pipeline or step "
            "lives; zentrack does not import it for a config: name your own code"
        )
    return None


class SourceGuard:
    """Resolves a config's sources, importing only the pipeline's own code.

    Args:
        pipeline_source: the config's pipeline source, resolved first.
        recorded: sources the recorded run of the config used (from the store).
        resolve: imports a source and returns what it names.
    """

    def __init__(
        self, pipeline_source: str, recorded: Collection[str], resolve: Callable[[str], Any]
    ) -> None:
        self.pipeline_source = pipeline_source
        self.package = pipeline_source.split(".")[0]
        self.recorded = frozenset(recorded)
        self._resolve = resolve
        self._pipeline_imported = False

    def __call__(self, source: str) -> Any:
        """Return what ``source`` names; raise :class:`SourceRefused` if it may not be imported."""
        problem = source_name_problem(source)
        if problem is not None:
            raise SourceRefused(problem)
        if source == self.pipeline_source:
            found = self._resolve(source)
            self._pipeline_imported = True
            return found
        if not self._pipeline_imported:
            raise SourceRefused(
                f"{source!r} is not imported, since the pipeline source "
                f"{self.pipeline_source!r} could not be: the steps a config may import are "
                "judged by its pipeline's package"
            )
        if source.split(".")[0] == self.package or source in self.recorded:
            return self._resolve(source)
        found = _already_imported(source)
        if found is not None:
            return found[0]
        raise SourceRefused(
            f"{source!r} is outside the pipeline's package {self.package!r}, was not imported by "
            "the pipeline's code and is not a step of the run that wrote this config, so "
            "zentrack does not import it; a config names only steps of its pipeline's own code"
        )


def _already_imported(source: str) -> tuple[Any] | None:
    """``(object,)`` that ``source`` names in a module already imported, importing nothing."""
    parts = source.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        found: Any = module
        try:
            for attribute in parts[cut:]:
                found = getattr(found, attribute)
        except AttributeError:
            return None
        return (found,)
    return None
