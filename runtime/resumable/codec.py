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
import math
import sys
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


def resolve_class(name: str, base: type[_T]) -> type[_T]:
    """Find `module:qualname` among modules already imported; never imports."""
    module_name, _, qualname = name.partition(":")
    module = sys.modules.get(module_name)
    if module is None or not qualname:
        raise CheckpointError(
            f"checkpoint names {name!r}, but module {module_name!r} is not imported; "
            "import it before resuming the run"
        )
    obj: Any = module
    for part in qualname.split("."):
        if part.startswith("__") or not hasattr(obj, part):
            raise CheckpointError(f"checkpoint names {name!r}, which does not exist")
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise CheckpointError(
            f"checkpoint names {name!r} as a {base.__name__} subclass, but it is {obj!r}"
        )
    return obj


# --------------------------------------------------------------------- encode


class _Encoder:
    __slots__ = ("memo", "next_id")

    def __init__(self) -> None:
        # id(obj) -> [obj, holder, key, assigned id or None]
        self.memo: dict[int, list[Any]] = {}
        self.next_id = 0

    def ref(self, obj: Any) -> Any:
        entry = self.memo[id(obj)]
        n = entry[3]
        if n is None:
            holder, key = entry[1], entry[2]
            if holder is None:
                raise Unencodable(obj, "it contains itself through a tuple or an exception's args")
            n = entry[3] = self.next_id
            self.next_id += 1
            holder[key] = {"$id": n, "$v": holder[key]}
        return {"$ref": n}

    def enc(self, x: Any, holder: Any, key: Any) -> Any:
        """Encode `x`, which will be stored at holder[key] (for identity wrapping)."""
        t = type(x)
        if t is str or x is None or t is bool:
            return x
        if t is int:
            return x if _INT_MIN <= x <= _INT_MAX else {"$int": str(x)}
        if t is float:
            if math.isfinite(x):
                return x
            return {"$float": repr(x)}
        if id(x) in self.memo:
            return self.ref(x)
        if t is list:
            self.memo[id(x)] = [x, holder, key, None]
            out: list[Any] = []
            for i, item in enumerate(x):
                out.append(None)
                out[i] = self.child(item, out, i, f"[{i}]")
            return out
        if t is dict:
            self.memo[id(x)] = [x, holder, key, None]
            if all(type(k) is str and not k.startswith("$") for k in x):
                obj: dict[str, Any] = {}
                for k, v in x.items():
                    obj[k] = None
                    obj[k] = self.child(v, obj, k, f"[{k!r}]")
                return obj
            pairs: list[Any] = []
            for k, v in x.items():
                pair: list[Any] = [None, None]
                pair[0] = self.child(k, pair, 0, f".keys()[{k!r}]")
                pair[1] = self.child(v, pair, 1, f"[{k!r}]")
                pairs.append(pair)
            return {"$dict": pairs}
        if t is tuple or t is frozenset:
            # Built after their items: a cycle back to them cannot be decoded.
            self.memo[id(x)] = [x, None, None, None]
            items: list[Any] = []
            for i, item in enumerate(x):
                items.append(None)
                items[i] = self.child(item, items, i, f"[{i}]")
            self.memo[id(x)][1:3] = [holder, key]
            return {"$tuple" if t is tuple else "$frozenset": items}
        if t is set:
            self.memo[id(x)] = [x, holder, key, None]
            members: list[Any] = []
            for i, item in enumerate(x):
                members.append(None)
                members[i] = self.child(item, members, i, f"{{member {i}}}")
            return {"$set": members}
        if t is bytes:
            return {"$bytes": base64.b64encode(x).decode("ascii")}
        if t is range:
            return {
                "$range": [
                    self.enc(x.start, None, None),
                    self.enc(x.stop, None, None),
                    self.enc(x.step, None, None),
                ]
            }
        if t is bytearray:
            self.memo[id(x)] = [x, holder, key, None]
            return {"$bytearray": base64.b64encode(x).decode("ascii")}
        if isinstance(x, BaseException):
            return self.exception(x, holder, key)
        internal = _internal_by_type.get(t)
        if internal is not None:
            self.memo[id(x)] = [x, holder, key, None]
            tag, to_state, _ = internal
            state = to_state(x)
            fields: list[Any] = []
            for i, item in enumerate(state):
                fields.append(None)
                fields[i] = self.child(item, fields, i, f".<{tag} {i}>")
            return {"$" + tag: fields}
        raise Unencodable(x, f"{_type_name(t)} cannot be stored in a checkpoint")

    def child(self, x: Any, holder: Any, key: Any, step: str) -> Any:
        try:
            return self.enc(x, holder, key)
        except Unencodable as e:
            e.path.append(step)
            raise

    def exception(self, x: BaseException, holder: Any, key: Any) -> Any:
        t = type(x)
        # args are decoded before the exception exists: no cycle through them.
        self.memo[id(x)] = [x, None, None, None]
        fields: list[Any] = [qualified_name(t), None, None, None, None, x.__suppress_context__]
        fields[1] = self.child(list(x.args), fields, 1, ".args")
        self.memo[id(x)][1:3] = [holder, key]
        attrs = getattr(x, "__dict__", None)
        if attrs:
            fields[2] = self.child(dict(attrs), fields, 2, ".__dict__")
        if x.__context__ is not None:
            fields[3] = self.child(x.__context__, fields, 3, ".__context__")
        if x.__cause__ is not None:
            fields[4] = self.child(x.__cause__, fields, 4, ".__cause__")
        return {"$exc": fields}


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
    __slots__ = ("objects",)

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}

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
        try:
            handler = _TAGS[tag]
        except KeyError:
            internal = _internal_by_tag.get(tag[1:])
            if internal is None:
                raise CheckpointError(f"unknown tag {tag!r} in checkpoint") from None
            if type(body) is not list:
                raise CheckpointError(f"malformed {tag} value")
            return self.register(n, internal[1]([self.dec(v) for v in body]))
        return handler(self, body, n)

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
            try:
                out[self.dec(pair[0])] = self.dec(pair[1])
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
        if type(body) is not str or len(body) > 10_000:
            raise CheckpointError("malformed $int")
        try:
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

    def exc(self, body: Any, n: int | None) -> Any:
        fields = _expect_list(body, "$exc")
        if len(fields) != 6 or type(fields[0]) is not str or type(fields[5]) is not bool:
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
        if fields[2] is not None:
            attrs = self.dec(fields[2])
            if type(attrs) is not dict:
                raise CheckpointError("malformed $exc attributes")
            try:
                exc.__dict__.update(attrs)
            except AttributeError:
                raise CheckpointError(f"{fields[0]} takes no attributes") from None
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
    "$exc": _Decoder.exc,
}


def decode_value(tree: Any) -> Any:
    """Decode a JSON tree produced by `encode_value`."""
    try:
        return _Decoder().dec(tree)
    except RecursionError:
        raise CheckpointError("checkpoint is nested too deeply") from None


def decode(data: bytes) -> Any:
    """Decode JSON bytes produced by `encode`. Raises CheckpointError."""
    try:
        tree = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint is not valid JSON: {e}") from None
    return decode_value(tree)
