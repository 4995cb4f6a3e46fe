"""The fast path: is a value plain JSON that orjson can write as it is?

Plain means dicts with `str` keys (none starting with `$`), lists, `str`
(valid UTF-8), `int` within 64 bits, finite `float`, `bool` and `None`, no
container met twice, and not nested deeper than the limit. Most checkpoints
are plain; they are written by orjson directly and read back without a walk.
Anything else takes the general path (encoder.py).
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_plain"]

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1


def is_plain(value: Any, max_depth: int) -> bool:
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        x, depth = pop()
        t = type(x)
        if t is dict:
            values = x.values()
            for k in x:
                if type(k) is not str or k[:1] == "$" or not (k.isascii() or _utf8(k)):
                    return False
        elif t is list:
            values = x
        else:
            return _scalar(x, t)
        if depth > max_depth or id(x) in seen:
            return False
        seen.add(id(x))
        for v in values:
            tv = type(v)
            if tv is str:
                if not (v.isascii() or _utf8(v)):
                    return False
            elif tv is int:
                if not _INT_MIN <= v <= _INT_MAX:
                    return False
            elif tv is float:
                if v - v != 0.0:  # nan or inf
                    return False
            elif tv is dict or tv is list:
                push((v, depth + 1))
            elif v is not None and tv is not bool:
                return False
    return True


def _scalar(x: Any, t: type) -> bool:
    if t is str:
        return x.isascii() or _utf8(x)
    if t is int:
        return _INT_MIN <= x <= _INT_MAX
    if t is float:
        return x - x == 0.0
    return x is None or t is bool


def _utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
