"""CPython's private name mangling, applied to a method before it is compiled.

Inside `class Cart:`, CPython compiles `self.__total` as `self._Cart__total`
(and `__n = 1` binds the local `_Cart__n`). The states of a compiled method
are module-level functions, where CPython would mangle nothing, so the
method's parameters and body are mangled here, once, before any other pass:
afterwards every pass sees the names CPython's own compiler (and `symtable`)
sees.

    class Cart:                                 params and body, mangled:
        async def add(self, __n):                   (self, _Cart__n)
            self.__total += __n                     self._Cart__total += _Cart__n
            return f(__n=1)                         f(__n=1)   keyword names are not mangled

As in CPython: a name is mangled when it starts with two underscores, does
not end with two, and is not dotted; the class name loses its leading
underscores (a class named only with underscores mangles nothing).
Keyword argument names and `case C(__x=...)` keys are left alone, and so is
the body of a class defined inside the method (CPython mangles it with that
class's own name, in the generated code as in the original). The `def` and
`class` statements nested in the method keep their own name (their
`__name__`), while the variable they bind is the mangled one: `rewrite.py`
stores it under `mangle_name(name, private)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import libcst as cst

__all__ = ["mangle_function", "mangle_name"]


def mangle_name(name: str, private: str) -> str:
    """`name` as CPython compiles it inside class `private` ('' for none)."""
    if not private or not name.startswith("__") or name.endswith("__") or "." in name:
        return name
    stripped = private.lstrip("_")
    return f"_{stripped}{name}" if stripped else name


class _Mangler(cst.CSTTransformer):
    def __init__(self, private: str) -> None:
        super().__init__()
        self.private = private
        self.protected = 0
        self.class_bodies = 0
        #: new node -> the original node it replaces (for error positions).
        self.origins: dict[cst.CSTNode, cst.CSTNode] = {}

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        result = super().on_leave(original_node, updated_node)
        if isinstance(result, cst.CSTNode) and result is not original_node:
            self.origins[result] = original_node
        return result

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if self.protected or self.class_bodies:
            return updated_node
        name = mangle_name(updated_node.value, self.private)
        return updated_node if name == updated_node.value else updated_node.with_changes(value=name)

    def _protect(self, node: cst.CSTNode) -> None:
        self.protected += 1

    def _unprotect(self, node: cst.CSTNode) -> None:
        self.protected -= 1

    # Not mangled by CPython: keyword argument names, class pattern keys; the
    # own name of a nested def or class (its __name__) is kept too.
    visit_Arg_keyword = _protect
    leave_Arg_keyword = _unprotect
    visit_MatchKeywordElement_key = _protect
    leave_MatchKeywordElement_key = _unprotect
    visit_FunctionDef_name = _protect
    leave_FunctionDef_name = _unprotect
    visit_ClassDef_name = _protect
    leave_ClassDef_name = _unprotect

    # A dotted module name (`import a.__b`, `from a.__b import c`) is not mangled.
    def visit_ImportAlias_name(self, node: cst.ImportAlias) -> None:
        self.protected += isinstance(node.name, cst.Attribute)

    def leave_ImportAlias_name(self, node: cst.ImportAlias) -> None:
        self.protected -= isinstance(node.name, cst.Attribute)

    def visit_ImportFrom_module(self, node: cst.ImportFrom) -> None:
        self.protected += isinstance(node.module, cst.Attribute)

    def leave_ImportFrom_module(self, node: cst.ImportFrom) -> None:
        self.protected -= isinstance(node.module, cst.Attribute)

    # A nested class's body is mangled by CPython with that class's name.
    def visit_ClassDef_body(self, node: cst.ClassDef) -> None:
        self.class_bodies += 1

    def leave_ClassDef_body(self, node: cst.ClassDef) -> None:
        self.class_bodies -= 1


def mangle_function(
    node: cst.FunctionDef, private: str
) -> tuple[cst.FunctionDef, Mapping[cst.CSTNode, cst.CSTNode]]:
    """`node` with its parameters and body mangled for class `private`, and
    {new node: the original node it stands for}. Unchanged when nothing in
    it is mangled."""
    mangler = _Mangler(private)
    params = node.params.visit(mangler)
    body = node.body.visit(mangler)
    if params is node.params and body is node.body:
        return node, {}
    assert isinstance(params, cst.Parameters) and isinstance(body, cst.BaseSuite)
    new = node.with_changes(params=params, body=body)
    origins = dict(mangler.origins)
    origins[new] = node
    return new, origins
