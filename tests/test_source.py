"""Tests for zentrack._step.source_names: the importable name recorded for code run as ``__main__``.

Whole scripts run through ``python train.py`` and ``zentrack config run`` are in
tests/test_cli.py (``TestScriptPipelines``); here each rule about which files
can stand for ``__main__`` is checked on real files.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from zentrack._step.source_names import (
    _script_module,
    importable_module,
    source_of,
    unimportable_main,
)


def script(folder: Path, name: str) -> str:
    """Write an empty script ``name`` in ``folder``; return its real path."""
    path = folder / name
    path.write_text("x = 1\n", encoding="utf-8")
    return os.path.realpath(path)


@pytest.fixture
def main_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A stand-in ``__main__`` module, installed for the test and restored after."""
    module = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", module)
    return module


class TestScriptModule:
    """Which script files are importable by their stem, from their folder."""

    def test_plain_script(self, tmp_path):
        """``train.py`` is module ``train``."""
        expected = "train"
        assert expected == _script_module(script(tmp_path, "train.py"))

    @pytest.mark.parametrize(
        "name",
        [
            "my-train.py",  # not an identifier
            "class.py",  # a keyword
            "json.py",  # the standard library's
            "attrs.py",  # an already imported module's
            "train",  # no .py: a script with a shebang
            "train.pyw",
        ],
    )
    def test_names_that_would_import_something_else(self, tmp_path, name):
        """These stems do not import the file: None."""
        assert None is _script_module(script(tmp_path, name))

    def test_package_of_the_same_name_wins(self, tmp_path):
        """A ``train/`` package beside ``train.py`` is what ``import train`` finds: None."""
        (tmp_path / "train").mkdir()
        (tmp_path / "train" / "__init__.py").write_text("", encoding="utf-8")
        assert None is _script_module(script(tmp_path, "train.py"))


class TestImportableModule:
    """``__main__`` by the name another process imports it by."""

    def test_other_modules_keep_their_name(self):
        """A module name that is not ``__main__`` is returned as it is."""
        expected = "tests.test_source"
        assert expected == importable_module("tests.test_source")

    def test_script_file(self, tmp_path, main_module):
        """``python train.py``: ``train``."""
        main_module.__file__ = script(tmp_path, "train.py")
        expected = "train"
        assert expected == importable_module("__main__")

    def test_run_with_dash_m(self, main_module):
        """``python -m pkg.train``: the module's spec names it."""
        main_module.__file__ = __file__
        main_module.__spec__ = types.SimpleNamespace(name="pkg.train")
        expected = "pkg.train"
        assert expected == importable_module("__main__")

    def test_no_file_behind_it(self, main_module):
        """The REPL, ``python -c``, a notebook: ``__main__`` stays."""
        expected = "__main__"
        assert expected == importable_module("__main__")

    def test_source_of_a_function_defined_in_the_script(self, tmp_path, main_module):
        """``source_of`` replaces the module part only; the qualname is kept."""
        main_module.__file__ = script(tmp_path, "train.py")

        def outer() -> None:
            return None

        outer.__module__ = "__main__"
        expected = "train." + outer.__qualname__
        assert expected == source_of(outer)


class TestUnimportableMain:
    """The hint a rerun gives for a ``__main__`` source."""

    @pytest.mark.parametrize("source", ["__main__.outer", "__mp_main__.Trainer.run"])
    def test_main_sources_get_the_hint(self, source):
        """It says where the code was defined and that it must move into a module."""
        hint = unimportable_main(source)
        assert hint is not None and "define it in an importable module" in hint

    def test_other_sources_get_none(self):
        """Any other module: no hint (the import error speaks for itself)."""
        assert None is unimportable_main("train.outer")
