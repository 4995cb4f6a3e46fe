"""Closures held across a checkpoint: stored by their definition, rebuilt
over the run's locals.

Inside a compiled function, a lambda or nested function reads and writes the
function's variables through the locals object (`lambda p: p * L.k`): its
only cell is `L`. So such a function value is fully described by

- its definition: its code object, one of the nested code objects of the
  machine's states, named by its `__qualname__` (with `#n` when several
  definitions share one) and a fingerprint of its source text;
- its defaults (`__defaults__`, `__kwdefaults__`), computed once when it was
  defined and stored as values (never evaluated again);
- its attributes, annotations, and names when they were changed;
- the locals it shares: the run's own, so it is not written at all.

    key = lambda p: p * k     {"$closure": {"def": "checkout.<locals>.<lambda>",
                                            "fp": "5be0c2d1a9f3"}}
    def add(n, step=2): ...   {"$closure": {"def": "checkout.<locals>.add", "fp": "...",
                                            "defaults": {"$tuple": [2]}}}

Decoding makes a new function of that code over the locals being decoded,
after every checkpoint, crash or not: closures and the function share one set
of variables again, and what a closure sees never depends on whether the
process crashed. A closure can leave its run only where it cannot be seen
(a global, a callback kept by a library: docs/semantics.md); returned, or
passed to another run, it is a SerializationError.
"""

from __future__ import annotations

import hashlib
import re
import types
from collections.abc import Iterator, Sequence
from typing import Any

from .codec import allowed
from .codec.encoder import Encoder, Unencodable
from .errors import CheckpointError, VersionMismatch

__all__ = ["Closures", "definitions"]

_COMPREHENSIONS = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})
_NEWLOCALS = 0x0002  # inspect.CO_NEWLOCALS: a function's code (not a class body's)
_FIELDS = frozenset({"def", "fp", "defaults", "kwdefaults", "attrs", "annotations", "names"})
_NAMES = ("__name__", "__qualname__", "__doc__", "__module__")
#: Dunder attributes a closure keeps: `functools.wraps` sets `__wrapped__`.
_DUNDERS = frozenset({"__wrapped__"})
_FINGERPRINT = re.compile(r"[0-9a-f]{12}")


