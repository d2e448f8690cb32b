"""The importable name a config records for a pipeline or step: ``module.QualName``.

A rerun (``zentrack config run``, ``zentrack rerun``, ``Config.run``) imports
what a config names, in another process.  Code defined in the script being
run (``python train.py``) has ``__module__ == "__main__"``, which no other
process can import, so it is named by the module the script is when
imported instead: ``train.outer``, the way ``python -m train`` run from the
script's folder sees it.  That needs a ``.py`` file whose stem is a valid
module name that is not shadowed (by the standard library or an already
imported module of that name) and that importing from the script's folder
finds.  Under ``python -m pkg.train`` the module's own name is used.

Importing the script runs its top-level code again: only what is guarded
by ``if __name__ == "__main__":`` is skipped on a rerun.  Code defined where
no file stands behind ``__main__`` (the REPL, ``python -c``, a notebook)
keeps its ``__main__`` name, and a rerun in another process explains that
it must move into an importable module (see :func:`unimportable_main`).

The recorded source is a label for reruns only: fingerprints and code
digests never include it.
"""

from __future__ import annotations

import functools
import importlib.machinery
import keyword
import os
import sys
from typing import Any, Final

#: Module names of the script being run (``__mp_main__``: in a spawned worker).
MAIN_MODULES: Final = ("__main__", "__mp_main__")


def source_of(obj: Any) -> str:
    """``module.QualName`` of a function or class, ``__main__`` replaced when importable."""
    return f"{importable_module(str(obj.__module__))}.{obj.__qualname__}"


def importable_module(name: str) -> str:
    """The name another process can import module ``name`` by (``name`` itself if none)."""
    if name not in MAIN_MODULES:
        return name
    module = sys.modules.get(name)
    if module is None:
        return name
    spec_name = getattr(getattr(module, "__spec__", None), "name", None)
    if isinstance(spec_name, str) and spec_name not in MAIN_MODULES:
        return spec_name  # python -m pkg.train
    file = getattr(module, "__file__", None)
    if not isinstance(file, str):
        return name  # the REPL, python -c, a notebook
    return _script_module(os.path.realpath(file)) or name


@functools.lru_cache(maxsize=32)
def _script_module(path: str) -> str | None:
    """The module name importing from ``path``'s folder gives ``path`` by, or None."""
    folder, filename = os.path.split(path)
    stem, extension = os.path.splitext(filename)
    if extension != ".py" or not stem.isidentifier() or keyword.iskeyword(stem):
        return None
    if stem in sys.stdlib_module_names or stem in sys.builtin_module_names:
        return None
    loaded = sys.modules.get(stem)
    if loaded is not None and not _same_file(getattr(loaded, "__file__", None), path):
        return None  # another module already has the name
    try:
        found = importlib.machinery.PathFinder.find_spec(stem, [folder])
    except (ImportError, OSError, ValueError):
        return None
    if found is None or not _same_file(found.origin, path):
        return None  # a package or extension module of that name wins
    return stem


def _same_file(candidate: object, path: str) -> bool:
    return isinstance(candidate, str) and os.path.realpath(candidate) == path


def unimportable_main(source: str) -> str | None:
    """Why a source naming ``__main__`` cannot be rerun, or None for any other source."""
    module = source.partition(".")[0]
    if module not in MAIN_MODULES:
        return None
    return (
        f"it was defined in a script, REPL or notebook that ran as module {module}, which "
        "another process cannot import; to rerun it, define it in an importable module (a "
        ".py file whose name is a valid module name, in the folder you rerun from)"
    )


def import_root(obj: Any) -> str | None:
    """The folder another process needs on ``sys.path`` to import ``obj`` by its source name.

    For ``train.outer`` defined in ``/p/train.py`` it is ``/p``; for
    ``pkg.pipes.training`` in ``/p/pkg/pipes.py`` also ``/p``.  A config
    records it as the project's root, so a rerun from a subfolder (or any
    folder) can still import the pipeline.  None when there is no such
    folder: code from the REPL or a notebook, or from an installed package
    (``site-packages`` is on ``sys.path`` already).
    """
    name = importable_module(str(obj.__module__))
    module = sys.modules.get(str(obj.__module__))
    file = getattr(module, "__file__", None)
    if name in MAIN_MODULES or not isinstance(file, str):
        return None
    path = os.path.realpath(file)
    folder, filename = os.path.split(path)
    parts = name.split(".")
    if os.path.splitext(filename)[0] != "__init__":
        parts.pop()  # the module is the file; its packages are folders
    for part in reversed(parts):
        folder, last = os.path.split(folder)
        if last != part:
            return None  # not laid out as its name says (a loader of its own)
    if os.path.basename(folder) in ("site-packages", "dist-packages"):
        return None
    return folder
