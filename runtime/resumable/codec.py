"""The checkpoint codec: Python values to JSON bytes (orjson) and back, exactly.

JSON values stand for themselves; everything else is a one-key object whose key
starts with `$` (a tag)::

    (1, 2**70, b"\\x00")   ->   {"$tuple": [1, {"$int": "1180591620717411303424"}, {"$bytes": "AA=="}]}
    {1: "a"}               ->   {"$dict": [[1, "a"]]}
    ValueError("x")        ->   {"$exc": ["builtins:ValueError", ["x"], null, null, null, false]}

Identity: an object met twice in one encoded value is written once; the first
occurrence is wrapped as `{"$id": n, "$v": ...}` and later ones become
`{"$ref": n}`, so `a is b` (and cycles through lists, dicts, sets and objects)
survive. Objects met once pay one dict insert for this.

Safety: decoding never imports a module and never calls anything but the
constructors of the built-in types above and of classes already imported whose
kind was checked (an exception class must subclass BaseException). Anything
unexpected raises `CheckpointError`.
"""

from __future__ import annotations

import base64
import importlib
import math
import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from .errors import CheckpointError, SerializationError

__all__ = [
    "FORMAT_VERSION",
    "Unencodable",
    "decode",
    "decode_value",
    "encode",
    "encode_fields",
    "encode_value",
]

FORMAT_VERSION = 1

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1

# Internal types the runtime itself stores in checkpoints (loop cursors),
# registered by tag: type -> (tag, to_state, from_state).
_internal_by_type: dict[
    type, tuple[str, Callable[[Any], list[Any]], Callable[[list[Any]], Any]]
] = {}
_internal_by_tag: dict[str, tuple[type, Callable[[list[Any]], Any]]] = {}


def register_internal(
    cls: type,
    tag: str,
    to_state: Callable[[Any], list[Any]],
    from_state: Callable[[list[Any]], Any],
) -> None:
    """Register a runtime-owned type (for example a loop cursor) under `$tag`.

    `to_state` returns a list of values (encoded recursively); `from_state`
    rebuilds the object from the decoded list."""
    _internal_by_type[cls] = (tag, to_state, from_state)
    _internal_by_tag[tag] = (cls, from_state)


class Unencodable(Exception):
    """Internal: a value cannot be encoded. `path` is filled in while unwinding,
    innermost step first (`["[3]", ".items"]` for `x.items[3]`); callers turn
    this into SerializationError naming the variable and the path."""

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.path: list[str] = []
        self.variable = ""

    def where(self) -> str:
        """The path from the outermost value, for example `.items[3]`."""
        return "".join(reversed(self.path))


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


_T = TypeVar("_T")


def resolve(name: str) -> Any:
    """Find `module:qualname` among modules already imported; never imports
    and never calls a module's or class's __getattr__."""
    module_name, _, qualname = name.partition(":") if type(name) is str else ("", "", "")
    module = sys.modules.get(module_name)
    if module is None or not qualname:
        raise CheckpointError(
            f"checkpoint names {name!r:.200}, but module {module_name!r:.100} is not imported; "
            "import it before resuming the run"
        )
    found = _lookup(module, qualname)
    if found is None:
        raise CheckpointError(f"checkpoint names {name!r:.200}, which does not exist")
    return found


def resolve_class(name: str, base: type[_T]) -> type[_T]:
    """`resolve`, checked to be a subclass of `base`."""
    obj = resolve(name)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise CheckpointError(
            f"checkpoint names {name!r:.200} as a {base.__name__} subclass, but it is {obj!r:.100}"
        )
    return obj


# --------------------------------------------------------------------- encode


_OPEN, _SEALED, _DONE = 0, 1, 2
_ABSENT = object()

# C-level attributes of built-in exceptions that live outside `args`.
_EXCEPTION_FIELDS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (StopIteration, ("value",)),
    (StopAsyncIteration, ("value",)),
    (SystemExit, ("code",)),
    (ImportError, ("name", "path")),
    (OSError, ("errno", "strerror", "filename", "filename2")),
    (NameError, ("name",)),
    (AttributeError, ("name", "obj")),
    (SyntaxError, ("msg", "filename", "lineno", "offset", "text", "end_lineno", "end_offset")),
    (UnicodeError, ("encoding", "object", "start", "end", "reason")),
)


