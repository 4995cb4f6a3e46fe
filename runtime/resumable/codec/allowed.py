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
- a class with a registered codec, or a target of `register_alias`.

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

__all__ = ["CONSTRUCTORS", "RULE", "check", "decorated_named", "is_decorated", "refusal"]

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

#: What a checkpoint may hold, for error messages.
RULE = (
    "a checkpoint holds as values only decorated functions, functions and classes of the "
    "project's own modules (under the working directory or [tool.resumable] roots in "
    "pyproject.toml), built-in constructors (value types, exception classes, the standard "
    "library's value classes the codec stores), classes with a registered codec, and targets "
    "of resumable.register_alias"
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
        if is_alias_target(obj):
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
