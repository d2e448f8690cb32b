"""The code part of a fingerprint: digests of a step's normalised source.

The source is parsed and dumped without line numbers, docstrings or the
step's own decorators, so comments, formatting, docstrings and decorator
options do not change the digest, while any change to what runs does.  The
functions, classes and module constants the step uses from the user's own
modules are followed transitively, so editing a helper invalidates the
cache too (a known gap in ZenML, Prefect and joblib).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import hashlib
import inspect
import symtable
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from zentrack._step.source_names import importable_module

_SCHEME = b"zentrack-code-v1\0"


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:] or [ast.Pass()]
    return body


class _Normaliser(ast.NodeTransformer):
    """Drop what does not change behaviour: docstrings, top-level decorators."""

    def __init__(self) -> None:
        self.top = True

    def _visit_definition(self, node: Any) -> Any:
        if self.top:
            node.decorator_list = []
            self.top = False
        node.body = _strip_docstring(node.body)
        self.generic_visit(node)
        return node

    visit_FunctionDef = _visit_definition
    visit_AsyncFunctionDef = _visit_definition
    visit_ClassDef = _visit_definition


def _dump(node: Any) -> str:
    """A canonical text of an AST: node names and non-empty fields, sorted.

    Unlike ``ast.dump``, it does not change when a Python release adds a
    field or stops printing empty ones, so the digest survives upgrades.
    """
    if isinstance(node, ast.AST):
        fields = []
        for name in sorted(node._fields):
            value = getattr(node, name, None)
            if value is None or value == []:
                continue
            fields.append(f"{name}={_dump(value)}")
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(_dump(item) for item in node) + "]"
    return repr(node)


def _tree(obj: Any) -> ast.AST:
    """The normalised AST of ``obj``'s source, or raise ``OSError``/``TypeError``."""
    source = textwrap.dedent(inspect.getsource(obj))
    return _Normaliser().visit(ast.parse(source))  # type: ignore[no-any-return]


def _code_object_text(code: types.CodeType) -> str:
    consts = [
        _code_object_text(c) if isinstance(c, types.CodeType) else repr(c)
        for c in code.co_consts
    ]
    return f"{code.co_code.hex()}|{code.co_names}|{consts}"


def _functions_of(member: Any) -> list[Any]:
    """The plain functions behind a class attribute, unwrapping our own wrappers."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return [f for m in (member.fget, member.fset, member.fdel) for f in _functions_of(m)]
    member = inspect.unwrap(member) if callable(member) else member
    return [member] if hasattr(member, "__code__") else []


def _own_text(obj: Any) -> tuple[str, ast.AST | None]:
    """The text that stands for ``obj``'s own code, and its AST when it has source."""
    try:
        tree = _tree(obj)
        return _dump(tree), tree
    except (OSError, TypeError, SyntaxError):
        pass
    code = getattr(obj, "__code__", None)
    if code is None and isinstance(obj, type):
        parts = [
            f"{name}:{_code_object_text(function.__code__)}"
            for name, member in sorted(vars(obj).items())
            for function in _functions_of(member)
        ]
        return "class:" + obj.__qualname__ + "|" + "|".join(parts), None
    if code is not None:
        return _code_object_text(code), None
    return repr(obj), None


def _digest(text: str) -> str:
    return hashlib.sha256(_SCHEME + text.encode()).hexdigest()


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.add(str(Path(__file__).resolve().parent.parent))  # zentrack itself
    return tuple(sorted(str(Path(r).resolve()) for r in roots))


_LIBRARY_ROOTS: Final = _library_roots()


def is_user_module(module: types.ModuleType | None) -> bool:
    """True for the user's own modules: not the standard library, site-packages or zentrack."""
    if module is None:
        return False
    filename = getattr(module, "__file__", None)
    if module.__name__ == "__main__":
        return True
    if not filename:
        return False
    resolved = str(Path(filename).resolve())
    return not resolved.startswith(_LIBRARY_ROOTS) and "site-packages" not in resolved


def _references(tree: ast.AST) -> list[list[str]]:
    """Dotted names the code reads: ``helper``, ``utils.scale``, ``CONSTANT``."""
    chains = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            chain: list[str] = []
            current: ast.expr = node
            while isinstance(current, ast.Attribute):
                chain.insert(0, current.attr)
                current = current.value
            if isinstance(current, ast.Name):
                chains.append([current.id, *chain])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            chains.append([node.id])
    return chains


