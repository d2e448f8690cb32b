"""Whether importing a pipeline's module would run its steps: refused before importing.

A config names its pipeline as ``train.training``; checking it against the
code, planning it or running it imports ``train``.  A script written to be
run (``python train.py``) often calls its pipeline at module level, without
an ``if __name__ == "__main__":`` guard: importing it would run a whole
training, and record it, before the command did what it was asked
(``config plan`` promises that nothing runs; ``config set`` only edits).

This reads the module's source (nothing is imported or executed) and finds
module-level code that calls a function or class of that module decorated
with ``step`` or ``pipeline``.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from zentrack.exceptions import ConfigError

_DECORATORS = frozenset({"step", "pipeline"})


def refuse_if_import_runs_steps(module_name: str) -> None:
    """Raise if importing ``module_name`` (not imported yet) would call its own steps.

    Raises:
        ConfigError: naming the file, line and call, and the guard to add.
    """
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return  # the import itself will say what is wrong
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return
    try:
        tree = ast.parse(Path(origin).read_bytes(), filename=origin)
    except (OSError, SyntaxError, ValueError):
        return  # the import reports it
    found = calls_at_import(tree)
    if found:
        line, name = found[0]
        raise ConfigError(
            f"{origin}:{line} calls {name}(...) when the module is imported, so reading the "
            f"config's code would run it (and record a run); put the script's own calls under "
            f'`if __name__ == "__main__":` and retry.'
        )


def calls_at_import(tree: ast.Module) -> list[tuple[int, str]]:
    """``(line, name)`` of module-level calls of the module's own steps and pipelines.

    A function step or pipeline is recorded when called (``fit(...)``); a
    class step when its entry point is called on an instance made right
    there (``Fit(C=1).run(data)``, ``Fit()(data)``), not when it is built
    (``PREBUILT = Fit(C=1)`` records nothing).
    """
    functions: set[str] = set()
    classes: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and any(
            _decorator_name(d) in _DECORATORS for d in node.decorator_list
        ):
            (classes if isinstance(node, ast.ClassDef) else functions).add(node.name)
    if not functions and not classes:
        return []
    found: list[tuple[int, str]] = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # decorators and defaults run at import, but call no step
        guard = statement if _is_main_guard(statement) else None
        parts = guard.orelse if isinstance(guard, ast.If) else [statement]
        for part in parts:
            for inner in _walk_outside_functions(part):
                if isinstance(inner, ast.Call):
                    name = _tracked_call(inner, functions, classes)
                    if name is not None:
                        found.append((inner.lineno, name))
    return sorted(found)


def _tracked_call(call: ast.Call, functions: set[str], classes: set[str]) -> str | None:
    """The step or pipeline ``call`` runs, if it is one of this module's."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id if func.id in functions else None
    if isinstance(func, ast.Attribute):
        func = func.value  # Fit(...).run(...): a method of an instance made right here
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name):
        return func.func.id if func.func.id in classes else None
    return None


def _decorator_name(node: ast.expr) -> str | None:
    """``step`` for ``@step``, ``@zt.step`` and ``@zt.step(name=...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _is_main_guard(statement: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either side of the ``==``)."""
    if not isinstance(statement, ast.If) or not isinstance(statement.test, ast.Compare):
        return False
    test = statement.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, *test.comparators]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def _walk_outside_functions(node: ast.AST) -> list[ast.AST]:
    """Every node under ``node`` that runs when it does (not in nested defs or lambdas)."""
    out: list[ast.AST] = []
    pending = [node]
    while pending:
        current = pending.pop()
        out.append(current)
        for child in ast.iter_child_nodes(current):
            if not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
            ):
                pending.append(child)
    return out
