"""The fast path: values that are already plain JSON, written by orjson as they are.

Plain means dicts with `str` keys (none starting with `$`), lists, `str`,
`int` within 64 bits, finite `float`, `bool` and `None`, with no container met
twice, nested at most `max_depth` deep. Decoding a plain value is one
`orjson.loads`.

The check walks containers level by level, a few C-level passes per level
(`gc.get_referents`, `set(map(type, ...))`): each level's set of types must
be JSON types (a tuple, an Enum, a UUID, a subclass... is not) and its
containers new (no sharing, no cycle). orjson then refuses what types cannot
show: a non-`str` key, an int beyond 64 bits, a lone surrogate. In the bytes,
a key starting with `$` is searched, and NaN or infinity (which orjson writes
as null) shows as more nulls than the value has `None`s. Anything else takes
the general path (encoder.py).
"""

from __future__ import annotations

import gc
import math
import zlib
from typing import Any

import orjson

__all__ = ["dumps_plain", "seal"]

NoneType = type(None)
_LEAVES = frozenset({str, int, float, bool, NoneType})
_TYPES = _LEAVES | {dict, list}


def dumps_plain(document: dict[str, Any], key: str, max_depth: int) -> bytes | None:
    """`document` as sealed JSON bytes (see `seal`) when its value at `key` is
    plain, else None."""
    value = document[key]
    nones = _small(value, max_depth)
    checked_floats = nones is not None
    if nones is None:
        nones = _levels(value, max_depth)
    if nones < 0:
        return None
    try:
        data = orjson.dumps(document)
    except orjson.JSONEncodeError:
        return None  # a non-str key, an int beyond 64 bits, a lone surrogate
    if b"$" in data and b'"$' in data:
        return None  # perhaps a key starting with $ (or a string that starts with $)
    if not checked_floats and (data.count(b"null") if nones else b"null" in data) != nones:
        return None  # orjson wrote a NaN or an infinity as null (or a string holds "null")
    return b'{"crc":"%08x",%s' % (zlib.crc32(data), data[1:])  # seal(data)


def seal(data: bytes) -> bytes:
    """Put `"crc": "89abcdef"` first in a JSON object's bytes: the CRC-32 of
    the object without that member."""
    return b'{"crc":"%08x",%s' % (zlib.crc32(data), data[1:])


#: Values with at most this many elements are checked by a direct walk;
#: larger ones level by level, where each step is one C-level pass.
_SMALL = 64


def _small(value: Any, max_depth: int) -> int | None:
    """The number of None values of a plain-shaped value with finite floats
    (-1 when it is not), by a direct walk; None when it has more than _SMALL
    elements."""
    t = type(value)
    if t is not dict and t is not list:
        return _leaf(value, t)
    budget = _SMALL - len(value)
    if budget < 0:
        return None
    nones = 0
    todo: list[tuple[Any, int]] | None = None
    seen: set[int] = set()
    x, depth = value, 1
    while True:
        for v in x.values() if type(x) is dict else x:
            t = type(v)
            if t is str or t is int:
                continue
            if v is None:
                nones += 1
            elif t is float:
                if v - v != 0.0:  # nan or an infinity
                    return -1
            elif t is list or t is dict:
                budget -= len(v)
                if budget < 0:
                    return None
                if todo is None:
                    todo = []
                    seen.add(id(value))
                if id(v) in seen:
                    return -1  # a container met twice: shared, or a cycle
                seen.add(id(v))
                todo.append((v, depth + 1))
            elif t is not bool:
                return -1
        if not todo:
            return nones
        x, depth = todo.pop()
        if depth > max_depth:
            return -1


def _leaf(value: Any, t: type) -> int:
    if t is float:
        return 0 if math.isfinite(value) else -1
    return int(value is None) if t in _LEAVES else -1


def _levels(value: Any, max_depth: int) -> int:
    """The number of None values of a plain-shaped value (-1 when it is not),
    level by level; its floats are not checked here."""
    level: list[Any] = [value]
    seen: set[int] = set()
    depth = nones = 0
    while level:
        depth += 1
        if depth > max_depth:
            return -1
        ids = set(map(id, level))
        if len(ids) != len(level) or not seen.isdisjoint(ids):
            return -1  # a container met twice: shared, or a cycle
        seen |= ids
        refs = gc.get_referents(*level)  # the values of dicts, the items of lists
        types = set(map(type, refs))
        if not types <= _TYPES:
            return -1
        if NoneType in types:
            nones += refs.count(None)
        if dict in types or list in types:
            level = [o for o in refs if type(o) is dict or type(o) is list]
        else:
            level = []
    return nones
