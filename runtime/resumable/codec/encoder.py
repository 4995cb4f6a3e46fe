"""Python values -> the JSON tree of a checkpoint (the general path).

JSON values stand for themselves; anything else is a one-key object whose key
is a `$tag`:

    (1, 2**70)            {"$tuple": [1, {"$int": "1180591620717411303424"}]}
    {1: "a"}              {"$dict": [[1, "a"]]}
    Order(id=3)           {"$dataclass": ["shop:Order", {"id": 3}]}
    Color.RED             {"$enum": ["shop:Color", "RED"]}
    cart.total            {"$method": [{"$dataclass": ["shop:Cart", {...}]}, "total"]}

An object met twice is written once: its first occurrence is wrapped as
`{"$id": n, "$v": ...}` (when it is finished, or at once if it contains
itself) and later ones are `{"$ref": n}`. Tuples, frozensets and other values
built from their items cannot contain themselves: that is refused.

Errors raise `Unencodable` with the path from the outermost value
(`.items[3].lock`); callers turn it into SerializationError.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import math
import pathlib
import sys
import types
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from ..roots import in_project
from . import allowed, kinds
from .registry import NotFindable, codec_for, internal_for, qualified_name, reference_name

__all__ = ["Encoder", "Unencodable"]

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_OPEN, _SEALED, _DONE = 0, 1, 2


class Unencodable(Exception):
    """A value cannot be encoded. `path` is filled in while unwinding,
    innermost step first; `where()` gives it from the outermost value."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.path: list[str] = []
        self.variable = ""

    def where(self) -> str:
        steps = self.path[::-1]
        if len(steps) > 12:  # a very deep value: its ends say where it is
            steps[6:-4] = [f"...({len(steps) - 10} steps)..."]
        return "".join(steps)


_EXCEPTION_DUNDERS = frozenset({"__notes__"})


def _utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


#: `Encoder.child` was given no argument to format its step with.
_NO_ARG: Any = object()