def _read_globals(tree: ast.AST) -> frozenset[str] | None:
    """Names the code looks up outside itself: globals, closure variables, builtins.

    Parameters, locals, comprehension variables and names bound in a class
    body are the code's own: a module-level ``i`` or ``df`` that merely
    shares a name with one must not enter the digest.  ``symtable`` sees the
    code alone, so a closure variable shows as a global here; both are
    resolved through :func:`_namespace`.  None when the source cannot be
    analysed (then every name read is followed, as before).
    """
    try:
        table = symtable.symtable(ast.unparse(tree), "<zentrack step>", "exec")
    except (SyntaxError, ValueError):
        return None
    names: set[str] = set()
    tables = list(table.get_children())
    while tables:
        current = tables.pop()
        names.update(symbol.get_name() for symbol in current.get_symbols() if symbol.is_global())
        tables.extend(current.get_children())
    return frozenset(names)


def _namespace(obj: Any) -> dict[str, Any]:
    """Globals (and closure cells) that names in ``obj``'s code resolve in."""
    function = inspect.unwrap(obj) if callable(obj) and not isinstance(obj, type) else obj
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    names: dict[str, Any] = dict(vars(module)) if module is not None else {}
    names.update(getattr(function, "__globals__", {}))
    code = getattr(function, "__code__", None)
    closure = getattr(function, "__closure__", None)
    if code is not None and closure:
        for name, cell in zip(code.co_freevars, closure, strict=True):
            with contextlib.suppress(ValueError):
                names[name] = cell.cell_contents
    return names


def _constant_text(value: Any) -> str | None:
    """A stable text for module-level constants; None for anything else."""
    if type(value) in (int, float, str, bool, bytes, type(None)):
        return repr(value)
    if type(value) in (tuple, frozenset):
        texts = [_constant_text(v) for v in value]
        if all(t is not None for t in texts):
            shown = sorted(str(t) for t in texts) if type(value) is frozenset else texts
            return f"{type(value).__name__}({shown})"
    return None


#: ``(namespace, name, value)``: ``namespace[name] is value`` while a digest holds.
Binding = tuple[dict[str, Any], str, Any]
#: The value of a binding whose name the code reads but the module lacks (yet).
GONE: Final = object()


def code_parts(
    obj: Any, *, limit: int = 500, bindings: list[Binding] | None = None
) -> dict[str, str]:
    """Digests of ``obj``'s code and of what it uses from the user's own modules.

    Follows, transitively, the functions and classes it references that are
    defined in the user's modules (not the standard library, site-packages or
    zentrack), and the module-level constants it reads.  Keys are qualified
    names (``"self"`` for ``obj`` itself); values sha256 hex digests.
    ``bindings`` receives the module-level names the digest depends on: a
    reloaded module or a rebound constant changes one of them (checked on
    every call by ``StepSpec.primed``).
    """
    parts: dict[str, str] = {}
    seen: set[int] = set()
    queue: list[tuple[str, Any]] = [("self", obj)]
    while queue and len(parts) < limit:
        key, target = queue.pop(0)
        if callable(target) and not isinstance(target, type):
            target = inspect.unwrap(target)
        if id(target) in seen:
            continue
        seen.add(id(target))
        text, tree = _own_text(target)
        parts[key] = _digest(text)
        if tree is None:
            continue
        namespace = _namespace(target)
        home = _home(target)
        missing = _global_names(target) if bindings is not None and home is not None else None
        outside = _read_globals(tree)
        for chain in _references(tree):
            if outside is not None and chain[0] not in outside:
                continue  # a parameter, local or comprehension variable of the code itself
            found = _resolve(namespace, chain)
            if found is None:
                if missing and chain[0] in missing and chain[0] not in namespace:
                    assert bindings is not None and home is not None
                    bindings.append((home, chain[0], GONE))  # defining it later counts
                continue
            name, value = found
            if bindings is not None:
                binding = _binding(home, chain)
                if binding is not None:  # watch for the value digested, not a later one
                    bindings.append((binding[0], binding[1], value))
            constant = _constant_text(value)
            if constant is not None:
                parts.setdefault(name, _digest("const:" + constant))
            elif id(value) not in seen:
                queue.append((name, value))
    return dict(sorted(parts.items()))


