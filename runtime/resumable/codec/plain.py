"""The fast path: values that are already plain JSON, written and read by
orjson at C speed.

Plain means dicts with `str` keys (none starting with `$`), lists, `str`,
`int` within 64 bits, finite `float`, `bool` and `None`, with no container met
twice. Instead of checking every value in Python, orjson writes the document
refusing anything that is not native JSON (subclasses, dataclasses, datetimes
go to a `default` that refuses), the bytes are read back, and the copy is
compared with the original (a C-level deep comparison): a tuple read back as
a list, a NaN as null, an Enum as its value, a UUID as a string all compare
unequal. What equality cannot see is checked in Python on containers only,
and first (orjson must never see a cycle: one through a tuple crashes
orjson 3.13): shared or cyclic containers (through `gc.get_referents`),
nesting depth, and keys starting with `$` (searched in the bytes).

A document that fails any check takes the general path (encoder.py).
"""

from __future__ import annotations

import gc
from typing import Any

import orjson

__all__ = ["round_trip"]

_OPTIONS = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


class _NotPlain(Exception):
    pass


def _refuse(value: Any) -> Any:
    raise _NotPlain


def round_trip(document: dict[str, Any], key: str, max_depth: int) -> tuple[bytes, Any] | None:
    """Write `document` (whose `key` holds the value) as JSON and read the
    value back: (bytes, the copy), or None when the value is not plain."""
    value = document[key]
    if not _unshared(value, max_depth):
        return None
    try:
        data = orjson.dumps(document, default=_refuse, option=_OPTIONS)
    except (orjson.JSONEncodeError, _NotPlain):
        return None  # not JSON-native, a big int, a lone surrogate, too deep, ...
    if b'{"$' in data or b',"$' in data:
        return None  # perhaps a key starting with $ (or a string that starts with $)
    copy = orjson.loads(data)[key]
    try:
        if copy != value:
            return None
    except Exception:  # an object whose __eq__ fails
        return None
    return data, copy


_CONTAINERS = (dict, list, tuple)


def _unshared(value: Any, max_depth: int) -> bool:
    """No dict, list or tuple is reached twice (no sharing, no cycle), and
    they nest at most `max_depth` deep."""
    level = [value] if type(value) in _CONTAINERS else []
    seen: set[int] = set()
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return False
        for container in level:
            if id(container) in seen:
                return False
            seen.add(id(container))
        level = [o for o in gc.get_referents(*level) if type(o) in _CONTAINERS]
    return True
