"""Checkpointable positions of for-loops whose body awaits.

A native iterator cannot be written into JSON, so a loop that awaits keeps a
*cursor*: the object iterated plus a position, chosen by the exact type at loop
entry, matching what the native iterator would yield:

    range, list, tuple, str, bytes, bytearray -> (sequence, index); a list's
        length is checked at every step, like list's own iterator
    dict and its keys/values/items views      -> key snapshot + index; values are
        read live; a size change raises the same RuntimeError
    set, frozenset                            -> member snapshot + index
    enumerate/zip/reversed (the builtins)     -> cursors over the above

Anything else (generators, map, files, custom iterators) raises
SerializationError at loop entry, naming the loop and the fix. The `for`
clauses of a comprehension that awaits use the same cursors.
"""

from __future__ import annotations

import builtins
import gc
import operator
from typing import Any

from .codec import register_internal
from .errors import SerializationError

__all__ = ["Cursor", "LazyCall", "cursor"]


class LazyCall:
    """A call in a for-loop header, made when the loop starts."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def materialize(self) -> Any:
        args = [a.materialize() if type(a) is LazyCall else a for a in self.args]
        return self.fn(*args, **self.kwargs)


class Cursor:
    """A loop position. `step()` advances and sets `value`; False when done."""

    __slots__ = ("value",)
    value: Any

    def step(self) -> bool:
        raise NotImplementedError


class SeqCursor(Cursor):
    __slots__ = ("i", "seq")

    def __init__(self, seq: Any, i: int = 0) -> None:
        self.seq = seq
        self.i = i

    def step(self) -> bool:
        i = self.i
        if i < len(self.seq):
            self.value = self.seq[i]
            self.i = i + 1
            return True
        return False


class ReversedCursor(Cursor):
    __slots__ = ("i", "seq")

    def __init__(self, seq: Any, i: int) -> None:
        self.seq = seq
        self.i = i

    def step(self) -> bool:
        i = self.i
        if 0 <= i < len(self.seq):
            self.value = self.seq[i]
            self.i = i - 1
            return True
        self.i = -1
        return False


_DICT_KINDS = ("keys", "values", "items")


class DictCursor(Cursor):
    """Like dict's iterator: entries in order, deleted ones skipped, ones added
    later (with the size unchanged) yielded at the end, and at most as many
    items as the dict had when the loop started."""

    __slots__ = ("d", "extended", "i", "keys", "kind", "remaining", "size")

    def __init__(
        self,
        d: dict[Any, Any],
        kind: str,
        keys: list[Any],
        i: int,
        size: int,
        remaining: int | None = None,
        extended: bool = False,
    ) -> None:
        self.d = d
        self.kind = kind
        self.keys = keys
        self.i = i
        self.size = size
        self.remaining = size if remaining is None else remaining
        self.extended = extended

    def step(self) -> bool:
        d = self.d
        if len(d) != self.size:
            raise RuntimeError("dictionary changed size during iteration")
        keys = self.keys
        while True:
            if self.i >= len(keys):
                if self.extended:
                    return False
                # Entries added since the loop started (others were deleted) come last.
                seen = set(keys)
                keys.extend(k for k in d if k not in seen)
                self.extended = True
                continue
            key = keys[self.i]
            self.i += 1
            if key in d:
                break
        if self.remaining == 0:
            raise RuntimeError("dictionary keys changed during iteration")
        self.remaining -= 1
        if self.kind == "keys":
            self.value = key
        elif self.kind == "values":
            self.value = dict.__getitem__(d, key)
        else:
            self.value = (key, dict.__getitem__(d, key))
        return True


class SetCursor(Cursor):
    __slots__ = ("i", "members", "s", "size")

    def __init__(self, s: Any, members: list[Any], i: int, size: int) -> None:
        self.s = s
        self.members = members
        self.i = i
        self.size = size

    def step(self) -> bool:
        if len(self.s) != self.size:
            raise RuntimeError("Set changed size during iteration")
        i = self.i
        if i >= len(self.members):
            return False
        self.value = self.members[i]
        self.i = i + 1
        return True


class EnumerateCursor(Cursor):
    __slots__ = ("count", "inner")

    def __init__(self, inner: Cursor, count: int) -> None:
        self.inner = inner
        self.count = count

    def step(self) -> bool:
        if not self.inner.step():
            return False
        self.value = (self.count, self.inner.value)
        self.count += 1
        return True


class ZipCursor(Cursor):
    __slots__ = ("inners", "strict")

    def __init__(self, inners: list[Cursor], strict: bool) -> None:
        self.inners = inners
        self.strict = strict

    def step(self) -> bool:
        if not self.inners:
            return False
        values = []
        for i, inner in enumerate(self.inners):
            if not inner.step():
                if self.strict:
                    self._check_strict(i)
                return False
            values.append(inner.value)
        self.value = tuple(values)
        return True

    def _check_strict(self, i: int) -> None:
        # CPython's messages for zip(strict=True).
        if i:
            plural = " " if i == 1 else "s 1-"
            raise ValueError(f"zip() argument {i + 1} is shorter than argument{plural}{i}")
        for j, other in enumerate(self.inners[1:], start=1):
            if other.step():
                plural = " " if j == 1 else "s 1-"
                raise ValueError(f"zip() argument {j + 1} is longer than argument{plural}{j}")


_SEQUENCES = (range, list, tuple, str, bytes, bytearray)


def _dict_of_view(view: Any) -> dict[Any, Any]:
    for ref in gc.get_referents(view):
        if isinstance(ref, dict):
            return ref
    raise AssertionError("a dict view without its dict")  # pragma: no cover


def _plain(value: Any, where: str) -> Cursor:
    t = type(value)
    for base in _SEQUENCES:
        if t is base or (isinstance(value, base) and t.__iter__ is base.__iter__):
            return SeqCursor(value)
    if isinstance(value, dict) and t.__iter__ is dict.__iter__:
        return DictCursor(value, "keys", list(value), 0, len(value))
    if t in _VIEW_KINDS:
        d = _dict_of_view(value)
        return DictCursor(d, _VIEW_KINDS[t], list(d), 0, len(d))
    if isinstance(value, set | frozenset) and t.__iter__ in (set.__iter__, frozenset.__iter__):
        return SetCursor(value, list(value), 0, len(value))
    iter(value)  # not iterable at all: CPython's own TypeError
    inside = "in its body" if where.startswith("the for-loop ") else "in it"
    raise SerializationError(
        f"{where} iterates a {_describe(t)}, whose position cannot be "
        f"checkpointed across the awaits {inside}; "
        "fix: iterate a list instead, for example `for x in list(...)`"
    )


_VIEW_KINDS: dict[type, str] = {
    type({}.keys()): "keys",
    type({}.values()): "values",
    type({}.items()): "items",
}


def _describe(t: type) -> str:
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return f"`{name}`"


def _reversed(value: Any, where: str) -> Cursor:
    t = type(value)
    if t in (range, list, tuple, str, bytes, bytearray):
        return ReversedCursor(value, len(value) - 1)
    if t is dict:
        keys = list(reversed(value))
        return DictCursor(value, "keys", keys, 0, len(value))
    if t in _VIEW_KINDS:
        d = _dict_of_view(value)
        return DictCursor(d, _VIEW_KINDS[t], list(reversed(d)), 0, len(d))
    return _plain(builtins.reversed(value), where)


def _from_lazy(call: LazyCall, where: str) -> Cursor:
    fn, args, kwargs = call.fn, call.args, call.kwargs
    if fn is builtins.enumerate and 1 <= len(args) <= 2 and set(kwargs) <= {"start"}:
        if len(args) == 2 and kwargs:
            return _cursor(call.materialize(), where)  # the builtin's own TypeError
        # Like enumerate(): the start is converted before the iterable is iterated.
        start = operator.index(args[1] if len(args) > 1 else kwargs.get("start", 0))
        return EnumerateCursor(_cursor(args[0], where), start)
    if fn is builtins.zip and set(kwargs) <= {"strict"}:
        return ZipCursor([_cursor(a, where) for a in args], bool(kwargs.get("strict", False)))
    if fn is builtins.reversed and len(args) == 1 and not kwargs:
        inner = args[0]
        return _reversed(inner.materialize() if type(inner) is LazyCall else inner, where)
    return _cursor(call.materialize(), where)


def cursor(iterable: Any, where: str, construct: str = "for-loop") -> Cursor:
    """A cursor for `for ... in iterable` (a value or a LazyCall) of the
    `construct` ("for-loop" or "comprehension") at `where` (file:line)."""
    return _cursor(iterable, f"the {construct} at {where}")


def _cursor(iterable: Any, where: str) -> Cursor:
    if type(iterable) is LazyCall:
        return _from_lazy(iterable, where)
    return _plain(iterable, where)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise TypeError(f"not a valid {what}")


def _seq_cursor(state: list[Any]) -> SeqCursor:
    seq, i = state
    if not (isinstance(seq, _SEQUENCES) and type(i) is int and i >= 0):  # _check, inlined:
        raise TypeError("not a valid sequence position")  # at every await of a range loop
    return SeqCursor(seq, i)


def _reversed_cursor(state: list[Any]) -> ReversedCursor:
    seq, i = state
    if not (isinstance(seq, _SEQUENCES) and type(i) is int and i >= -1):
        raise TypeError("not a valid reversed position")
    return ReversedCursor(seq, i)


def _dict_cursor(state: list[Any]) -> DictCursor:
    d, kind, keys, i, size, remaining, extended = state
    _check(
        isinstance(d, dict) and kind in _DICT_KINDS and type(keys) is list
        and type(i) is int and type(size) is int and 0 <= i <= len(keys)
        and type(remaining) is int and 0 <= remaining <= size and type(extended) is bool,
        "dict position",
    )  # fmt: skip
    return DictCursor(d, kind, keys, i, size, remaining, extended)


def _set_cursor(state: list[Any]) -> SetCursor:
    s, members, i, size = state
    _check(
        isinstance(s, set | frozenset) and type(members) is list and type(i) is int
        and type(size) is int and 0 <= i <= len(members),
        "set position",
    )  # fmt: skip
    return SetCursor(s, members, i, size)


def _enumerate_cursor(state: list[Any]) -> EnumerateCursor:
    inner, count = state
    _check(isinstance(inner, Cursor) and type(count) is int, "enumerate position")
    return EnumerateCursor(inner, count)


def _zip_cursor(state: list[Any]) -> ZipCursor:
    inners, strict = state
    _check(
        type(inners) is list
        and all(isinstance(c, Cursor) for c in inners)
        and type(strict) is bool,
        "zip position",
    )
    return ZipCursor(inners, strict)


# (seq, i) by one C call: the codec takes it at every await of a range loop.
register_internal(SeqCursor, "loop.seq", operator.attrgetter("seq", "i"), _seq_cursor)
register_internal(
    ReversedCursor, "loop.reversed", operator.attrgetter("seq", "i"), _reversed_cursor
)
register_internal(
    DictCursor,
    "loop.dict",
    lambda c: [c.d, c.kind, c.keys, c.i, c.size, c.remaining, c.extended],
    _dict_cursor,
)
register_internal(SetCursor, "loop.set", lambda c: [c.s, c.members, c.i, c.size], _set_cursor)
register_internal(
    EnumerateCursor, "loop.enumerate", lambda c: [c.inner, c.count], _enumerate_cursor
)
register_internal(ZipCursor, "loop.zip", lambda c: [c.inners, c.strict], _zip_cursor)
