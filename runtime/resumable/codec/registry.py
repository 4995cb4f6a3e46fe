"""Names of classes and functions in checkpoints, and the codecs users register.

A class is written as `module:qualname` and found again only among modules
already imported, through module and class namespaces (never a module's or
class's `__getattr__`, never an import). Aliases let an old name decode after
a class moved or was renamed:

    resumable.register_alias("shop.models:Order", Order)   # Order now lives elsewhere

A type the codec does not know is made storable with a registered codec:

    resumable.register_codec(Money, lambda m: [m.amount, m.currency],
                             lambda v: Money(*v), name="shop:Money")
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import CheckpointError

__all__ = [
    "Codec",
    "codec_for",
    "codec_named",
    "internal_for",
    "internal_named",
    "is_alias_target",
    "qualified_name",
    "reference_name",
    "register_alias",
    "register_codec",
    "register_internal",
    "resolve",
    "resolve_class",
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Codec:
    cls: type
    name: str
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_codecs_by_type: dict[type, Codec] = {}
_codecs_by_name: dict[str, Codec] = {}
_aliases: dict[str, Any] = {}
#: id -> target of every alias (kept alive by _aliases): allowed as stored values.
_alias_targets: dict[int, Any] = {}

# Runtime-owned types (loop cursors): type -> (tag, to_state, from_state).
_internal_by_type: dict[
    type, tuple[str, Callable[[Any], Sequence[Any]], Callable[[list[Any]], Any]]
] = {}
_internal_by_tag: dict[str, tuple[type, Callable[[list[Any]], Any]]] = {}

_BUILTIN_VALUE_TYPES = (str, int, float, bool, bytes, bytearray, list, dict, tuple, set, frozenset)


def register_codec(
    cls: type,
    encode: Callable[[Any], Any],
    decode: Callable[[Any], Any],
    *,
    name: str | None = None,
    aliases: tuple[str, ...] | list[str] = (),
) -> None:
    """Store instances of `cls` as `encode(obj)` (any value the codec can
    store) and rebuild them with `decode(value)`. `name` (default
    `module:qualname`) is what checkpoints record; keep it when the class
    moves, or list the old names in `aliases`."""
    if not isinstance(cls, type):
        raise TypeError(f"register_codec: {cls!r} is not a class")
    if cls in _BUILTIN_VALUE_TYPES or cls is type(None):
        raise TypeError(
            f"register_codec: {cls.__name__} is stored natively and cannot be registered"
        )
    codec = Codec(cls, name or qualified_name(cls), encode, decode)
    previous = _codecs_by_name.get(codec.name)
    if previous is not None and previous.cls is not cls:
        raise ValueError(
            f"register_codec: the name {codec.name!r} is already used by {previous.cls!r}"
        )
    _codecs_by_type[cls] = codec
    _codecs_by_name[codec.name] = codec
    for alias in aliases:
        _codecs_by_name[alias] = codec


def register_alias(old_name: str, target: Any) -> None:
    """Decode checkpoints naming `old_name` (`module:qualname`) as `target`
    (a class or function), after it moved or was renamed. The target may be
    stored in checkpoints as a value, wherever it is defined (see
    codec/allowed.py): `register_alias("lib.mod:name", lib.mod.name)` allows
    a function or class of an installed package."""
    if ":" not in old_name:
        raise ValueError(f"register_alias: {old_name!r} is not of the form 'module:qualname'")
    _aliases[old_name] = target
    _alias_targets.clear()  # an alias registered again no longer allows its old target
    _alias_targets.update((id(t), t) for t in _aliases.values())


def is_alias_target(obj: Any) -> bool:
    """Whether `obj` is the target of a registered alias."""
    return _alias_targets.get(id(obj)) is obj


def register_internal(
    cls: type,
    tag: str,
    to_state: Callable[[Any], Sequence[Any]],
    from_state: Callable[[list[Any]], Any],
) -> None:
    """Register a runtime-owned type (a loop cursor) under `$tag`: written as
    the items of `to_state(value)` (a sequence), rebuilt by `from_state` of
    their list."""
    _internal_by_type[cls] = (tag, to_state, from_state)
    _internal_by_tag[tag] = (cls, from_state)


def codec_for(cls: type) -> Codec | None:
    return _codecs_by_type.get(cls)


def codec_named(name: str) -> Codec | None:
    return _codecs_by_name.get(name)


def internal_for(
    cls: type,
) -> tuple[str, Callable[[Any], Sequence[Any]], Callable[[list[Any]], Any]] | None:
    return _internal_by_type.get(cls)


def internal_named(tag: str) -> tuple[type, Callable[[list[Any]], Any]] | None:
    return _internal_by_tag.get(tag)


def qualified_name(cls: Any) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def lookup(obj: Any, qualname: str) -> Any:
    """Follow a qualname through module and class namespaces only."""
    for part in qualname.split("."):
        namespace = getattr(obj, "__dict__", None) if obj is not None else None
        if not isinstance(namespace, dict | types.MappingProxyType) or part not in namespace:
            return None
        obj = namespace[part]
    return obj


class NotFindable(Exception):
    """Internal: a class or function cannot be found again by its name."""


def reference_name(x: Any) -> str:
    """`module:qualname` of a class or function that can be found again by name."""
    module, qualname = getattr(x, "__module__", None), getattr(x, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise NotFindable(
            "it is defined inside a function (or has no importable name) and cannot be found "
            "by name when the run resumes; define it at module level"
        )
    found = lookup(sys.modules.get(module), qualname)
    if found is not x:
        raise NotFindable(f"{module}:{qualname} does not name it (was it rebound or replaced?)")
    return f"{module}:{qualname}"


def resolve(name: Any) -> Any:
    """Find `module:qualname` (or a registered alias) among modules already
    imported; never imports and never calls `__getattr__`."""
    if type(name) is not str:
        raise CheckpointError(f"a class name in the checkpoint is not a string: {name!r:.60}")
    if name in _aliases:
        return _aliases[name]
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not qualname:
        raise CheckpointError(
            f"checkpoint names {name!r:.200}, but module {module_name!r:.100} is not imported; "
            "import it before resuming the run (or register an alias if it moved)"
        )
    found = lookup(module, qualname)
    if found is None:
        raise CheckpointError(
            f"checkpoint names {name!r:.200}, which does not exist "
            "(if it moved or was renamed, register an alias: resumable.register_alias)"
        )
    return found


def resolve_class(
    name: Any, base: type[_T], check: Callable[[type], bool] | None = None, kind: str = ""
) -> type[_T]:
    """`resolve`, checked to be a subclass of `base` (and to pass `check`)."""
    obj = resolve(name)
    if not (isinstance(obj, type) and issubclass(obj, base) and (check is None or check(obj))):
        what = kind or f"a {base.__name__} subclass"
        raise CheckpointError(f"checkpoint names {name!r:.200} as {what}, but it is {obj!r:.100}")
    return obj