class Encoder:
    """One encoding. `size` is a running estimate (a lower bound) of the
    encoded bytes: the lengths of the strings and bytes met, so that a value
    over `max_bytes` is refused (`too_big`) before it is copied. `imports`:
    the modules a reader may import (the compiled function's), None when not
    known (modules are then not checked here, only when decoding)."""

    __slots__ = (
        "closures",
        "imports",
        "max_bytes",
        "max_depth",
        "max_digits",
        "memo",
        "next_id",
        "size",
    )

    def __init__(
        self,
        max_depth: int,
        max_digits: int,
        max_bytes: int,
        imports: frozenset[str] | None = None,
        closures: Any = None,
    ) -> None:
        # id(obj) -> [holder, key, assigned id or None, _OPEN/_SEALED/_DONE, obj]
        self.memo: dict[int, list[Any]] = {}
        self.next_id = 0
        self.max_depth = max_depth
        self.max_digits = max_digits
        self.max_bytes = max_bytes
        self.imports = imports
        #: In a checkpoint: the closures of its function over the run's
        #: locals (resumable.closures), which it stores by their definition.
        self.closures = closures
        self.size = 0

    def too_big(self, x: Any) -> Unencodable:
        return Unencodable(
            x, f"with it the value is at least {self.size} bytes encoded, more than the limit "
            f"of {self.max_bytes} (Limits.max_bytes); keep large data out of the checkpoint "
            "(store it elsewhere and keep its key)"
        )  # fmt: skip

    # -- identity ---------------------------------------------------------------

    def remember(self, x: Any, holder: Any, key: Any, state: int = _OPEN) -> None:
        self.memo[id(x)] = [holder, key, None, state, x]

    def seal(self, x: Any, sealed: bool) -> None:
        self.memo[id(x)][3] = _SEALED if sealed else _OPEN

    def ref(self, obj: Any) -> Any:
        entry = self.memo[id(obj)]
        n = entry[2]
        if n is None:
            if entry[3] == _SEALED:
                raise Unencodable(
                    obj, "it contains itself through a value that is built from its items "
                    "(a tuple, frozenset, named tuple or exception args)"
                )  # fmt: skip
            n = entry[2] = self.next_id
            self.next_id += 1
            if entry[3] == _DONE:  # written already: wrap it where it is
                holder, key = entry[0], entry[1]
                holder[key] = {"$id": n, "$v": holder[key]}
        return {"$ref": n}

    def finish(self, x: Any, encoded: Any) -> Any:
        entry = self.memo[id(x)]
        entry[3] = _DONE
        n = entry[2]
        return encoded if n is None else {"$id": n, "$v": encoded}

    # -- building blocks -------------------------------------------------------------

    def child(
        self, x: Any, holder: Any, key: Any, step: str, depth: int, arg: Any = _NO_ARG
    ) -> Any:
        """Encode `x`; on failure, add `step` (formatted with `arg` when one
        is given: built only then) to the error's path."""
        try:
            return self.enc(x, holder, key, depth)
        except Unencodable as e:
            e.path.append(step if arg is _NO_ARG else step.format(arg))
            raise

    def items(self, values: Any, step: str, depth: int) -> list[Any]:
        """Encode an iterable's items into a new list (not itself memoized)."""
        out: list[Any] = []
        for i, item in enumerate(values):
            out.append(None)
            out[i] = self.child(item, out, i, step, depth, i)
        return out

    def attributes(
        self, x: Any, attrs: Any, depth: int, allowed: frozenset[str] = frozenset()
    ) -> Any:
        """An object's attributes (a JSON object); dunder names are refused, as
        decoding refuses them."""
        for k in attrs:
            if k.startswith("__") and k.endswith("__") and k not in allowed:
                raise Unencodable(
                    x, f"its attribute {k} is a dunder name, which a checkpoint does not store"
                )
        return self.mapping(attrs.items(), ".{}", depth)

    def mapping(self, pairs: Any, step: str, depth: int) -> Any:
        """Encode str-keyed pairs as a JSON object (not itself memoized)."""
        obj: dict[str, Any] = {}
        for k, v in pairs:
            obj[k] = None
            obj[k] = self.child(v, obj, k, step, depth, k)
        if any(k.startswith("$") for k in obj):
            return {"$dict": [[k, v] for k, v in obj.items()]}
        return obj

    def pairs(self, items: Any, depth: int) -> list[Any]:
        out: list[Any] = []
        for k, v in items:
            pair: list[Any] = [None, None]
            pair[0] = self.child(k, pair, 0, ".keys()[{!r:.40}]", depth + 1, k)
            pair[1] = self.child(v, pair, 1, "[{!r:.40}]", depth + 1, k)
            out.append(pair)
        return out

    # -- the walk --------------------------------------------------------------------

    def enc(self, x: Any, holder: Any, key: Any, depth: int) -> Any:
        """Encode `x`, to be stored at holder[key], `depth` JSON levels deep."""
        t = type(x)
        if t is str:
            self.size += len(x)  # checked before a copy, and by the caller when done
            if x.isascii():
                return x
            if self.size > self.max_bytes:
                raise self.too_big(x)
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: JSON cannot hold them as text
                return {
                    "$str": base64.b64encode(x.encode("utf-8", "surrogatepass")).decode("ascii")
                }
            return x
        if x is None or t is bool:
            return x
        if t is int:
            if _INT_MIN <= x <= _INT_MAX:
                return x
            text = str(x) if x.bit_length() < 10_000 else hex(x)
            if len(text) > self.max_digits:
                raise Unencodable(
                    x, f"it is an int of more than {self.max_digits} digits (the limit)"
                )
            return {"$int": text}
        if t is float:
            return x if math.isfinite(x) else {"$float": repr(x)}
        if depth > self.max_depth:
            raise Unencodable(
                x, f"it is nested more than {self.max_depth} levels deep; "
                "store it flatter (for example a list of nodes instead of linked nodes)"
            )  # fmt: skip
        if id(x) in self.memo:
            return self.ref(x)
        method = _BY_TYPE.get(t)
        if method is not None:
            return method(self, x, holder, key, depth)
        return self.other(x, holder, key, depth)

    def list_(self, x: list[Any], holder: Any, key: Any, depth: int) -> Any:
        self.remember(x, holder, key)
        return self.finish(x, self.items(x, "[{}]", depth + 1))

    def dict_(self, x: dict[Any, Any], holder: Any, key: Any, depth: int) -> Any:
        self.remember(x, holder, key)
        if all(type(k) is str and not k.startswith("$") and (k.isascii() or _utf8(k)) for k in x):
            obj: dict[str, Any] = {}
            for k, v in x.items():
                obj[k] = None
                obj[k] = self.child(v, obj, k, "[{!r:.40}]", depth + 1, k)
            return self.finish(x, obj)
        return self.finish(x, {"$dict": self.pairs(x.items(), depth + 2)})

    def tuple_(self, x: tuple[Any, ...], holder: Any, key: Any, depth: int) -> Any:
        self.remember(x, holder, key, _SEALED)
        return self.finish(x, {"$tuple": self.items(x, "[{}]", depth + 2)})

    def frozenset_(self, x: frozenset[Any], holder: Any, key: Any, depth: int) -> Any:
        self.remember(x, holder, key, _SEALED)
        return self.finish(x, {"$frozenset": self.items(x, "{{member {}}}", depth + 2)})

    def set_(self, x: set[Any], holder: Any, key: Any, depth: int) -> Any:
        self.remember(x, holder, key)
        return self.finish(x, {"$set": self.items(x, "{{member {}}}", depth + 2)})

    def bytearray_(self, x: bytearray, holder: Any, key: Any, depth: int) -> Any:
        self.base64_size(x)
        self.remember(x, holder, key)
        return self.finish(x, {"$bytearray": base64.b64encode(x).decode("ascii")})

    def base64_size(self, x: bytes | bytearray) -> None:
        self.size += (len(x) + 2) // 3 * 4
        if self.size > self.max_bytes:
            raise self.too_big(x)

    # -- values -----------------------------------------------------------------------

    def bytes_(self, x: bytes, holder: Any, key: Any, depth: int) -> Any:
        self.base64_size(x)
        return {"$bytes": base64.b64encode(x).decode("ascii")}

    def range_(self, x: range, holder: Any, key: Any, depth: int) -> Any:
        return {"$range": self.items((x.start, x.stop, x.step), ".<range {}>", depth + 2)}

    def complex_(self, x: complex, holder: Any, key: Any, depth: int) -> Any:
        return {"$complex": self.items((x.real, x.imag), ".<complex {}>", depth + 2)}

    def decimal_(self, x: decimal.Decimal, holder: Any, key: Any, depth: int) -> Any:
        text = str(x)
        if len(text) > self.max_digits:
            raise Unencodable(
                x, f"it is a Decimal of more than {self.max_digits} digits (the limit)"
            )
        return {"$decimal": text}

    def uuid_(self, x: uuid.UUID, holder: Any, key: Any, depth: int) -> Any:
        if x.is_safe is uuid.SafeUUID.unknown:
            return {"$uuid": str(x)}
        return {"$uuid": [str(x), x.is_safe.value]}

    def fraction_(self, x: fractions.Fraction, holder: Any, key: Any, depth: int) -> Any:
        return {"$fraction": self.items((x.numerator, x.denominator), ".<fraction {}>", depth + 2)}

    def datetime_(self, x: datetime.datetime, holder: Any, key: Any, depth: int) -> Any:
        tz = self.child(x.tzinfo, None, None, ".tzinfo", depth + 2)
        return {
            "$datetime": [
                x.year,
                x.month,
                x.day,
                x.hour,
                x.minute,
                x.second,
                x.microsecond,
                x.fold,
                tz,
            ]
        }

    def date_(self, x: datetime.date, holder: Any, key: Any, depth: int) -> Any:
        return {"$date": [x.year, x.month, x.day]}

    def time_(self, x: datetime.time, holder: Any, key: Any, depth: int) -> Any:
        tz = self.child(x.tzinfo, None, None, ".tzinfo", depth + 2)
        return {"$time": [x.hour, x.minute, x.second, x.microsecond, x.fold, tz]}

    def timedelta_(self, x: datetime.timedelta, holder: Any, key: Any, depth: int) -> Any:
        return {"$timedelta": [x.days, x.seconds, x.microseconds]}

    def timezone_(self, x: datetime.timezone, holder: Any, key: Any, depth: int) -> Any:
        args = x.__getinitargs__()  # type: ignore[attr-defined]  # (offset,) or (offset, name)
        offset: datetime.timedelta = args[0]
        name = args[1] if len(args) > 1 else None
        return {"$timezone": [offset.days, offset.seconds, offset.microseconds, name]}

    def zoneinfo_(self, x: zoneinfo.ZoneInfo, holder: Any, key: Any, depth: int) -> Any:
        if x.key is None:
            raise Unencodable(
                x, "it is a ZoneInfo read from a file, which has no key to find it again"
            )
        return {"$zoneinfo": x.key}

    def path_(self, x: pathlib.PurePath, holder: Any, key: Any, depth: int) -> Any:
        return {"$path": [type(x).__name__, str(x)]}

    def module_(self, x: types.ModuleType, holder: Any, key: Any, depth: int) -> Any:
        name = x.__name__
        if sys.modules.get(name) is not x:
            raise Unencodable(x, "it is a module that is not in sys.modules")
        if self.imports is not None and name not in self.imports:
            file = x.__dict__.get("__file__")
            if not (isinstance(file, str) and in_project(file)):
                raise Unencodable(
                    x, f"it is the module {name}, which the function does not import and which "
                    "is not one of the project's modules: a checkpoint holds only modules its "
                    f"function imports (`import {name}` in the function) or the project's"
                )  # fmt: skip
        return {"$module": name}

    def function_(self, x: Any, holder: Any, key: Any, depth: int) -> Any:
        if self.closures is not None and self.closures.owns(x):
            return self.closures.encode(self, x, holder, key, depth)
        if type(x) is types.FunctionType and "<locals>" in x.__code__.co_qualname:
            raise Unencodable(x, _closure_elsewhere(x, self.closures))
        owner = getattr(x, "__self__", None)
        if type(x) is types.BuiltinFunctionType and not (
            owner is None or isinstance(owner, types.ModuleType)
        ):
            return self.method(x, owner, x.__name__, depth)  # "-".join, items.append
        return {"$function": self.allowed(x, self.reference(x))}

    def bound_method(self, x: types.MethodType, holder: Any, key: Any, depth: int) -> Any:
        return self.method(x, x.__self__, _attribute_name(x.__func__), depth)

    def method(self, x: Any, obj: Any, name: Any, depth: int) -> Any:
        """A bound method: its object and its name, bound again when decoded
        (allowed.bind_method); it must be what binding the name gives."""
        bound, why = allowed.bind_method(obj, name)
        if why is None and bound != x:
            why = f"`{type_name(type(obj))}.{name}` is another method than this one"
        if why is not None:
            raise Unencodable(
                x, f"it is a bound method that may not be stored in a checkpoint: {why}; "
                f"{allowed.RULE}"
            )  # fmt: skip
        payload: list[Any] = [None, name]
        payload[0] = self.child(obj, payload, 0, ".__self__", depth + 2)
        return {"$method": payload}

    def super_(self, x: super, holder: Any, key: Any, depth: int) -> Any:
        """`super(C, obj)`: the class and the object, given to super() again."""
        obj = getattr(x, "__self__", None)
        if obj is None:
            raise Unencodable(x, "it is an unbound super object (super(C) with no object)")
        payload: list[Any] = [None, None]
        cls = getattr(x, "__thisclass__", None)
        payload[0] = self.child(cls, payload, 0, ".__thisclass__", depth + 2)
        payload[1] = self.child(obj, payload, 1, ".__self__", depth + 2)
        return {"$super": payload}

    def reference(self, x: Any) -> str:
        try:
            return reference_name(x)
        except NotFindable as e:
            raise Unencodable(x, str(e)) from None

    def allowed(self, x: Any, name: str) -> str:
        """`name`, when `x` (a function or class) may be stored as a value."""
        why = allowed.refusal(x)
        if why is not None:
            raise Unencodable(x, _refused(name, why))
        return name

    def decorated(self, x: Any) -> str:
        """The name of a decorated function: its function id, by which the
        decoder finds it among the decorated functions."""
        name = getattr(x, "function_id", None)
        if "<" in x.__qualname__ or type(name) is not str or allowed.decorated_named(name) is not x:
            return self.reference(x)  # not found by its id: the reference explains why
        return name

    # -- everything else ---------------------------------------------------------------

    def other(self, x: Any, holder: Any, key: Any, depth: int) -> Any:
        t = type(x)
        codec = codec_for(t)
        if codec is not None:
            self.remember(x, holder, key, _SEALED)
            try:
                value = codec.encode(x)
            except Exception as e:
                raise Unencodable(x, f"the codec registered for it failed: {e!r:.200}") from None
            payload = self.child(value, None, None, f".<{codec.name}>", depth + 2)
            return self.finish(x, {"$codec": [codec.name, payload]})
        internal = internal_for(t)
        if internal is not None:
            self.remember(x, holder, key)
            tag, to_state, _ = internal
            return self.finish(
                x, {"$" + tag: self.items(to_state(x), ".<" + tag + " {}>", depth + 2)}
            )
        if isinstance(x, BaseException):
            return self.exception(x, holder, key, depth)
        if isinstance(x, enum.Enum):
            return self.enum(x, depth)
        if isinstance(x, type):
            return {"$class": self.allowed(x, self.reference(x))}
        if kinds.is_dataclass_instance(x):
            return self.dataclass(x, holder, key, depth)
        if kinds.is_namedtuple_class(t):
            self.remember(x, holder, key, _SEALED)
            return self.finish(
                x, {"$namedtuple": [self.reference(t), self.items(x, ".{}", depth + 3)]}
            )
        if kinds.is_pydantic_model(t):
            return self.pydantic(x, holder, key, depth)
        if isinstance(x, pathlib.PurePath) and t.__module__ == "pathlib":
            return self.path_(x, holder, key, depth)
        if isinstance(x, datetime.tzinfo) and t in (datetime.timezone, zoneinfo.ZoneInfo):
            return _BY_TYPE[t](self, x, holder, key, depth)
        base = kinds.subclass_base(t)
        if base is not None:
            return self.subclass(x, base, holder, key, depth)
        if allowed.is_decorated(x):
            return {"$function": self.decorated(x)}
        if allowed.is_bound_decorated(x):  # obj.method of a decorated method
            return self.method(x, x.__self__, _attribute_name(x.__func__), depth)
        raise Unencodable(x, _not_storable(t))

    def enum(self, x: enum.Enum, depth: int) -> Any:
        name = self.reference(type(x))
        if x._name_ is not None and x._name_ in type(x).__members__:
            return {"$enum": [name, x._name_]}
        if isinstance(x, enum.Flag) and type(x._value_) is int:  # a combination of flags
            return {"$enum": [name, x._value_]}
        raise Unencodable(x, f"{type_name(type(x))} member {x!r} has no name")

    def dataclass(self, x: Any, holder: Any, key: Any, depth: int) -> Any:
        t = type(x)
        name = self.reference(t)
        self.remember(x, holder, key)
        values = getattr(x, "__dict__", None)
        if values is None:  # slots
            values = {
                f.name: getattr(x, f.name) for f in dataclasses.fields(x) if hasattr(x, f.name)
            }
        return self.finish(x, {"$dataclass": [name, self.attributes(x, values, depth + 3)]})

    def pydantic(self, x: Any, holder: Any, key: Any, depth: int) -> Any:
        name = self.reference(type(x))
        self.remember(x, holder, key, _SEALED)
        fields = self.mapping(x.__dict__.items(), ".{}", depth + 3)
        extra = x.__pydantic_extra__
        private = x.__pydantic_private__
        return self.finish(
            x,
            {
                "$pydantic": [
                    name,
                    fields,
                    sorted(x.__pydantic_fields_set__),
                    None if extra is None else self.mapping(extra.items(), ".{}", depth + 3),
                    None if private is None else self.mapping(private.items(), ".{}", depth + 3),
                ]
            },
        )

    def subclass(self, x: Any, base: type, holder: Any, key: Any, depth: int) -> Any:
        """An instance of a subclass of a built-in type (or an exact
        OrderedDict, defaultdict, Counter or deque): its class, the base's own
        storage, and its attributes."""
        t = type(x)
        name = qualified_name(t) if t.__module__ == "collections" else self.reference(t)
        mutable = base not in (tuple, frozenset, str, bytes, int, float)
        self.remember(x, holder, key, _OPEN if mutable else _SEALED)
        body: dict[str, Any] = {"class": name}
        if issubclass(base, dict):
            body["items"] = self.pairs(dict.items(x), depth + 3)
            if base is collections.defaultdict:
                body["factory"] = self.factory(x.default_factory, depth + 2)
        elif base in (list, set, frozenset, tuple, collections.deque):
            body["items"] = self.items(base.__iter__(x), "[{}]", depth + 3)
            if base is collections.deque:
                body["maxlen"] = x.maxlen
        else:
            read: Callable[[Any], Any] = _BASE_VALUE[base]
            value = read(x)
            body["value"] = self.enc(value, None, None, depth + 2)
        attrs = getattr(x, "__dict__", None)
        if attrs:
            body["attrs"] = self.attributes(x, attrs, depth + 3)
        return self.finish(x, {"$sub": body})

    def factory(self, factory: Any, depth: int) -> Any:
        """A defaultdict's default_factory: the decoder sets only an allowed one."""
        if factory is None:
            return None
        encoded = self.child(factory, None, None, ".default_factory", depth)
        why = allowed.refusal(factory)
        if why is not None:  # an instance: functions and classes were checked as values
            error = Unencodable(
                factory, f"a defaultdict's factory must be a function or class, and {why}; "
                f"{allowed.RULE}"
            )  # fmt: skip
            error.path.append(".default_factory")
            raise error
        return encoded

    def exception(self, x: BaseException, holder: Any, key: Any, depth: int) -> Any:
        t = type(x)
        if "<locals>" in t.__qualname__:
            raise Unencodable(
                x, f"its class {t.__qualname__} is defined inside a function and cannot be found "
                "when the run resumes; define the exception class at module level"
            )  # fmt: skip
        name = self.reference(t)
        # args are decoded before the exception exists: no cycle through them.
        self.remember(x, holder, key, _SEALED)
        body: dict[str, Any] = {"type": name, "args": self.items(x.args, ".args[{}]", depth + 3)}
        self.seal(x, False)
        attrs = {
            k: v for k, v in getattr(x, "__dict__", {}).items() if k != kinds.TRACEBACK_ATTRIBUTE
        }
        if attrs:
            body["attrs"] = self.attributes(x, attrs, depth + 3, _EXCEPTION_DUNDERS)
        fields: dict[str, Any] = {}
        for k, v in kinds.exception_fields(x).items():
            try:  # AttributeError.obj may hold anything: kept when it can be
                fields[k] = self.enc(v, fields, k, depth + 3)
            except Unencodable:
                continue
        if fields:
            body["fields"] = fields
        if x.__context__ is not None:
            body["context"] = self.child(x.__context__, body, "context", ".__context__", depth + 2)
        if x.__cause__ is not None:
            body["cause"] = self.child(x.__cause__, body, "cause", ".__cause__", depth + 2)
        if x.__suppress_context__:
            body["suppress_context"] = True
        text = kinds.traceback_text(x)
        if text:
            body["traceback"] = text
        return self.finish(x, {"$exc": body})