def _exception_fields(x: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for base, names in _EXCEPTION_FIELDS:
        if isinstance(x, base):
            for name in names:
                value = getattr(x, name, _ABSENT)
                if value is not _ABSENT:
                    out[name] = value
    return out


class _Encoder:
    __slots__ = ("memo", "next_id")

    def __init__(self) -> None:
        # id(obj) -> [holder, key, assigned id or None, _OPEN/_SEALED/_DONE, obj]
        self.memo: dict[int, list[Any]] = {}
        self.next_id = 0

    def remember(self, x: Any, holder: Any, key: Any, state: int = _OPEN) -> None:
        self.memo[id(x)] = [holder, key, None, state, x]

    def ref(self, obj: Any) -> Any:
        entry = self.memo[id(obj)]
        n = entry[2]
        if n is None:
            if entry[3] == _SEALED:
                raise Unencodable(
                    obj, "it contains itself through a tuple, frozenset or exception args"
                )
            n = entry[2] = self.next_id
            self.next_id += 1
            if entry[3] == _DONE:  # written already: wrap it where it is
                holder, key = entry[0], entry[1]
                holder[key] = {"$id": n, "$v": holder[key]}
            # still open (it contains itself): wrapped by finish()
        return {"$ref": n}

    def finish(self, x: Any, encoded: Any) -> Any:
        entry = self.memo[id(x)]
        entry[3] = _DONE
        n = entry[2]
        return encoded if n is None else {"$id": n, "$v": encoded}

    def items(self, values: Any, step: str) -> list[Any]:
        """Encode an iterable's items into a new list (not itself memoized)."""
        out: list[Any] = []
        for i, item in enumerate(values):
            out.append(None)
            out[i] = self.child(item, out, i, step.format(i))
        return out

    def mapping(self, pairs: Any, step: str) -> Any:
        """Encode str-keyed pairs as a JSON object (not itself memoized)."""
        obj: dict[str, Any] = {}
        for k, v in pairs:
            obj[k] = None
            obj[k] = self.child(v, obj, k, step.format(k))
        if any(k.startswith("$") for k in obj):
            return {"$dict": [[k, v] for k, v in obj.items()]}
        return obj

    def enc(self, x: Any, holder: Any, key: Any) -> Any:
        """Encode `x`, which will be stored at holder[key] (for identity wrapping)."""
        t = type(x)
        if t is str:
            if not x.isascii():
                try:
                    x.encode("utf-8")
                except UnicodeEncodeError:
                    raise Unencodable(
                        x, "it contains a lone surrogate, which JSON cannot hold"
                    ) from None
            return x
        if x is None or t is bool:
            return x
        if t is int:
            if _INT_MIN <= x <= _INT_MAX:
                return x
            if x.bit_length() < 10_000:
                return {"$int": str(x)}
            return {"$int": hex(x)}
        if t is float:
            if math.isfinite(x):
                return x
            return {"$float": repr(x)}
        if id(x) in self.memo:
            return self.ref(x)
        if t is list:
            self.remember(x, holder, key)
            return self.finish(x, self.items(x, "[{}]"))
        if t is dict:
            self.remember(x, holder, key)
            if all(type(k) is str and not k.startswith("$") for k in x):
                obj: dict[str, Any] = {}
                for k, v in x.items():
                    obj[k] = None
                    obj[k] = self.child(v, obj, k, f"[{k!r}]")
                return self.finish(x, obj)
            pairs: list[Any] = []
            for k, v in x.items():
                pair: list[Any] = [None, None]
                pair[0] = self.child(k, pair, 0, f".keys()[{k!r}]")
                pair[1] = self.child(v, pair, 1, f"[{k!r}]")
                pairs.append(pair)
            return self.finish(x, {"$dict": pairs})
        if t is tuple or t is frozenset:
            # Built after their items: a cycle back to them cannot be decoded.
            self.remember(x, holder, key, _SEALED)
            return self.finish(x, {"$tuple" if t is tuple else "$frozenset": self.items(x, "[{}]")})
        if t is set:
            self.remember(x, holder, key)
            return self.finish(x, {"$set": self.items(x, "{{member {}}}")})
        if t is bytes:
            return {"$bytes": base64.b64encode(x).decode("ascii")}
        if t is range:
            return {"$range": self.items((x.start, x.stop, x.step), ".<range {}>")}
        if t is bytearray:
            self.remember(x, holder, key)
            return self.finish(x, {"$bytearray": base64.b64encode(x).decode("ascii")})
        if isinstance(x, BaseException):
            return self.exception(x, holder, key)
        if t is types.ModuleType:
            name = x.__name__
            if sys.modules.get(name) is not x:
                raise Unencodable(x, "it is a module that is not in sys.modules")
            return {"$module": name}
        if isinstance(x, type):
            return {"$class": _reference_name(x)}
        if t in _FUNCTION_TYPES:
            return {"$function": _reference_name(x)}
        internal = _internal_by_type.get(t)
        if internal is not None:
            self.remember(x, holder, key)
            tag, to_state, _ = internal
            return self.finish(x, {"$" + tag: self.items(to_state(x), ".<" + tag + " {}>")})
        raise Unencodable(x, f"{_type_name(t)} cannot be stored in a checkpoint")

    def child(self, x: Any, holder: Any, key: Any, step: str) -> Any:
        try:
            return self.enc(x, holder, key)
        except Unencodable as e:
            e.path.append(step)
            raise

    def exception(self, x: BaseException, holder: Any, key: Any) -> Any:
        t = type(x)
        if "<locals>" in t.__qualname__:
            raise Unencodable(
                x, f"its class {t.__qualname__} is defined inside a function and cannot be found "
                "when the run resumes; define the exception class at module level"
            )  # fmt: skip
        # args are decoded before the exception exists: no cycle through them.
        self.remember(x, holder, key, _SEALED)
        fields: list[Any] = [
            qualified_name(t),
            None,
            None,
            None,
            None,
            x.__suppress_context__,
            None,
        ]
        fields[1] = self.items(x.args, ".args[{}]")
        self.memo[id(x)][3] = _OPEN
        attrs = getattr(x, "__dict__", None)
        if attrs:
            fields[2] = self.mapping(attrs.items(), ".{}")
        if x.__context__ is not None:
            fields[3] = self.child(x.__context__, fields, 3, ".__context__")
        if x.__cause__ is not None:
            fields[4] = self.child(x.__cause__, fields, 4, ".__cause__")
        extra: dict[str, Any] = {}
        for k, v in _exception_fields(x).items():
            try:  # e.g. AttributeError.obj may hold anything: kept when it can be
                extra[k] = self.enc(v, extra, k)
            except Unencodable:
                continue
        fields[6] = extra or None
        return self.finish(x, {"$exc": fields})


_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType)


