"""Finds and loads the generated state machine of a decorated function.

`app/shop.py` is compiled to `app/__resumable__/shop.py`; the path comes from
the function's own code object (never the working directory). The generated
module is executed in a private namespace, then each machine's state
functions are re-created over the *source module's* globals, so globals and
builtins resolve exactly as in the original function.
"""

from __future__ import annotations

import ast
import gc
import linecache
import os
import types
from typing import Any

from . import __version__, compile_on_load
from .closures import Closures
from .errors import StaleCodeError
from .locations import located_states
from .machine import Machine
from .source import (
    FUTURE_FLAGS,
    build_hash,
    display_path,
    edited,
    generated_path,
    loaded_source,
)

__all__ = ["load_machine"]

#: path -> (its text, its namespace): a module is executed again only when
#: its text changed (not judged by modification time, which may be coarse).
_modules: dict[str, tuple[str, dict[str, Any], bool]] = {}
#: text of a generated module -> its syntax tree (for locations.py).
_trees: dict[str, ast.Module] = {}


def _stale(fn: Any, why: str, source_path: str) -> StaleCodeError:
    line = fn.__code__.co_firstlineno
    return StaleCodeError(
        f"{fn.__qualname__} ({display_path(source_path)}:{line}): {why}; "
        f"run `resumable compile {display_path(source_path)}` and deploy the result. A run "
        "this blocked stays blocked until `resumable runs retry RUN` after that deploy "
        "(until then, rt.run of it raises this error again)"
    )


def _namespace(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cached = _modules.get(path)
    if cached is not None and cached[0] == text:
        return cached[1]
    namespace: dict[str, Any] = {"__name__": "__resumable_generated__", "__file__": path}
    changed = edited(text)
    if not changed:  # (an edited module is never run: load_machine refuses it)
        exec(compile(text, path, "exec", dont_inherit=True), namespace)
    _modules[path] = (text, namespace, changed)
    return namespace


def load_machine(function: Any) -> type[Machine]:
    """The machine class for `function`, bound to its module's globals.

    Raises StaleCodeError when the generated module is missing or was compiled
    from other source than the one loaded now (with autocompile on, it is
    compiled first: compile_on_load.py)."""
    try:
        return _load_machine(function)
    except StaleCodeError as stale:
        if not compile_on_load.enabled():
            raise
        compile_on_load.compile_stale(
            os.path.abspath(function.__wrapped__.__code__.co_filename), stale
        )
    return _load_machine(function)


def _load_machine(function: Any) -> type[Machine]:
    fn = function.__wrapped__
    source_path = os.path.abspath(fn.__code__.co_filename)
    path = generated_path(source_path)
    if not os.path.exists(path):
        raise _stale(fn, f"generated code {display_path(path)} is missing", source_path)
    namespace = _namespace(path)
    if _modules[path][2]:
        raise _stale(fn, f"its generated code {display_path(path)} was edited by hand", source_path)
    machines = namespace.get("MACHINES", {})
    cls = machines.get(fn.__qualname__)
    if cls is None:
        raise _stale(fn, f"{display_path(path)} has no machine for it", source_path)
    try:
        linecache.checkcache(fn.__code__.co_filename)  # the file as it is now
        block, first_line = loaded_source(fn)
    except OSError as e:
        raise _stale(fn, f"its source cannot be read ({e})", source_path) from None
    if cls.build_hash != build_hash(block, __version__):
        why = "the generated code was compiled from different source"
        if cls.compiler_version != __version__:
            why += f" (by resumable {cls.compiler_version}; this is {__version__})"
        raise _stale(fn, why, source_path)
    flags = fn.__code__.co_flags & FUTURE_FLAGS
    bound = _bind(
        cls, fn.__globals__, first_line - cls.first_line, source_path, _modules[path][0], flags
    )
    bound.class_cell = _class_cell(fn)
    return bound


def _class_cell(fn: Any) -> types.CellType | None:
    """The `__class__` cell of a method that uses `super()` or `__class__`
    (what the compiled states read as `m.owner`), None for other functions."""
    names = fn.__code__.co_freevars
    if "__class__" not in names or fn.__closure__ is None:
        return None
    cell: types.CellType = fn.__closure__[names.index("__class__")]
    return cell


def _parse(text: str) -> ast.Module:
    """`ast.parse(text)` with the cyclic garbage collector off: CPython 3.11
    keeps one AST recursion counter per interpreter, so a finalizer that the
    collector runs in the middle of the parse and that parses too (asyncio's
    "Task exception was never retrieved" log formats a traceback, which calls
    ast.parse) unbalances it, and this parse fails with "SystemError: AST
    constructor recursion depth mismatch"."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(text)
    finally:
        if enabled:
            gc.enable()


def _renamed(code: types.CodeType, state: str, qualname: str) -> types.CodeType:
    """Functions, classes and lambdas defined in a state are named after the
    original function (`f.<locals>.helper`), not the state (`f_3.<locals>...`)."""
    old, new = f"{state}.<locals>.", f"{qualname}.<locals>."
    consts = tuple(
        _renamed_nested(c, old, new) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    changed = any(a is not b for a, b in zip(consts, code.co_consts, strict=True))
    return code.replace(co_consts=consts) if changed else code


def _renamed_nested(code: types.CodeType, old: str, new: str) -> types.CodeType:
    consts = tuple(
        _renamed_nested(c, old, new) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    qualname = code.co_qualname
    if qualname.startswith(old):
        qualname = new + qualname[len(old) :]
        # A class body stores its __qualname__ as a string constant.
        consts = tuple(
            new + c[len(old) :] if type(c) is str and c.startswith(old) else c for c in consts
        )
    return code.replace(co_consts=consts, co_qualname=qualname)


def _bind(
    cls: type[Machine],
    globals_: dict[str, Any],
    shift: int,
    source_path: str,
    text: str,
    flags: int = 0,
) -> type[Machine]:
    """A subclass whose states see the source module's globals, and whose
    tracebacks name the source file, lines and function (locations.py).
    `flags`: the source module's `__future__` features, which the states are
    compiled with (so annotations of nested definitions are evaluated, or
    not, as in the original)."""
    tree = _trees.get(text)
    if tree is None:
        tree = _trees[text] = _parse(text)
    names = [f.__code__.co_name for f in cls.states]
    located = located_states(
        text, tree, names, linecache.getlines(source_path), shift, source_path, flags
    )
    short = cls.qualname.rsplit(".", 1)[-1]
    states = []
    for f, name in zip(cls.states, names, strict=True):
        code = _renamed(located.get(name, f.__code__), name, cls.qualname)
        code = code.replace(co_name=short, co_qualname=cls.qualname)
        states.append(types.FunctionType(code, globals_, name, f.__defaults__, f.__closure__))
    namespace = {
        "states": tuple(states),
        "closures": Closures(cls.qualname, states, linecache.getlines(source_path)),
        "line_shift": shift,
        "source_file": display_path(source_path),
        "import_set": frozenset(cls.imports),
        "__slots__": (),
    }
    return type(cls.__name__, (cls,), namespace)