#: Awaitables that are already running: they cannot be written down and resumed.
_STARTED = (asyncio.Future, types.CoroutineType)

#: The value a str/bytes/int/float subclass instance stores (its own methods not called).
_BASE_VALUE: dict[type, Callable[[Any], Any]] = {
    str: str.__str__,
    bytes: bytes.__bytes__,
    int: int.__int__,
    float: float.__float__,
}


def _attribute_name(function: Any) -> Any:
    """The class attribute a method's function is found under: its name, or
    for a private method its mangled name (`__fee` of Cart: `_Cart__fee`)."""
    name = getattr(function, "__name__", None)
    qualname = getattr(function, "__qualname__", None)
    if not (isinstance(name, str) and isinstance(qualname, str)):
        return name
    if name.startswith("__") and not name.endswith("__") and qualname.count("."):
        owner = qualname.rsplit(".", 2)[-2].lstrip("_")
        if owner:
            return f"_{owner}{name}"
    return name


def _closure_elsewhere(x: Any, closures: Any) -> str:
    qualname = x.__code__.co_qualname
    outer = qualname.rpartition(".<locals>.")[0]
    if closures is None:
        return (
            f"it is the function {qualname}, defined inside {outer}: a closure cannot leave "
            "the run that defined it (be returned, or passed to another run), since it "
            "shares that run's variables; return or pass the values it needs instead"
        )
    return (
        f"it is the function {qualname}, defined inside {outer}, and a checkpoint holds "
        f"only the lambdas and functions defined in {closures.function} itself; define it "
        "there, or at module level"
    )


