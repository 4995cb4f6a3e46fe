"""A strict recursive comparator for decoded values.

`assert_same(expected, actual)` raises AssertionError naming the path of the
first difference. It checks, recursively:

- exact types (1 vs True vs 1.0, tuple vs list, a subclass vs its base);
- floats bit for bit in sign (-0.0 is not 0.0) with nan equal to nan;
- dict order, set members matched strictly, Decimal digits and exponent;
- datetimes and times: fields, fold, and the tzinfo itself (type, offset,
  name, ZoneInfo key), not just the instant;
- Enum members by identity; classes, functions and modules by identity;
  bound methods by their function (or name) and their object, super objects
  by their class and object;
- instances (dataclasses, exceptions, pydantic models, subclasses of built-in
  types) through their stored state;
- identity: objects shared in `expected` are shared the same way in
  `actual`, distinct ones stay distinct, and cycles are followed once.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import fractions
import math
import pathlib
import types
import uuid
import zoneinfo
from typing import Any

from resumable.codec import traceback_text

__all__ = ["assert_same", "same"]

_TRACEBACK_ATTRIBUTE = "__resumable_traceback__"

# Values compared by value only (immutable, may be cached or interned).
_ATOMS = (type(None), bool, int, float, complex, str, bytes)
# Immutable values stored by value: compared by value, identity not expected.
_VALUES = (
    datetime.datetime, datetime.date, datetime.time, datetime.timedelta, datetime.timezone,
    zoneinfo.ZoneInfo, decimal.Decimal, uuid.UUID, fractions.Fraction, range,
    pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath, pathlib.WindowsPath,
)  # fmt: skip
# Objects that must decode to the very same object.
_SINGLETONS = (enum.Enum, type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType)


def same(expected: Any, actual: Any) -> bool:
    try:
        assert_same(expected, actual)
    except AssertionError:
        return False
    return True


def assert_same(expected: Any, actual: Any) -> None:
    _Comparator().check(expected, actual, "value")


class _Comparator:
    def __init__(self) -> None:
        self.forward: dict[int, Any] = {}  # id(expected part) -> actual part
        self.backward: dict[int, Any] = {}  # id(actual part) -> expected part

    def fail(self, path: str, why: str) -> None:
        raise AssertionError(f"{path}: {why}")

    def check(self, a: Any, b: Any, path: str) -> None:
        ta, tb = type(a), type(b)
        if ta is not tb:
            self.fail(path, f"type {tb.__qualname__} instead of {ta.__qualname__} ({b!r:.80})")
        if ta in _ATOMS:
            self.atom(a, b, path)
        elif _bound(a) is not None:
            self.bound(a, b, path)
        elif isinstance(a, _SINGLETONS):
            if a is not b:
                self.fail(path, f"{b!r:.80} is not the same object as {a!r:.80}")
        elif ta in _VALUES:
            self.value(a, b, path)
        elif id(a) in self.forward:  # shared stays shared (and cycles end)
            if self.forward[id(a)] is not b:
                self.fail(path, "an object shared in the original is not shared in the copy")
        elif id(b) in self.backward:
            self.fail(path, "distinct objects in the original are one object in the copy")
        else:
            if not ((ta is tuple or ta is frozenset) and not a):  # empty ones may be singletons
                self.forward[id(a)] = b
                self.backward[id(b)] = a
            self.compare(a, b, path)

    def bound(self, a: Any, b: Any, path: str) -> None:
        """A bound method (or super object): what it calls, and its object."""
        (fa, sa), (fb, sb) = _bound(a), _bound(b)
        if fa is not fb and fa != fb:
            self.fail(path, f"{b!r:.80} is not bound to the same function as {a!r:.80}")
        self.check(sa, sb, path + ".__self__")

    def value(self, a: Any, b: Any, path: str) -> None:
        """Immutable values the codec stores by value (identity not kept)."""
        t = type(a)
        if t is datetime.datetime or t is datetime.time:
            self.clock(a, b, path)
        elif t is datetime.timezone:
            self.tz(a, b, path)
        elif t is zoneinfo.ZoneInfo:
            if a.key != b.key:
                self.fail(path, f"{b!r} instead of {a!r}")
        elif t is decimal.Decimal:
            if a.as_tuple() != b.as_tuple():
                self.fail(path, f"{b!r} instead of {a!r}")
        elif t is uuid.UUID:
            if a.int != b.int or a.is_safe != b.is_safe:
                self.fail(path, f"{b!r} ({b.is_safe}) instead of {a!r} ({a.is_safe})")
        elif t is range:
            if (a.start, a.stop, a.step) != (b.start, b.stop, b.step):
                self.fail(path, f"{b!r} instead of {a!r}")
        elif a != b:
            self.fail(path, f"{b!r} instead of {a!r}")

    def atom(self, a: Any, b: Any, path: str) -> None:
        if type(a) is float:
            if math.isnan(a):
                if not math.isnan(b):
                    self.fail(path, f"{b!r} instead of nan")
            elif a != b or math.copysign(1.0, a) != math.copysign(1.0, b):
                self.fail(path, f"{b!r} instead of {a!r}")
        elif type(a) is complex:
            self.atom(a.real, b.real, path + ".real")
            self.atom(a.imag, b.imag, path + ".imag")
        elif a != b:
            self.fail(path, f"{b!r:.80} instead of {a!r:.80}")

    def compare(self, a: Any, b: Any, path: str) -> None:
        if isinstance(a, BaseException):
            self.exception(a, b, path)
        elif _is_pydantic(a):
            self.state(a.__dict__, b.__dict__, path, ".")
            for attr in ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
                self.check(getattr(a, attr), getattr(b, attr), f"{path}.{attr}")
        elif isinstance(a, dict):
            self.dict(a, b, path)
            if isinstance(a, collections.defaultdict):
                self.check(a.default_factory, b.default_factory, path + ".default_factory")
            self.attrs(a, b, path)
        elif isinstance(a, collections.deque):
            if a.maxlen != b.maxlen:
                self.fail(path, f"maxlen {b.maxlen} instead of {a.maxlen}")
            self.sequence(list(a), list(b), path, None)
        elif isinstance(a, list | tuple):  # the base's items: no overridden __iter__ runs
            base = list if isinstance(a, list) else tuple
            self.sequence(base(base.__iter__(a)), base(base.__iter__(b)), path, type(a))
            self.attrs(a, b, path)
        elif isinstance(a, set | frozenset):
            self.set(a, b, path)
            self.attrs(a, b, path)
        elif isinstance(a, bytearray):
            if a != b:
                self.fail(path, f"{b!r:.80} instead of {a!r:.80}")
        elif isinstance(a, str | int | float | bytes):  # subclasses: base value + attributes
            base = next(c for c in (str, int, float, bytes) if isinstance(a, c))
            self.atom(base(_base_value(a, base)), base(_base_value(b, base)), path + ".<value>")
            self.attrs(a, b, path)
        else:
            self.instance(a, b, path)

    # -- kinds ---------------------------------------------------------------------

    def clock(self, a: Any, b: Any, path: str) -> None:
        if a.replace(tzinfo=None) != b.replace(tzinfo=None) or a.fold != b.fold:
            self.fail(path, f"{b!r} (fold={b.fold}) instead of {a!r} (fold={a.fold})")
        if (a.tzinfo is None) != (b.tzinfo is None):
            self.fail(path, f"tzinfo {b.tzinfo!r} instead of {a.tzinfo!r}")
        if a.tzinfo is not None:
            self.check(a.tzinfo, b.tzinfo, path + ".tzinfo")
            if isinstance(a, datetime.datetime) and (
                a.utcoffset() != b.utcoffset() or a.tzname() != b.tzname()
            ):
                self.fail(path, f"offset {b.utcoffset()} instead of {a.utcoffset()}")

    def tz(self, a: datetime.timezone, b: datetime.timezone, path: str) -> None:
        if a.utcoffset(None) != b.utcoffset(None) or a.tzname(None) != b.tzname(None):
            self.fail(path, f"{b!r} instead of {a!r}")
        if (a is datetime.UTC) != (b is datetime.UTC):
            self.fail(path, "timezone.utc singleton lost")

    def sequence(self, a: Any, b: Any, path: str, cls: type | None) -> None:
        if len(a) != len(b):
            self.fail(path, f"{len(b)} items instead of {len(a)}")
        fields = getattr(cls, "_fields", None)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            step = f".{fields[i]}" if fields and i < len(fields) else f"[{i}]"
            self.check(x, y, path + step)

    def dict(self, a: dict[Any, Any], b: dict[Any, Any], path: str) -> None:
        if len(a) != len(b):
            self.fail(path, f"{len(b)} entries instead of {len(a)}")
        for (ka, va), (kb, vb) in zip(dict.items(a), dict.items(b), strict=True):
            self.check(ka, kb, f"{path}.keys()[{ka!r:.30}]")
            self.check(va, vb, f"{path}[{ka!r:.30}]")

    def set(self, a: Any, b: Any, path: str) -> None:
        if len(a) != len(b):
            self.fail(path, f"{len(b)} members instead of {len(a)}")
        unmatched = list(b)
        for x in a:
            for i, y in enumerate(unmatched):
                if same(x, y):
                    self.check(x, y, f"{path}{{{x!r:.30}}}")
                    del unmatched[i]
                    break
            else:
                self.fail(path, f"member {x!r:.60} is missing")

    def exception(self, a: BaseException, b: BaseException, path: str) -> None:
        self.check(a.args, b.args, path + ".args")
        self.state(_exception_state(a), _exception_state(b), path, ".")
        for attr in ("__context__", "__cause__"):
            self.check(getattr(a, attr), getattr(b, attr), f"{path}.{attr}")
        if a.__suppress_context__ != b.__suppress_context__:
            self.fail(path, "__suppress_context__ differs")
        if a.__traceback__ is not None and traceback_text(b) != traceback_text(a):
            self.fail(path, "traceback text lost")

    def attrs(self, a: Any, b: Any, path: str) -> None:
        da, db = getattr(a, "__dict__", None), getattr(b, "__dict__", None)
        if da or db:
            self.state(da or {}, db or {}, path, ".")

    def instance(self, a: Any, b: Any, path: str) -> None:
        sa, sb = _object_state(a), _object_state(b)
        self.state(sa, sb, path, ".")
        if not sa and a != b:  # no visible state: the class's own equality
            self.fail(path, f"{b!r:.80} instead of {a!r:.80}")

    def state(self, a: dict[str, Any], b: dict[str, Any], path: str, sep: str) -> None:
        if list(a) != list(b):
            self.fail(path, f"attributes {list(b)} instead of {list(a)}")
        for k in a:
            self.check(a[k], b[k], f"{path}{sep}{k}")


def _bound(x: Any) -> tuple[Any, Any] | None:
    """(what it calls, its object) of a bound method or super object."""
    if isinstance(x, types.MethodType) or type(x).__name__ == "BoundFunction":
        return x.__func__, x.__self__
    if isinstance(x, types.BuiltinFunctionType) and not isinstance(
        x.__self__, types.ModuleType | None
    ):
        return x.__name__, x.__self__
    if isinstance(x, super):
        return x.__thisclass__, x.__self__
    return None


def _is_pydantic(x: Any) -> bool:
    return hasattr(type(x), "__pydantic_fields__") and hasattr(x, "__pydantic_fields_set__")


def _base_value(x: Any, base: type) -> Any:
    return {str: str.__str__, int: int.__int__, float: float.__float__, bytes: bytes.__bytes__}[
        base
    ](x)


def _exception_state(e: BaseException) -> dict[str, Any]:
    state = {k: v for k, v in vars(e).items() if k != _TRACEBACK_ATTRIBUTE}
    for base, names in (
        (OSError, ("errno", "strerror", "filename", "filename2")),
        (StopIteration, ("value",)),
        (SystemExit, ("code",)),
        (ImportError, ("name", "path")),
        (NameError, ("name",)),
        (SyntaxError, ("msg", "filename", "lineno", "offset", "text")),
        (UnicodeError, ("encoding", "object", "start", "end", "reason")),
    ):
        if isinstance(e, base):
            for name in names:
                state[f"<{name}>"] = getattr(e, name, None)
    return state


def _object_state(x: Any) -> dict[str, Any]:
    state: dict[str, Any] = dict(getattr(x, "__dict__", {}))
    for cls in type(x).__mro__:
        for slot in cls.__dict__.get("__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(x, slot):
                state[slot] = getattr(x, slot)
    return state
