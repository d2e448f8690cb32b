"""The code part of a fingerprint: a digest of a step's normalised source.

The source is parsed and dumped without line numbers, docstrings or the
step's own decorators, so comments, formatting, docstrings and decorator
options do not change the digest, while any change to what runs does.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
import types
from typing import Any

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


def normalised_source(obj: Any) -> str:
    """Return the canonical AST text of ``obj``'s source, or raise ``OSError``/``TypeError``."""
    source = textwrap.dedent(inspect.getsource(obj))
    tree = ast.parse(source)
    tree = _Normaliser().visit(tree)
    return _dump(tree)


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


def code_digest(obj: Any) -> str:
    """Digest a function's or class's code, robust to cosmetic edits.

    Falls back to the compiled bytecode when the source is not available
    (code typed into a REPL or built with ``exec``).
    """
    try:
        text = normalised_source(obj)
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        if code is None and isinstance(obj, type):
            parts = [
                f"{name}:{_code_object_text(function.__code__)}"
                for name, member in sorted(vars(obj).items())
                for function in _functions_of(member)
            ]
            text = "class:" + obj.__qualname__ + "|" + "|".join(parts)
        elif code is not None:
            text = _code_object_text(code)
        else:
            text = repr(obj)
    return hashlib.sha256(_SCHEME + text.encode()).hexdigest()
