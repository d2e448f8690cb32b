"""Tests for the package layout: imports run one way, modules stay small, helpers stay owned.

The imports are read with ``ast`` from the source, so function-level imports
and ``if TYPE_CHECKING:`` imports count as much as module-level ones: a cycle
closed inside a function is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "zentrack"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> Iterator[tuple[str, str | None, int]]:
    """(module, imported attribute or None, line) for every zentrack import in a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("zentrack"):
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("zentrack"):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    yield submodule, None, node.lineno
                else:
                    yield base, alias.name, node.lineno


def _graph() -> dict[str, set[str]]:
    """Module -> the zentrack modules it imports (the package ``zentrack`` itself left out).

    ``zentrack/__init__.py`` imports nothing at run time (its names are lazy),
    and every module may ``import zentrack`` for the public API, so edges to
    and from the top-level package would only add noise.
    """
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        if name == "zentrack":
            continue
        for target, _, _ in _imports(name, path):
            if target != "zentrack" and target != name:
                graph[name].add(target)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


class TestImportGraph:
    def test_every_import_names_a_module_that_exists(self) -> None:
        """A zentrack import of a module that does not exist is a stale path."""
        missing = sorted(
            f"{name}:{line} imports {target}"
            for name, path in MODULES.items()
            for target, _, line in _imports(name, path)
            if target not in MODULES
        )
        assert missing == []

    def test_no_import_cycle(self) -> None:
        """No cycle among zentrack's modules, counting function-level and TYPE_CHECKING imports."""
        cycle = _find_cycle(_graph())
        assert cycle is None, "import cycle: " + " -> ".join(cycle or [])

    def test_the_finder_sees_a_cycle(self) -> None:
        """The cycle finder finds a cycle through three modules (so the test above can fail)."""
        assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]

    def test_no_private_name_imported_across_modules(self) -> None:
        """Helpers used by another module are public within the package: no ``from x import _y``."""
        private = sorted(
            f"{name}:{line} imports {target}.{attribute}"
            for name, path in MODULES.items()
            for target, attribute, line in _imports(name, path)
            if attribute is not None and attribute.startswith("_") and name != "zentrack"
        )
        assert private == []


class TestModules:
    @pytest.mark.parametrize("name", sorted(MODULES))
    def test_module_is_at_most_600_lines(self, name: str) -> None:
        """Every module fits in a reader's head: at most 600 lines."""
        lines = len(MODULES[name].read_text().splitlines())
        assert lines <= MAX_LINES, f"{name} has {lines} lines"

    def test_one_missing_sentinel(self) -> None:
        """One ``MISSING`` sentinel (or ``_MISSING``) for the whole package, defined once."""
        defined = sorted(
            name
            for name, path in MODULES.items()
            for node in ast.parse(path.read_text()).body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name) and target.id.lstrip("_") == "MISSING"
        )
        assert len(defined) == 1, defined

    def test_import_zentrack_stays_light(self) -> None:
        """The stage packages re-export nothing: their ``__init__`` holds only a docstring."""
        for name, path in MODULES.items():
            if name.count(".") == 1 and path.name == "__init__.py":
                body = ast.parse(path.read_text()).body
                assert len(body) == 1 and isinstance(body[0], ast.Expr), name