def definitions(code: types.CodeType) -> Iterator[types.CodeType]:
    """The code objects of the functions and lambdas defined inside `code`,
    at any depth (also in class bodies and comprehensions), in the order of
    its constants."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if const.co_flags & _NEWLOCALS and const.co_name not in _COMPREHENSIONS:
                yield const
            yield from definitions(const)


class Closures:
    """The nested definitions of one bound machine (`Machine.closures`)."""

    def __init__(
        self, function: str, states: Sequence[types.FunctionType], source_lines: Sequence[str]
    ) -> None:
        #: The compiled function's qualname, for messages.
        self.function = function
        self.globals: dict[str, Any] = states[0].__globals__ if states else {}
        #: The name of the states' locals parameter (`L`), the closures' one cell.
        self.frame = states[0].__code__.co_varnames[1] if states else "L"
        self.source_lines = source_lines
        self.codes: dict[str, types.CodeType] = {}
        self.names: dict[int, str] = {}  # id(code) -> its name
        self._prints: dict[str, str] = {}
        self._plain: dict[str, tuple[Any, ...]] = {}
        count: dict[str, int] = {}
        for state in states:
            for code in definitions(state.__code__):
                if id(code) in self.names:
                    continue  # equal definitions compiled to one code object
                n = count.get(code.co_qualname, 0)
                count[code.co_qualname] = n + 1
                name = code.co_qualname if n == 0 else f"{code.co_qualname}#{n}"
                self.codes[name] = code
                self.names[id(code)] = name

    def at(self, frame: Any) -> Context:
        """Encoding or decoding the checkpoint of the run whose locals are `frame`."""
        return Context(self, frame)

    def plain_names(self, name: str) -> tuple[Any, ...]:
        """__name__, __qualname__, __doc__, __module__ of a function just
        made by definition `name` (a closure stores only those it changed)."""
        cached = self._plain.get(name)
        if cached is None:
            code = self.codes[name]
            cells = tuple(types.CellType() for _ in code.co_freevars)
            probe = types.FunctionType(code, self.globals, None, None, cells)
            cached = self._plain[name] = tuple(getattr(probe, k) for k in _NAMES)
        return cached

    def fingerprint(self, name: str) -> str:
        """A digest of the definition's source text (its lines, without blank
        lines and comment lines): a checkpoint written under other code is
        not given a different function."""
        cached = self._prints.get(name)
        if cached is not None:
            return cached
        code = self.codes[name]
        lines = set(_lines(code))
        text = ""
        if lines:
            chosen = self.source_lines[min(lines) - 1 : max(lines)]
            text = "\n".join(
                t for t in (line.strip() for line in chosen) if t and not t.startswith("#")
            )
        digest = hashlib.sha256(f"{name}\n{text}".encode()).hexdigest()[:12]
        self._prints[name] = digest
        return digest


def _lines(code: types.CodeType) -> Iterator[int]:
    yield code.co_firstlineno
    for _, _, line in code.co_lines():
        if line is not None:
            yield line
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _lines(const)


class Context:
    """The codec's hooks (`Encoder.closures`, `Decoder.closures`) for one
    checkpoint of a run whose locals are `frame`."""

    __slots__ = ("frame", "table")

    def __init__(self, table: Closures, frame: Any) -> None:
        self.table = table
        self.frame = frame

    @property
    def function(self) -> str:
        return self.table.function

    def owns(self, fn: Any) -> bool:
        """Is `fn` a function made by one of the definitions of the function?"""
        return type(fn) is types.FunctionType and id(fn.__code__) in self.table.names

    # -- encoding ---------------------------------------------------------------------

    def encode(
        self, enc: Encoder, fn: types.FunctionType, holder: Any, key: Any, depth: int
    ) -> Any:
        table = self.table
        code = fn.__code__
        name = table.names[id(code)]
        for var, cell in zip(code.co_freevars, fn.__closure__ or (), strict=True):
            if var != table.frame:
                raise Unencodable(
                    fn, f"it is the function {code.co_qualname}, which uses the variable `{var}` "
                    f"of the function or comprehension it is defined in, not only {table.function}'s "
                    f"variables; a checkpoint holds only closures over {table.function}'s own "
                    "(pass the value as an argument or a default instead)"
                )  # fmt: skip
            try:
                shared = cell.cell_contents
            except ValueError:
                shared = None
            if shared is not self.frame:
                raise Unencodable(
                    fn, f"it is the function {code.co_qualname} of another run (or call) of "
                    f"{table.function}: it shares that run's variables, not this one's"
                )  # fmt: skip
        enc.remember(fn, holder, key)
        body: dict[str, Any] = {"def": name, "fp": table.fingerprint(name)}
        if fn.__defaults__ is not None:
            body["defaults"] = None
            body["defaults"] = enc.child(
                fn.__defaults__, body, "defaults", ".__defaults__", depth + 2
            )
        if fn.__kwdefaults__:
            body["kwdefaults"] = None
            body["kwdefaults"] = enc.child(
                dict(fn.__kwdefaults__), body, "kwdefaults", ".__kwdefaults__", depth + 2
            )
        if fn.__dict__:
            body["attrs"] = enc.attributes(fn, fn.__dict__, depth + 3, _DUNDERS)
        annotations = _annotations(fn)
        if annotations:
            body["annotations"] = None
            body["annotations"] = enc.child(
                annotations, body, "annotations", ".__annotations__", depth + 2
            )
        names = {
            k: getattr(fn, k)
            for k, v in zip(_NAMES, table.plain_names(name), strict=True)
            if getattr(fn, k) != v
        }
        if names:
            body["names"] = enc.child(names, body, "names", ".<names>", depth + 2)
        return enc.finish(fn, {"$closure": body})

    # -- decoding ---------------------------------------------------------------------

    def decode(self, dec: Any, body: Any, n: int | None, depth: int) -> Any:
        table = self.table
        if (
            type(body) is not dict
            or type(body.get("def")) is not str
            or type(body.get("fp")) is not str
            or _FINGERPRINT.fullmatch(body["fp"]) is None
            or not set(body) <= _FIELDS
        ):
            raise CheckpointError("malformed checkpoint: bad $closure value")
        name = body["def"]
        code = table.codes.get(name)
        if code is None:
            raise CheckpointError(
                f"checkpoint holds a closure defined as {name!r:.200}, but "
                f"{table.function} has no such lambda or nested function: refused"
            )
        if any(var != table.frame for var in code.co_freevars):
            raise CheckpointError(
                f"checkpoint holds the closure {name!r:.200}, which uses variables of an "
                f"enclosing nested function and cannot be rebuilt: refused"
            )
        if body.get("fp") != table.fingerprint(name):
            raise VersionMismatch(
                f"the checkpoint holds the closure {name} (a lambda or nested function), "
                "whose definition changed since the checkpoint was written"
            )
        cells = tuple(types.CellType(self.frame) for _ in code.co_freevars)
        fn = types.FunctionType(code, table.globals, None, None, cells)
        dec.register(n, fn)
        what = f"closure {name!r:.100}"
        if "defaults" in body:
            defaults = dec.dec(body["defaults"], depth + 1)
            if type(defaults) is not tuple or len(defaults) > code.co_argcount:
                raise CheckpointError(f"malformed checkpoint: bad defaults of the {what}")
            fn.__defaults__ = defaults
        if "kwdefaults" in body:
            kwdefaults = dec.mapping(body["kwdefaults"], depth + 1, f"keyword defaults of {what}")
            first = code.co_argcount
            kwonly = code.co_varnames[first : first + code.co_kwonlyargcount]
            if not set(kwdefaults) <= set(kwonly):
                raise CheckpointError(f"malformed checkpoint: bad keyword defaults of the {what}")
            fn.__kwdefaults__ = kwdefaults
        if "attrs" in body:
            for k, v in dec.mapping(body["attrs"], depth + 1, f"attributes of {what}").items():
                if k.startswith("__") and k.endswith("__") and k not in _DUNDERS:
                    raise CheckpointError(
                        f"checkpoint sets the attribute {k!r:.40} of {what}: refused"
                    )
                fn.__dict__[k] = v
        if "annotations" in body:
            fn.__annotations__ = dec.mapping(
                body["annotations"], depth + 1, f"annotations of {what}"
            )
        if "names" in body:
            names = dec.mapping(body["names"], depth + 1, f"names of {what}")
            for k, v in names.items():
                if k not in _NAMES or not (type(v) is str or (v is None and k == "__doc__")):
                    raise CheckpointError(f"malformed checkpoint: bad {k!r:.40} of the {what}")
                setattr(fn, k, v)
        return fn


def _annotations(fn: types.FunctionType) -> dict[str, Any]:
    """The annotations of `fn` a checkpoint can hold: all of them when each is
    a string, None or a class a checkpoint may name; else none (the closure is
    rebuilt without them: docs/semantics.md)."""
    annotations = fn.__annotations__
    if not annotations:
        return {}
    for value in annotations.values():
        if value is None or type(value) is str:
            continue
        if isinstance(value, type) and allowed.refusal(value) is None:
            continue
        return {}
    return dict(annotations)