def _refused(name: str, why: str) -> str:
    short = name.rpartition(":")[2]
    return (
        f"{name} may not be stored in a checkpoint: {why}; {allowed.RULE}. To store it "
        f"anyway, register it at import time: resumable.register_alias({name!r}, {short})"
    )


def _not_storable(t: type) -> str:
    name = type_name(t)
    if issubclass(t, _STARTED) or (t.__name__ == "Call" and t.__module__ == "resumable.function"):
        return (
            f"{name} is a task, future or coroutine started before the await: after a crash "
            "it could not be awaited again. Create it inside the await instead "
            "(`await f(...)`, `await asyncio.gather(f(), g())`), so that the call is made "
            "again from the checkpoint"
        )
    return (
        f"{name} cannot be stored in a checkpoint: it is not a dataclass, Enum, NamedTuple, "
        f"exception or pydantic model, and no codec is registered for it "
        f"(resumable.register_codec({t.__qualname__}, encode, decode))"
    )


_BY_TYPE: dict[type, Callable[[Encoder, Any, Any, Any, int], Any]] = {
    list: Encoder.list_,
    dict: Encoder.dict_,
    tuple: Encoder.tuple_,
    set: Encoder.set_,
    frozenset: Encoder.frozenset_,
    bytes: Encoder.bytes_,
    bytearray: Encoder.bytearray_,
    range: Encoder.range_,
    complex: Encoder.complex_,
    decimal.Decimal: Encoder.decimal_,
    uuid.UUID: Encoder.uuid_,
    fractions.Fraction: Encoder.fraction_,
    datetime.datetime: Encoder.datetime_,
    datetime.date: Encoder.date_,
    datetime.time: Encoder.time_,
    datetime.timedelta: Encoder.timedelta_,
    datetime.timezone: Encoder.timezone_,
    zoneinfo.ZoneInfo: Encoder.zoneinfo_,
    types.ModuleType: Encoder.module_,
    types.FunctionType: Encoder.function_,
    types.BuiltinFunctionType: Encoder.function_,
    types.MethodType: Encoder.bound_method,
    super: Encoder.super_,
}
