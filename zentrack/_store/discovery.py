"""Which ``.zentrack/`` folder a project uses when no store is named: found upward, like git.

A notebook in ``project/nb/`` and ``train.py`` in ``project/`` must share one
store without configuration.  So, when neither :func:`zentrack.init` nor
``$ZENTRACK_STORE`` names a store, the folders from the current one upward
are searched for an existing ``.zentrack/`` folder, and the nearest one is
used.  The search stops at the project's root, the first folder holding a
``.git`` or ``pyproject.toml`` (it is searched, its parents are not: a
``.zentrack/`` of an enclosing project or of the home folder is never
borrowed), at the home folder, and at the filesystem's root.

When none is found, ``.zentrack/`` is made at the project's root if the
search met one, else in the current folder; so whichever of the notebook or
the script runs first, the other finds the store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import attrs

#: The folder zentrack keeps a project's store, configs and cached outputs in.
STATE_FOLDER: Final = ".zentrack"
#: The SQLite file of a project's default store, inside :data:`STATE_FOLDER`.
STORE_FILE: Final = "metadata.sqlite"
#: Files or folders that mark a project's root: the search goes no higher.
PROJECT_MARKERS: Final = (".git", "pyproject.toml")


@attrs.frozen
class Discovery:
    """The outcome of the search, and what to say about it.

    Attributes:
        folder: the ``.zentrack/`` folder to use (it exists when ``found``).
        found: an existing folder was found.
        start: the folder the search started from (the current one).
        boundary: the folder the search stopped at, if it stopped before the
            filesystem's root.
        why_stopped: what made ``boundary`` a boundary (``"pyproject.toml"``,
            ``".git"``, ``"home folder"``).
    """

    folder: Path
    found: bool
    start: Path
    boundary: Path | None = None
    why_stopped: str | None = None

    @property
    def store(self) -> Path:
        """The SQLite file of the default store."""
        return self.folder / STORE_FILE

    @property
    def reason(self) -> str:
        """One line saying why this folder, for ``zentrack store info``."""
        where = "" if self.boundary is None else f" up to {self.boundary} ({self.why_stopped})"
        if self.found:
            if self.folder.parent == self.start:
                return f"the .zentrack/ folder in the current folder {self.start}"
            return f"the nearest .zentrack/ folder found upward from {self.start}"
        return (
            f"no .zentrack/ folder from {self.start}{where}, so a tracked call makes one in "
            f"{self.folder.parent}"
        )


def discover(start: str | os.PathLike[str] | None = None) -> Discovery:
    """Find the ``.zentrack/`` folder for ``start`` (default: the current folder).

    See the module's docstring for the rule.  Nothing is created.
    """
    origin = Path(start if start is not None else os.getcwd()).absolute()
    home = _home()
    for folder in (origin, *origin.parents):
        candidate = folder / STATE_FOLDER
        if candidate.is_dir():
            return Discovery(candidate, True, origin)
        marker = next((m for m in PROJECT_MARKERS if (folder / m).exists()), None)
        if marker is not None:
            return Discovery(candidate, False, origin, folder, marker)
        if folder == home:
            return Discovery(origin / STATE_FOLDER, False, origin, folder, "home folder")
    return Discovery(origin / STATE_FOLDER, False, origin)


def _home() -> Path | None:
    try:
        return Path.home().absolute()
    except (KeyError, RuntimeError):  # no home folder for this user
        return None