def _home(obj: Any) -> dict[str, Any] | None:
    """The module dict that ``obj``'s global names are looked up in (not a copy)."""
    function = inspect.unwrap(obj) if callable(obj) and not isinstance(obj, type) else obj
    found = getattr(function, "__globals__", None)
    if isinstance(found, dict):
        return found
    module = sys.modules.get(getattr(function, "__module__", "") or "")
    return vars(module) if module is not None else None


def _global_names(obj: Any) -> frozenset[str]:
    """Names ``obj``'s code looks up as globals (a superset: attribute names too), no builtins."""
    function = inspect.unwrap(obj) if callable(obj) and not isinstance(obj, type) else obj
    if isinstance(function, type):
        codes = [f.__code__ for m in vars(function).values() for f in _functions_of(m)]
    else:
        code = getattr(function, "__code__", None)
        codes = [code] if isinstance(code, types.CodeType) else []
    names: set[str] = set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return frozenset(names - _BUILTIN_NAMES)


_BUILTIN_NAMES: Final = frozenset(vars(builtins))


def _binding(home: dict[str, Any] | None, chain: list[str]) -> Binding | None:
    """The module-level binding a resolved dotted name went through last."""
    if home is None or chain[0] not in home:
        return None  # a closure cell or builtin: fixed for this function object
    namespace, name = home, chain[0]
    for attribute in chain[1:]:
        value = namespace.get(name)
        if not isinstance(value, types.ModuleType) or attribute not in vars(value):
            break
        namespace, name = vars(value), attribute
    return namespace, name, namespace.get(name, GONE)


def bindings_check(bindings: Sequence[Binding]) -> Callable[[], bool] | None:
    """A function telling whether every binding still names its object; None if none.

    It runs on every tracked call, so it is generated as one expression of
    subscripts and identity tests (about 25 ns a binding) instead of a loop.
    """
    if not bindings:
        return None
    defaults: dict[str, Any] = {}
    tests = []
    for i, (namespace, name, value) in enumerate(bindings):
        defaults[f"n{i}"], defaults[f"k{i}"], defaults[f"v{i}"] = namespace, name, value
        tests.append(f"k{i} not in n{i}" if value is GONE else f"n{i}[k{i}] is v{i}")
    source = (
        f"def unchanged({', '.join(f'{k}={k}' for k in defaults)}):\n"
        f"    try:\n        return {' and '.join(tests)}\n"
        "    except KeyError:  # the name was deleted\n        return False\n"
    )
    scope: dict[str, Any] = dict(defaults)
    exec(compile(source, "<zentrack bindings check>", "exec"), scope)
    check: Callable[[], bool] = scope["unchanged"]
    return check


def _label(module: object) -> str:
    """A module's name as another process imports it (``train``, not ``__main__``).

    Parts are keyed by it, so a step's digest is the same when its script
    runs (``python train.py``) and when a rerun imports it (``train``).
    """
    return importable_module(module) if isinstance(module, str) else str(module)


def _resolve(namespace: dict[str, Any], chain: list[str]) -> tuple[str, Any] | None:
    """Follow a dotted name to a user function or class, or a user module constant."""
    if chain[0] not in namespace:
        return None
    value = namespace[chain[0]]
    home = namespace.get("__name__")
    qualified = f"{_label(home)}.{chain[0]}"
    for attribute in chain[1:]:
        if not isinstance(value, types.ModuleType):
            break  # an attribute of an object: the object is what we follow
        if not is_user_module(value) or not hasattr(value, attribute):
            return None
        home, qualified = value.__name__, f"{value.__name__}.{attribute}"
        value = getattr(value, attribute)
    if isinstance(value, types.ModuleType):
        return None
    if isinstance(value, (types.FunctionType, type)) or hasattr(value, "__wrapped__"):
        inner = value if isinstance(value, type) else inspect.unwrap(value)
        module = sys.modules.get(getattr(inner, "__module__", None) or "")
        if module is None or not is_user_module(module):
            return None
        return f"{_label(module.__name__)}.{getattr(inner, '__qualname__', chain[-1])}", value
    module = sys.modules.get(home) if isinstance(home, str) else None
    if module is not None and is_user_module(module) and _constant_text(value) is not None:
        return qualified, value
    return None


def combined_digest(parts: dict[str, str]) -> str:
    """One digest for all the parts (the fingerprint's code component)."""
    return _digest("\n".join(f"{k}={v}" for k, v in sorted(parts.items())))


def code_digest(obj: Any) -> str:
    """Digest of ``obj``'s code and the user code it uses, robust to cosmetic edits."""
    return combined_digest(code_parts(obj))
