"""The JSON tree of a checkpoint -> Python values (the general path).

Safety: decoding builds only built-in types, and instances of classes already
imported whose kind was checked (a dataclass, Enum, NamedTuple, exception,
pydantic model, or a subclass of a built-in type), without running their
`__init__`, validators or overridden methods; registered codecs run the
function their owner registered. A function or class stored as a value (which
the user's code may call) must be allowed (allowed.py); a module, imported by
the compiled function (`imports`, the only modules it may import) or one of
the project's. Anything unexpected raises CheckpointError; nesting deeper
than the limit is refused before Python's recursion limit is near.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import importlib
import pathlib
import sys
import types
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from ..errors import CheckpointError
from ..roots import in_project
from . import allowed, kinds
from .registry import codec_named, internal_named, resolve, resolve_class

__all__ = ["Decoder"]

_PATH_CLASSES = {
    c.__name__: c
    for c in (
        pathlib.PurePath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
        pathlib.Path, pathlib.PosixPath, pathlib.WindowsPath,
    )
}  # fmt: skip


def _fail(what: str) -> CheckpointError:
    return CheckpointError(f"malformed checkpoint: {what}")


def _list(body: Any, tag: str, n: int | None = None) -> list[Any]:
    if type(body) is not list or (n is not None and len(body) != n):
        raise _fail(f"bad {tag} value")
    return body


def _b64(body: Any, tag: str) -> bytes:
    if type(body) is not str:
        raise _fail(f"bad {tag} value")
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise _fail(f"bad {tag} value") from None


def _ints(values: Any, tag: str, n: int) -> list[int]:
    values = _list(values, tag)
    if len(values) < n or any(type(v) is not int for v in values[:n]):
        raise _fail(f"bad {tag} value")
    return values


class Decoder:
    __slots__ = ("closures", "imports", "max_depth", "max_int_digits", "objects", "version")

    def __init__(
        self,
        *,
        imports: frozenset[str],
        max_depth: int,
        max_int_digits: int,
        version: int,
        closures: Any = None,
    ) -> None:
        self.objects: dict[int, Any] = {}
        self.imports = imports
        #: In a checkpoint: rebuilds its function's closures over the locals
        #: being decoded (resumable.closures); None elsewhere.
        self.closures = closures
        self.max_depth = max_depth
        self.max_int_digits = max_int_digits
        self.version = version

    def dec(self, x: Any, depth: int = 0) -> Any:
        t = type(x)
        if t is list:
            if depth > self.max_depth:
                raise CheckpointError(
                    f"checkpoint is nested more than {self.max_depth} levels deep"
                )
            return [self.dec(item, depth + 1) for item in x]
        if t is not dict:
            return x
        if depth > self.max_depth:
            raise CheckpointError(f"checkpoint is nested more than {self.max_depth} levels deep")
        if len(x) != 1:
            if "$id" in x:
                return self.identified(x, depth)
            return {k: self.dec(v, depth + 1) for k, v in x.items()}
        [(tag, body)] = x.items()
        if not tag.startswith("$"):
            return {tag: self.dec(body, depth + 1)}
        return self.tagged(tag, body, None, depth)

    def identified(self, x: dict[str, Any], depth: int) -> Any:
        n = x.get("$id")
        if type(n) is not int or set(x) != {"$id", "$v"} or n in self.objects:
            raise _fail(f"identity wrapper {x!r:.80}")
        body = x["$v"]
        if type(body) is list:
            out: list[Any] = []
            self.objects[n] = out
            out.extend(self.dec(item, depth + 2) for item in body)
            return out
        if type(body) is not dict:
            raise _fail("identity wrapper around a plain value")
        if len(body) == 1:
            [(tag, inner)] = body.items()
            if tag.startswith("$"):
                return self.tagged(tag, inner, n, depth + 1)
        obj: dict[str, Any] = {}
        self.objects[n] = obj
        for k, v in body.items():
            obj[k] = self.dec(v, depth + 2)
        return obj

    def register(self, n: int | None, obj: Any) -> Any:
        if n is not None:
            self.objects[n] = obj
        return obj

    def tagged(self, tag: str, body: Any, n: int | None, depth: int) -> Any:
        handler = _TAGS.get(tag)
        if handler is not None:
            return handler(self, body, n, depth + 1)
        internal = internal_named(tag[1:])
        if internal is None:
            raise CheckpointError(f"unknown tag {tag!r:.60} in checkpoint")
        state = self.dec(_list(body, tag), depth + 1)
        try:
            return self.register(n, internal[1](state))
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise _fail(f"bad {tag} value ({e})") from None

    def mapping(self, body: Any, depth: int, what: str) -> dict[str, Any]:
        values = self.dec(body, depth)
        if type(values) is not dict or any(type(k) is not str for k in values):
            raise _fail(f"bad {what}")
        return values

    def attributes(self, obj: Any, body: Any, depth: int, what: str) -> None:
        """Set stored attributes with object.__setattr__ (no overridden
        __setattr__ runs); dunder names, which could change the object's class
        or namespace, are refused except `__notes__`."""
        for k, v in self.mapping(body, depth, what).items():
            if k.startswith("__") and k.endswith("__") and k != "__notes__":
                raise CheckpointError(f"checkpoint sets the attribute {k!r:.40} of {what}: refused")
            try:
                object.__setattr__(obj, k, v)
            except (AttributeError, TypeError) as e:
                raise CheckpointError(f"cannot restore {what} attribute {k!r:.40}: {e}") from None

    # -- containers ---------------------------------------------------------------

    def ref(self, body: Any, n: int | None, depth: int) -> Any:
        try:
            return self.objects[body]
        except (KeyError, TypeError):
            raise CheckpointError(f"reference to unknown object {body!r:.40}") from None

    def dict_pairs(self, body: Any, n: int | None, depth: int) -> Any:
        out: dict[Any, Any] = self.register(n, {})
        self.fill_pairs(out.__setitem__, body, depth)
        return out

    def fill_pairs(self, setitem: Callable[[Any, Any], None], body: Any, depth: int) -> None:
        for pair in _list(body, "$dict"):
            if type(pair) is not list or len(pair) != 2:
                raise _fail("$dict pair")
            key = self.dec(pair[0], depth + 2)  # the key first: it was written first
            try:
                setitem(key, self.dec(pair[1], depth + 2))
            except TypeError as e:
                raise _fail(f"unhashable key ({e})") from None

    def tuple_(self, body: Any, n: int | None, depth: int) -> Any:
        return self.register(n, tuple(self.dec(v, depth + 1) for v in _list(body, "$tuple")))

    def frozenset_(self, body: Any, n: int | None, depth: int) -> Any:
        try:
            return self.register(
                n, frozenset(self.dec(v, depth + 1) for v in _list(body, "$frozenset"))
            )
        except TypeError as e:
            raise _fail(f"unhashable $frozenset member ({e})") from None

    def set_(self, body: Any, n: int | None, depth: int) -> Any:
        out: set[Any] = self.register(n, set())
        try:
            for v in _list(body, "$set"):
                out.add(self.dec(v, depth + 1))
        except TypeError as e:
            raise _fail(f"unhashable $set member ({e})") from None
        return out

    def bytearray_(self, body: Any, n: int | None, depth: int) -> Any:
        return self.register(n, bytearray(_b64(body, "$bytearray")))

    # -- values ---------------------------------------------------------------------

    def str_(self, body: Any, n: int | None, depth: int) -> Any:
        try:
            return _b64(body, "$str").decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _fail("bad $str value") from None

    def int_(self, body: Any, n: int | None, depth: int) -> Any:
        if type(body) is not str or len(body) > self.max_int_digits:
            raise _fail("bad $int value (or longer than the limit)")
        try:
            return int(body, 16) if body.lstrip("-").startswith("0x") else int(body)
        except ValueError:
            raise _fail("bad $int value") from None

    def float_(self, body: Any, n: int | None, depth: int) -> Any:
        if body not in ("nan", "inf", "-inf"):
            raise _fail("bad $float value")
        return float(body)

    def bytes_(self, body: Any, n: int | None, depth: int) -> Any:
        return _b64(body, "$bytes")

    def range_(self, body: Any, n: int | None, depth: int) -> Any:
        fields = [self.dec(f, depth + 1) for f in _list(body, "$range", 3)]
        if any(type(f) is not int for f in fields) or fields[2] == 0:
            raise _fail("bad $range value")
        return range(*fields)

    def complex_(self, body: Any, n: int | None, depth: int) -> Any:
        parts = [self.dec(f, depth + 1) for f in _list(body, "$complex", 2)]
        if any(type(p) is not float for p in parts):
            raise _fail("bad $complex value")
        return complex(parts[0], parts[1])

    def decimal_(self, body: Any, n: int | None, depth: int) -> Any:
        if type(body) is not str or len(body) > self.max_int_digits:
            raise _fail("bad $decimal value")
        try:
            return decimal.Decimal(body)
        except decimal.InvalidOperation:
            raise _fail("bad $decimal value") from None

    def uuid_(self, body: Any, n: int | None, depth: int) -> Any:
        text, safe = (body, None) if type(body) is str else [*_list(body, "$uuid", 2), None][:2]
        try:
            if safe is None:
                return uuid.UUID(text)
            return uuid.UUID(text, is_safe=uuid.SafeUUID(safe))
        except (ValueError, TypeError, AttributeError):
            raise _fail("bad $uuid value") from None

    def fraction_(self, body: Any, n: int | None, depth: int) -> Any:
        num, den = (self.dec(f, depth + 1) for f in _list(body, "$fraction", 2))
        if type(num) is not int or type(den) is not int or den <= 0:
            raise _fail("bad $fraction value")
        return fractions.Fraction(num, den)

    def tz(self, body: Any, depth: int) -> datetime.tzinfo | None:
        tz = self.dec(body, depth)
        if tz is not None and not isinstance(tz, datetime.tzinfo):
            raise _fail("bad tzinfo")
        return tz

    def datetime_(self, body: Any, n: int | None, depth: int) -> Any:
        fields = _ints(_list(body, "$datetime", 9), "$datetime", 8)
        try:
            y, mo, d, h, mi, s, us, fold = fields[:8]
            return datetime.datetime(
                y, mo, d, h, mi, s, us, tzinfo=self.tz(fields[8], depth + 1), fold=fold
            )
        except (ValueError, TypeError, OverflowError):
            raise _fail("bad $datetime value") from None

    def date_(self, body: Any, n: int | None, depth: int) -> Any:
        try:
            return datetime.date(*_ints(_list(body, "$date", 3), "$date", 3))
        except (ValueError, TypeError, OverflowError):
            raise _fail("bad $date value") from None

    def time_(self, body: Any, n: int | None, depth: int) -> Any:
        fields = _ints(_list(body, "$time", 6), "$time", 5)
        try:
            h, mi, s, us, fold = fields[:5]
            return datetime.time(h, mi, s, us, tzinfo=self.tz(fields[5], depth + 1), fold=fold)
        except (ValueError, TypeError, OverflowError):
            raise _fail("bad $time value") from None

    def timedelta_(self, body: Any, n: int | None, depth: int) -> Any:
        try:
            return datetime.timedelta(*_ints(_list(body, "$timedelta", 3), "$timedelta", 3))
        except (ValueError, TypeError, OverflowError):
            raise _fail("bad $timedelta value") from None

    def timezone_(self, body: Any, n: int | None, depth: int) -> Any:
        fields = _list(body, "$timezone", 4)
        _ints(fields, "$timezone", 3)
        if fields[3] is not None and type(fields[3]) is not str:
            raise _fail("bad $timezone name")
        try:
            offset = datetime.timedelta(*fields[:3])
            return (
                datetime.timezone(offset)
                if fields[3] is None
                else datetime.timezone(offset, fields[3])
            )
        except (ValueError, TypeError, OverflowError):
            raise _fail("bad $timezone value") from None

    def zoneinfo_(self, body: Any, n: int | None, depth: int) -> Any:
        if type(body) is not str:
            raise _fail("bad $zoneinfo value")
        try:
            return zoneinfo.ZoneInfo(body)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            raise CheckpointError(f"time zone {body!r:.60} is not known on this machine") from None

    def path_(self, body: Any, n: int | None, depth: int) -> Any:
        kind, text = _list(body, "$path", 2)
        cls = _PATH_CLASSES.get(kind) if type(kind) is str else None
        if cls is None or type(text) is not str:
            raise _fail("bad $path value")
        try:
            return cls(text)
        except (NotImplementedError, ValueError):
            raise CheckpointError(f"a {kind} cannot be made on this system") from None

    # -- references ----------------------------------------------------------------------

    def module(self, body: Any, n: int | None, depth: int) -> Any:
        if type(body) is not str:
            raise _fail("bad $module value")
        module = sys.modules.get(body)
        if body in self.imports:
            return module if module is not None else importlib.import_module(body)
        if module is None:
            raise CheckpointError(
                f"checkpoint refers to module {body!r:.100}, which is not imported; "
                "import it before resuming the run"
            )
        file = module.__dict__.get("__file__") if isinstance(module, types.ModuleType) else None
        if not (isinstance(file, str) and in_project(file)):
            raise CheckpointError(
                f"checkpoint refers to module {body!r:.100}: refused, because the function "
                "does not import it and it is not one of the project's modules (a checkpoint "
                "holds only modules its function imports, or modules under the working "
                "directory or [tool.resumable] roots in pyproject.toml)"
            )
        return module

    def class_(self, body: Any, n: int | None, depth: int) -> Any:
        return allowed.check(body, resolve_class(body, object), "a class")

    def function(self, body: Any, n: int | None, depth: int) -> Any:
        fn = allowed.decorated_named(body) if type(body) is str else None
        if fn is None:
            fn = resolve(body)
            if not (
                isinstance(fn, types.FunctionType | types.BuiltinFunctionType)
                or allowed.is_decorated(fn)
            ):
                raise CheckpointError(
                    f"checkpoint names {body!r:.200} as a function, but it is {fn!r:.100}"
                )
        return allowed.check(body, fn, "a function")

    def method(self, body: Any, n: int | None, depth: int) -> Any:
        """A bound method: its object's method `name`, bound again (allowed.py)."""
        tree, name = _list(body, "$method", 2)
        obj = self.dec(tree, depth + 1)
        bound, why = allowed.bind_method(obj, name)
        if why is not None:
            raise CheckpointError(
                f"checkpoint names the method {name!r:.60} of a {type(obj).__qualname__:.60}: "
                f"refused, because {why}; {allowed.RULE}"
            )
        return bound

    def super_(self, body: Any, n: int | None, depth: int) -> Any:
        """`super(C, obj)` again: C is a stored class (checked like any)."""
        cls_tree, tree = _list(body, "$super", 2)
        cls = self.dec(cls_tree, depth + 1)
        if not isinstance(cls, type):
            raise _fail("bad $super class")
        obj = self.dec(tree, depth + 1)
        try:
            return super(cls, obj)
        except TypeError as e:
            raise CheckpointError(
                f"cannot rebuild super({cls.__qualname__:.60}, ...): {e}"
            ) from None

    def closure(self, body: Any, n: int | None, depth: int) -> Any:
        if self.closures is None:
            raise CheckpointError(
                "checkpoint holds a closure outside the locals of a checkpoint "
                "(a closure never leaves its run): refused"
            )
        return self.closures.decode(self, body, n, depth)

    # -- user kinds ------------------------------------------------------------------------

    def codec(self, body: Any, n: int | None, depth: int) -> Any:
        name, payload = _list(body, "$codec", 2)
        codec = codec_named(name) if type(name) is str else None
        if codec is None:
            raise CheckpointError(f"no codec is registered under the name {name!r:.100}")
        value = self.dec(payload, depth + 1)
        try:
            obj = codec.decode(value)
        except Exception as e:
            raise CheckpointError(
                f"the codec registered as {name!r:.100} failed to decode: {e!r:.200}"
            ) from None
        return self.register(n, obj)

    def enum_(self, body: Any, n: int | None, depth: int) -> Any:
        name, member = _list(body, "$enum", 2)
        cls = resolve_class(name, enum.Enum, kind="an Enum")
        members = cls.__members__
        if type(member) is str and member in members:
            return members[member]
        if type(member) is int and issubclass(cls, enum.Flag):  # a combination of flags
            try:
                return cls(member)
            except (ValueError, TypeError):
                pass
        raise CheckpointError(f"{name!r:.100} has no member {member!r:.60}")

    def dataclass(self, body: Any, n: int | None, depth: int) -> Any:
        name, fields = _list(body, "$dataclass", 2)
        cls = resolve_class(name, object, dataclasses.is_dataclass, kind="a dataclass")
        try:
            obj = object.__new__(cls)
        except TypeError as e:
            raise CheckpointError(f"cannot rebuild {name!r:.100}: {e}") from None
        self.register(n, obj)
        self.attributes(obj, fields, depth + 1, f"{name!r:.100}")
        return obj

    def namedtuple(self, body: Any, n: int | None, depth: int) -> Any:
        name, values = _list(body, "$namedtuple", 2)
        cls = resolve_class(name, tuple, kinds.is_namedtuple_class, kind="a named tuple")
        items = self.dec(_list(values, "$namedtuple items"), depth + 1)
        if len(items) != len(cls._fields):  # type: ignore[attr-defined]
            raise _fail(f"{name} takes {len(cls._fields)} values")  # type: ignore[attr-defined]
        return self.register(n, tuple.__new__(cls, items))

    def pydantic(self, body: Any, n: int | None, depth: int) -> Any:
        name, fields, fields_set, extra, private = _list(body, "$pydantic", 5)
        cls = resolve_class(name, object, kinds.is_pydantic_model, kind="a pydantic model")
        values = self.mapping(fields, depth + 1, "$pydantic fields")
        if type(fields_set) is not list or any(type(f) is not str for f in fields_set):
            raise _fail("bad $pydantic fields set")
        extras = None if extra is None else self.mapping(extra, depth + 1, "$pydantic extra")
        private_values = (
            None if private is None else self.mapping(private, depth + 1, "$pydantic private")
        )
        try:
            # What model_construct does, without running model_post_init:
            # the stored fields are the state to restore, not new input.
            obj = cls.__new__(cls)
            object.__setattr__(obj, "__dict__", values)
            object.__setattr__(obj, "__pydantic_fields_set__", set(fields_set))
            object.__setattr__(obj, "__pydantic_extra__", extras)
            object.__setattr__(obj, "__pydantic_private__", private_values)
        except Exception as e:
            raise CheckpointError(f"cannot rebuild {name!r:.100}: {e}") from None
        return self.register(n, obj)

    def subclass(self, body: Any, n: int | None, depth: int) -> Any:
        if type(body) is not dict or type(body.get("class")) is not str:
            raise _fail("bad $sub value")
        name = body["class"]
        cls: Any = resolve_class(
            name, object, kinds.is_plain_subclass, kind="a subclass of a built-in type"
        )
        base = kinds.subclass_base(cls)
        assert base is not None
        try:
            obj = self.subclass_instance(cls, base, body, n, depth)
        except (TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"cannot rebuild {name!r:.100}: {e}") from None
        if body.get("attrs"):
            self.attributes(obj, body["attrs"], depth + 1, f"{name!r:.100}")
        return obj

    def subclass_instance(
        self, cls: Any, base: type, body: dict[str, Any], n: int | None, depth: int
    ) -> Any:
        if issubclass(base, dict):
            obj: Any = base.__new__(cls)
            self.register(n, obj)
            if base is collections.defaultdict and body.get("factory") is not None:
                factory = self.dec(body["factory"], depth + 1)
                why = allowed.refusal(factory)
                if why is not None or not callable(factory):
                    raise CheckpointError(
                        "checkpoint gives a defaultdict a factory that is refused, because "
                        f"{why or 'it cannot be called'}; {allowed.RULE}"
                    )
                obj.default_factory = factory
            self.fill_pairs(
                lambda k, v: base.__setitem__(obj, k, v), body.get("items", []), depth + 1
            )
            return obj
        if base in (list, set, collections.deque):
            obj = base.__new__(cls)
            self.register(n, obj)
            items = self.dec(_list(body.get("items"), "$sub items"), depth + 1)
            if base is collections.deque:
                maxlen = body.get("maxlen")
                if maxlen is not None and (type(maxlen) is not int or maxlen < 0):
                    raise _fail("bad deque maxlen")
                collections.deque.__init__(obj, items, maxlen)
            elif base is list:
                list.extend(obj, items)
            else:
                set.update(obj, items)
            return obj
        if base in (tuple, frozenset):
            items = self.dec(_list(body.get("items"), "$sub items"), depth + 1)
            return self.register(n, base.__new__(cls, items))
        value = self.dec(body.get("value"), depth + 1)
        if type(value) is not base:
            raise _fail(f"bad value for a {base.__name__} subclass")
        return self.register(n, base.__new__(cls, value))

    def exception(self, body: Any, n: int | None, depth: int) -> Any:
        if self.version == 1 and type(body) is list:
            body = _exception_v1(body)
        if type(body) is not dict or type(body.get("type")) is not str:
            raise _fail("bad $exc value")
        cls = resolve_class(body["type"], BaseException, kind="an exception class")
        args = self.dec(_list(body.get("args", []), "$exc args"), depth + 1)
        builtin = next(b for b in cls.__mro__ if b.__module__ == "builtins")
        try:  # the built-in base's __new__: an overridden __new__ is not run
            exc = builtin.__new__(cls, *args)
            BaseException.__setattr__(exc, "args", tuple(args))
        except Exception as e:
            raise CheckpointError(f"cannot rebuild {body['type']!r:.100}: {e}") from None
        self.register(n, exc)
        what = f"exception {body['type']!r:.100}"
        if body.get("attrs"):
            self.attributes(exc, body["attrs"], depth + 1, what)
        if body.get("fields"):
            for k, v in self.mapping(body["fields"], depth + 1, what).items():
                if not any(
                    isinstance(exc, b) and k in names for b, names in kinds.EXCEPTION_FIELDS
                ):
                    raise CheckpointError(f"{what} has no field {k!r:.40}")
                if v is None and isinstance(exc, OSError) and getattr(exc, k) is None:
                    # Unset (NULL) after __new__: set to None, str() would name it
                    # ("[Errno None] None: None -> None").
                    continue
                try:
                    object.__setattr__(exc, k, v)
                except (AttributeError, TypeError) as e:
                    raise CheckpointError(f"cannot restore {what} field {k!r:.40}: {e}") from None
        for key, attr in (("context", "__context__"), ("cause", "__cause__")):
            if body.get(key) is not None:
                linked = self.dec(body[key], depth + 1)
                if not isinstance(linked, BaseException):
                    raise _fail(f"bad $exc {key}")
                BaseException.__setattr__(exc, attr, linked)
        suppress = body.get("suppress_context", False)
        if type(suppress) is not bool:
            raise _fail("bad $exc suppress_context")
        BaseException.__setattr__(exc, "__suppress_context__", suppress)
        text = body.get("traceback")
        if type(text) is str:
            kinds.remember_traceback(exc, text)
        return exc


