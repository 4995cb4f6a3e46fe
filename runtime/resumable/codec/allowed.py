"""The functions and classes a checkpoint may hold as values.

A function or class stored as a value (`{"$function": "shop:fee"}`,
`{"$class": "shop:Order"}`, a defaultdict's factory) is handed back to the
user's code, which may call it: `counts[k] += 1` calls the factory. So a
stored callable may be only:

- a decorated function (`@resumable.function`);
- a function or class defined in one of the project's modules: found by its
  own `module:qualname` among the modules already imported, in a module whose
  file is under the project's roots (roots.py);
- a built-in constructor: CONSTRUCTORS (the built-in value types and
  exception classes, and the standard library's value classes the codec
  stores natively);
- a built-in function that only computes a value: BUILTIN_FUNCTIONS (`len`,
  `max`, `sorted`, ...; not `eval`, `getattr`, `open`, `print`, ...);
- a class with a registered codec, or a target of `register_alias`.

A bound method (`{"$method": [<its object>, "name"]}`) is stored as its
object and its name, and decoded by binding the name again (`bind_method`):
found in the class of the decoded object, never through `__getattr__` or a
property, not a special (dunder) method, and a method of one of the
project's modules, a decorated one, or a C method of a built-in value type
(`"-".join`, `items.append`); a classmethod bound to its class likewise.

Anything else (`os:system`, `builtins:eval`, `subprocess:Popen`) is refused,
by the encoder (so that what is written can be read back) and the decoder
alike. Instances (exceptions, dataclasses, enums, ...) are not concerned:
their class is checked for its kind by the decoder, and no instance is built
by calling it.
"""

from __future__ import annotations

import builtins
import collections
import datetime
import decimal
import fractions
import pathlib
import sys
import types
import uuid
import zoneinfo
from typing import Any

from ..errors import CheckpointError
from ..roots import in_project
from .registry import codec_for, is_alias_target, lookup

__all__ = [
    "BUILTIN_FUNCTIONS",
    "CONSTRUCTORS",
    "RULE",
    "bind_method",
    "check",
    "decorated_named",
    "is_bound_decorated",
    "is_decorated",
    "refusal",
]

_VALUE_TYPES: tuple[type, ...] = (
    bool, bytearray, bytes, complex, dict, float, frozenset, int, list, set, str, tuple,
    object, range, slice,
    datetime.date, datetime.datetime, datetime.time, datetime.timedelta, datetime.timezone,
    datetime.tzinfo, decimal.Decimal, fractions.Fraction, uuid.UUID, zoneinfo.ZoneInfo,
    collections.OrderedDict, collections.Counter, collections.deque, collections.defaultdict,
    pathlib.PurePath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
    pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath,
)  # fmt: skip
#: Built-in constructors a checkpoint may name: the value types of builtins,
#: the built-in exception classes, and the standard library's value classes
#: the codec stores natively. Not `type`, `eval`, `open`, `getattr`, ...
CONSTRUCTORS: frozenset[type] = frozenset(_VALUE_TYPES) | {
    v for v in vars(builtins).values() if isinstance(v, type) and issubclass(v, BaseException)
}
#: By id: a class's own __hash__ or __eq__ is never called to look it up.
_CONSTRUCTOR_IDS = frozenset(map(id, CONSTRUCTORS))

#: Built-in functions a checkpoint may name: they compute a value from their
#: arguments and do nothing else. Not `eval`, `exec`, `compile`, `open`,
#: `print`, `input`, `breakpoint`, `__import__`, `getattr`/`setattr`/`delattr`,
#: `globals`, `locals`, `vars`, `dir`, `help`, `exit`, ...
BUILTIN_FUNCTIONS: frozenset[str] = frozenset(
    {
        "abs", "aiter", "all", "anext", "any", "ascii", "bin", "callable", "chr", "divmod",
        "format", "hash", "hex", "id", "isinstance", "issubclass", "iter", "len", "max",
        "min", "next", "oct", "ord", "pow", "repr", "round", "sorted", "sum",
    }
)  # fmt: skip
_BUILTIN_FUNCTION_IDS = frozenset(
    id(vars(builtins)[name]) for name in BUILTIN_FUNCTIONS if name in vars(builtins)
)

#: What a checkpoint may hold, for error messages.
RULE = (
    "a checkpoint holds as values only decorated functions, functions and classes of the "
    "project's own modules (under the working directory or [tool.resumable] roots in "
    "pyproject.toml), built-in constructors (value types, exception classes, the standard "
    "library's value classes the codec stores), built-in functions that compute a value "
    "(len, max, sorted, ...), bound methods of stored values whose class defines "
    "them in the project (or built-in value types' own methods), classes with a registered "
    "codec, and targets of resumable.register_alias"
)

_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType)
#: The module of decorated functions (resumable.function), looked up when needed:
#: importing it here would import the runtime into the codec.
_FUNCTION_MODULE = __name__.rsplit(".", 2)[0] + ".function"


def _decorated_class() -> Any:
    module = sys.modules.get(_FUNCTION_MODULE)  # not imported: no decorated function exists
    return None if module is None else module.__dict__.get("Function")


def is_decorated(obj: Any) -> bool:
    """Whether `obj` is a decorated function (`resumable.Function`)."""
    cls = _decorated_class()
    return cls is not None and isinstance(obj, cls)


def is_bound_decorated(obj: Any) -> bool:
    """Whether `obj` is a decorated method bound to its object (`BoundFunction`)."""
    module = sys.modules.get(_FUNCTION_MODULE)
    cls = None if module is None else module.__dict__.get("BoundFunction")
    return cls is not None and isinstance(obj, cls)