def _reference_name(x: Any) -> str:
    """`module:qualname` for a class or function that can be found again by name."""
    module, qualname = getattr(x, "__module__", None), getattr(x, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise Unencodable(
            x, "it is defined inside a function (or has no importable name) and cannot be "
            "found by name when the run resumes; define it at module level"
        )  # fmt: skip
    found = _lookup(sys.modules.get(module), qualname)
    if found is not x:
        raise Unencodable(x, f"{module}:{qualname} does not name it (was it rebound or replaced?)")
    return f"{module}:{qualname}"


def _lookup(obj: Any, qualname: str) -> Any:
    """Follow a qualname through module and class namespaces only (never
    __getattr__ or descriptors)."""
    for part in qualname.split("."):
        namespace = getattr(obj, "__dict__", None) if obj is not None else None
        if not isinstance(namespace, dict | types.MappingProxyType) or part not in namespace:
            return None
        obj = namespace[part]
    return obj


def _type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def encode_value(value: Any) -> Any:
    """Encode to the JSON-ready tree (raises Unencodable)."""
    holder = [None]
    enc = _Encoder()
    try:
        holder[0] = enc.enc(value, holder, 0)
    except RecursionError:
        raise Unencodable(value, "it is nested too deeply") from None
    return holder[0]


def encode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Encode named values (a checkpoint's locals) sharing one identity memo.

    On failure the Unencodable's `variable` names the field and `where()` is
    the path inside it."""
    enc = _Encoder()
    out: dict[str, Any] = {}
    for name, value in fields.items():
        out[name] = None
        try:
            out[name] = enc.enc(value, out, name)
        except Unencodable as e:
            e.variable = name
            raise
        except RecursionError:
            e2 = Unencodable(value, "it is nested too deeply")
            e2.variable = name
            raise e2 from None
    return out


def encode(value: Any) -> bytes:
    """Encode a value to JSON bytes. Raises SerializationError naming the path."""
    try:
        return orjson.dumps(encode_value(value))
    except Unencodable as e:
        where = e.where()
        raise SerializationError(f"value{where}: {e.reason}") from None
    except TypeError as e:  # orjson: str with lone surrogates
        raise SerializationError(str(e)) from None


# --------------------------------------------------------------------- decode


class _Decoder:
    __slots__ = ("imports", "objects")

    def __init__(self, imports: frozenset[str] = frozenset()) -> None:
        self.objects: dict[int, Any] = {}
        #: Modules a `$module` reference may import (those the compiled
        #: function itself imports); any other must be imported already.
        self.imports = imports

    def dec(self, x: Any) -> Any:
        t = type(x)
        if t is list:
            return [self.dec(item) for item in x]
        if t is not dict:
            return x
        if len(x) != 1:
            if "$id" in x:
                return self.identified(x)
            return {k: self.dec(v) for k, v in x.items()}
        [(tag, body)] = x.items()
        if not tag.startswith("$"):
            return {tag: self.dec(body)}
        return self.tagged(tag, body, None)

    def identified(self, x: dict[str, Any]) -> Any:
        n = x.get("$id")
        if type(n) is not int or set(x) != {"$id", "$v"} or n in self.objects:
            raise CheckpointError(f"malformed identity wrapper {x!r:.80}")
        body = x["$v"]
        if type(body) is list:
            out: list[Any] = []
            self.objects[n] = out
            out.extend(self.dec(item) for item in body)
            return out
        if type(body) is not dict:
            raise CheckpointError("identity wrapper around a plain value")
        if len(body) == 1:
            [(tag, inner)] = body.items()
            if tag.startswith("$"):
                return self.tagged(tag, inner, n)
        obj: dict[str, Any] = {}
        self.objects[n] = obj
        for k, v in body.items():
            obj[k] = self.dec(v)
        return obj

    def register(self, n: int | None, obj: Any) -> Any:
        if n is not None:
            self.objects[n] = obj
        return obj

    def tagged(self, tag: str, body: Any, n: int | None) -> Any:
        handler = _TAGS.get(tag)
        if handler is not None:
            return handler(self, body, n)
        internal = _internal_by_tag.get(tag[1:])
        if internal is None:
            raise CheckpointError(f"unknown tag {tag!r:.60} in checkpoint")
        state = self.dec(_expect_list(body, tag))
        try:
            return self.register(n, internal[1](state))
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise CheckpointError(f"malformed {tag} value: {e}") from None

    def ref(self, body: Any, n: int | None) -> Any:
        try:
            return self.objects[body]
        except (KeyError, TypeError):
            raise CheckpointError(f"reference to unknown object {body!r:.40}") from None

    def dict_pairs(self, body: Any, n: int | None) -> Any:
        out: dict[Any, Any] = self.register(n, {})
        for pair in _expect_list(body, "$dict"):
            if type(pair) is not list or len(pair) != 2:
                raise CheckpointError("malformed $dict pair")
            key = self.dec(pair[0])  # the key first: it was written first
            try:
                out[key] = self.dec(pair[1])
            except TypeError as e:
                raise CheckpointError(f"unhashable $dict key: {e}") from None
        return out

    def tuple_(self, body: Any, n: int | None) -> Any:
        return self.register(n, tuple(self.dec(v) for v in _expect_list(body, "$tuple")))

    def frozenset_(self, body: Any, n: int | None) -> Any:
        try:
            return self.register(
                n, frozenset(self.dec(v) for v in _expect_list(body, "$frozenset"))
            )
        except TypeError as e:
            raise CheckpointError(f"unhashable $frozenset member: {e}") from None

    def set_(self, body: Any, n: int | None) -> Any:
        out: set[Any] = self.register(n, set())
        try:
            for v in _expect_list(body, "$set"):
                out.add(self.dec(v))
        except TypeError as e:
            raise CheckpointError(f"unhashable $set member: {e}") from None
        return out

    def int_(self, body: Any, n: int | None) -> Any:
        if type(body) is not str or len(body) > 100_000:
            raise CheckpointError("malformed $int")
        try:
            if body.lstrip("-").startswith("0x"):
                return int(body, 16)
            return int(body)
        except ValueError:
            raise CheckpointError("malformed $int") from None

    def float_(self, body: Any, n: int | None) -> Any:
        if body not in ("nan", "inf", "-inf"):
            raise CheckpointError("malformed $float")
        return float(body)

    def range_(self, body: Any, n: int | None) -> Any:
        fields = [self.dec(f) for f in _expect_list(body, "$range")]
        if len(fields) != 3 or any(type(f) is not int for f in fields) or fields[2] == 0:
            raise CheckpointError("malformed $range")
        return range(*fields)

    def bytes_(self, body: Any, n: int | None) -> Any:
        return _b64(body)

    def bytearray_(self, body: Any, n: int | None) -> Any:
        return self.register(n, bytearray(_b64(body)))

    def module(self, body: Any, n: int | None) -> Any:
        if type(body) is not str:
            raise CheckpointError("malformed $module")
        module = sys.modules.get(body)
        if module is None and body in self.imports:
            module = importlib.import_module(body)
        if module is None:
            raise CheckpointError(
                f"checkpoint refers to module {body!r:.100}, which is not imported; "
                "import it before resuming the run"
            )
        return module

    def class_(self, body: Any, n: int | None) -> Any:
        return resolve_class(body, object)

    def function(self, body: Any, n: int | None) -> Any:
        fn = resolve(body)
        if not isinstance(fn, _FUNCTION_TYPES):
            raise CheckpointError(
                f"checkpoint names {body!r:.200} as a function, but it is {fn!r:.100}"
            )
        return fn

    def exc(self, body: Any, n: int | None) -> Any:
        fields = _expect_list(body, "$exc")
        if len(fields) != 7 or type(fields[0]) is not str or type(fields[5]) is not bool:
            raise CheckpointError("malformed $exc")
        cls = resolve_class(fields[0], BaseException)
        args = self.dec(fields[1])
        if type(args) is not list:
            raise CheckpointError("malformed $exc args")
        try:
            exc = cls.__new__(cls, *args)
            exc.args = tuple(args)
        except Exception as e:
            raise CheckpointError(f"cannot rebuild {fields[0]}: {e}") from None
        self.register(n, exc)
        for i in (2, 6):
            if fields[i] is not None:
                attrs = self.dec(fields[i])
                if type(attrs) is not dict or any(type(k) is not str for k in attrs):
                    raise CheckpointError("malformed $exc attributes")
                try:
                    for k, v in attrs.items():
                        setattr(exc, k, v)
                except (AttributeError, TypeError) as e:
                    raise CheckpointError(f"cannot restore {fields[0]}.{k}: {e}") from None
        for i, attr in ((3, "__context__"), (4, "__cause__")):
            if fields[i] is not None:
                linked = self.dec(fields[i])
                if not isinstance(linked, BaseException):
                    raise CheckpointError(f"malformed $exc {attr}")
                setattr(exc, attr, linked)
        exc.__suppress_context__ = fields[5]
        return exc


def _expect_list(body: Any, tag: str) -> list[Any]:
    if type(body) is not list:
        raise CheckpointError(f"malformed {tag} value")
    return body


def _b64(body: Any) -> bytes:
    if type(body) is not str:
        raise CheckpointError("malformed $bytes")
    try:
        return base64.b64decode(body, validate=True)
    except ValueError:
        raise CheckpointError("malformed $bytes") from None


_TAGS: dict[str, Callable[[_Decoder, Any, int | None], Any]] = {
    "$ref": _Decoder.ref,
    "$dict": _Decoder.dict_pairs,
    "$tuple": _Decoder.tuple_,
    "$frozenset": _Decoder.frozenset_,
    "$set": _Decoder.set_,
    "$int": _Decoder.int_,
    "$float": _Decoder.float_,
    "$bytes": _Decoder.bytes_,
    "$range": _Decoder.range_,
    "$bytearray": _Decoder.bytearray_,
    "$module": _Decoder.module,
    "$class": _Decoder.class_,
    "$function": _Decoder.function,
    "$exc": _Decoder.exc,
}


def decode_value(tree: Any, imports: frozenset[str] = frozenset()) -> Any:
    """Decode a JSON tree produced by `encode_value`. `imports`: modules that
    `$module` references may import (the compiled function's own imports)."""
    try:
        return _Decoder(imports).dec(tree)
    except RecursionError:
        raise CheckpointError("checkpoint is nested too deeply") from None


def decode(data: bytes) -> Any:
    """Decode JSON bytes produced by `encode`. Raises CheckpointError."""
    try:
        tree = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint is not valid JSON: {e}") from None
    return decode_value(tree)