def _exception_v1(fields: list[Any]) -> dict[str, Any]:
    """Format 1 wrote exceptions as [type, args, attrs, context, cause, suppress, fields]."""
    if len(fields) != 7 or type(fields[5]) is not bool:
        raise _fail("bad $exc value")
    keys = ("type", "args", "attrs", "context", "cause", "suppress_context", "fields")
    return {k: v for k, v in zip(keys, fields, strict=True) if v is not None}


_TAGS: dict[str, Callable[[Decoder, Any, int | None, int], Any]] = {
    "$ref": Decoder.ref,
    "$dict": Decoder.dict_pairs,
    "$tuple": Decoder.tuple_,
    "$frozenset": Decoder.frozenset_,
    "$set": Decoder.set_,
    "$bytearray": Decoder.bytearray_,
    "$str": Decoder.str_,
    "$int": Decoder.int_,
    "$float": Decoder.float_,
    "$bytes": Decoder.bytes_,
    "$range": Decoder.range_,
    "$complex": Decoder.complex_,
    "$decimal": Decoder.decimal_,
    "$uuid": Decoder.uuid_,
    "$fraction": Decoder.fraction_,
    "$datetime": Decoder.datetime_,
    "$date": Decoder.date_,
    "$time": Decoder.time_,
    "$timedelta": Decoder.timedelta_,
    "$timezone": Decoder.timezone_,
    "$zoneinfo": Decoder.zoneinfo_,
    "$path": Decoder.path_,
    "$module": Decoder.module,
    "$class": Decoder.class_,
    "$function": Decoder.function,
    "$method": Decoder.method,
    "$super": Decoder.super_,
    "$closure": Decoder.closure,
    "$codec": Decoder.codec,
    "$enum": Decoder.enum_,
    "$dataclass": Decoder.dataclass,
    "$namedtuple": Decoder.namedtuple,
    "$pydantic": Decoder.pydantic,
    "$sub": Decoder.subclass,
    "$exc": Decoder.exception,
}