def decorated_named(name: str) -> Any:
    """The decorated function whose function id is `name`, if any."""
    module = sys.modules.get(_FUNCTION_MODULE)
    registered = None if module is None else module.__dict__.get("registered")
    return None if registered is None else registered(name)


def refusal(obj: Any) -> str | None:
    """None when `obj` may be stored as a value; otherwise why not."""
    if isinstance(obj, type):
        if id(obj) in _CONSTRUCTOR_IDS or codec_for(obj) is not None or is_alias_target(obj):
            return None
        if obj.__module__ == "builtins":
            return "it is a built-in class but not a value type"
        return _not_project(obj)
    if type(obj) in _FUNCTIONS:
        if is_alias_target(obj) or id(obj) in _BUILTIN_FUNCTION_IDS:
            return None
        return _not_project(obj)
    if is_decorated(obj):
        return None
    return f"it is not a function or class (its type is {type(obj).__qualname__})"


def _not_project(obj: Any) -> str | None:
    """None when `obj` is defined in one of the project's modules, found
    there by its own name; otherwise why not."""
    module_name = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module_name, str) or not isinstance(qualname, str):
        return "it has no module:qualname to be found by"
    module = sys.modules.get(module_name)
    if not isinstance(module, types.ModuleType) or lookup(module, qualname) is not obj:
        return f"it is not found by its own name {module_name}:{qualname}"
    file = module.__dict__.get("__file__")
    if not isinstance(file, str):
        return f"its module {module_name} has no file, so it is not one of the project's modules"
    if not in_project(file):
        return f"its module {module_name} ({file}) is not one of the project's modules"
    return None


def check(name: str, obj: Any, kind: str) -> Any:
    """`obj` (what the checkpoint's `name` resolved to, stored as `kind`),
    or CheckpointError when it may not be a stored value."""
    why = refusal(obj)
    if why is None:
        return obj
    raise CheckpointError(
        f"checkpoint names {name!r:.200} as {kind}: refused, because {why}; {RULE}. If your "
        f"code stores {name:.200} on purpose, register it before resuming: "
        f"resumable.register_alias({name!r:.200}, <it>)"
    )


# -- bound methods ------------------------------------------------------------------


def bind_method(obj: Any, name: Any) -> tuple[Any, str | None]:
    """(`obj.name`, None) when that bound method may be a stored value, else
    (None, why not). The name is looked up in the namespaces of `obj`'s class
    and its bases (of `obj` itself for a class, whose classmethods bind to
    it), never through `__getattr__`, `__getattribute__` or a property; the
    descriptor found is bound with its own `__get__` (a function, a decorated
    function, a classmethod, or a C method of a built-in value type)."""
    if type(name) is not str or not name.isidentifier():
        return None, f"{name!r:.60} is not a method name"
    if name.startswith("__") and name.endswith("__"):
        return None, f"{name} is a special method, which a checkpoint does not store"
    is_class = isinstance(obj, type)
    owners = obj.__mro__ if is_class else type(obj).__mro__
    for owner in owners:
        namespace = owner.__dict__
        if name in namespace:
            descriptor = namespace[name]
            break
    else:
        what = f"class {obj.__qualname__}" if is_class else f"a {type(obj).__qualname__}"
        return None, f"{what} has no method {name}"
    why = _method_refusal(descriptor, owner, is_class)
    if why is not None:
        return None, why
    if is_class:
        return descriptor.__get__(None, obj), None
    return descriptor.__get__(obj, type(obj)), None


def _method_refusal(descriptor: Any, owner: type, is_class: bool) -> str | None:
    """None when `descriptor` (found in `owner`'s namespace) binds to a method
    that may be stored; otherwise why not."""
    kind = type(descriptor)
    if is_class:
        if kind is classmethod:
            function = descriptor.__func__
            return None if is_decorated(function) else _method_of_project(function, owner)
        if is_decorated(descriptor) and descriptor.kind == "classmethod":
            return None
        if kind is types.ClassMethodDescriptorType:
            return _builtin_method(owner)
        return f"{owner.__qualname__}.{_name(descriptor)} is not a classmethod"
    if kind is types.FunctionType:
        return _method_of_project(descriptor, owner)
    if is_decorated(descriptor) and descriptor.kind is None:
        return None
    if kind is types.MethodDescriptorType:
        return _builtin_method(owner)
    return f"{owner.__qualname__}.{_name(descriptor)} is a {kind.__qualname__}, not a method"


def _name(descriptor: Any) -> str:
    name = getattr(descriptor, "__name__", None)
    return name if isinstance(name, str) else "?"


def _method_of_project(function: Any, owner: type) -> str | None:
    """A method's function (a plain function): defined in one of the
    project's modules, or a target of register_alias."""
    if is_alias_target(function):
        return None
    module_name = getattr(function, "__module__", None)
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    file = module.__dict__.get("__file__") if isinstance(module, types.ModuleType) else None
    if isinstance(file, str) and in_project(file):
        return None
    where = f"{module_name} ({file})" if isinstance(file, str) else f"{module_name}"
    return (
        f"its function {getattr(function, '__qualname__', '?')} is defined in {where}, "
        "which is not one of the project's modules"
    )


def _builtin_method(owner: type) -> str | None:
    """A C method: only of a built-in value type (CONSTRUCTORS)."""
    if id(owner) in _CONSTRUCTOR_IDS:
        return None
    return f"it is a method of {owner.__module__}.{owner.__qualname__}, which is not a value type"
