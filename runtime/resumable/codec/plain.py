"""The fast path: values that are already plain JSON, written by orjson as they are.

Plain means dicts with `str` keys (none starting with `$`), lists, `str`,
`int` within 64 bits, finite `float`, `bool` and `None`, with no container met
twice, nested at most `max_depth` deep. Decoding a plain value is one
`orjson.loads`.

The check walks a small value directly (`small_plain`: the type of every item,
finite floats, every container new) and a large one level by level, a few
C-level passes per level (`_levels`: `gc.get_referents`, `set(map(type,
...))`): each level's set of types must be JSON types (a tuple, an Enum, a
UUID, a subclass... is not) and its containers new (no sharing, no cycle).
orjson then refuses what types cannot show: a non-`str` key, an int beyond 64
bits, a lone surrogate. In the bytes, a key starting with `$` is searched,
and (for a large value) NaN or infinity, which orjson writes as null, shows
as more nulls than the value has `None`s. Anything else takes the general
path (encoder.py), and so does a value whose strings alone are longer than
the size limit (the walks add up their lengths, where it is cheap): it is
refused there before orjson copies it.

`nested_within` checks the nesting of a plain value read from storage.

The checksum of a document is here too: its last member, the seal (`seal`,
`sealed`), makes the CRC-32 of all its bytes a constant, SEALED.
"""

from __future__ import annotations

import gc
import math
import zlib
from itertools import compress
from typing import Any
from zlib import crc32

import orjson

__all__ = [
    "DOLLAR",
    "SEALED",
    "SEAL_OPEN",
    "SEAL_T0",
    "SEAL_T1",
    "SEAL_T2",
    "dumps_plain",
    "nested_within",
    "plain_fields",
    "seal",
    "sealed",
    "small_plain",
]

NoneType = type(None)
_LEAVES = frozenset({str, int, float, bool, NoneType})
_TYPES = _LEAVES | {dict, list}
_CONTAINERS = frozenset({dict, list})
#: Leaves other than str whose every value is plain (an int orjson refuses is
#: refused there). str is tested before them: the walks add up its lengths.
_OTHER_SCALARS = frozenset({int, bool, NoneType})
#: Types whose every value has a len() (an item of a container takes a byte at least).
_SIZED = frozenset({str, dict, list})
#: `DOLLAR in data` (an int: a memchr) before searching for `"$`.
DOLLAR = ord("$")


def dumps_plain(value: Any, max_depth: int, max_bytes: int) -> bytes | None:
    """The orjson bytes of `value` when it is plain JSON, else None. None too
    when its strings alone are longer than `max_bytes`: it is not copied
    (the general path refuses it). The bytes may still be longer: the caller
    checks."""
    t = type(value)
    nones = 0
    if t is dict or t is list:
        checked = small_plain(value, max_depth, max_bytes)
        if checked is False:
            return None
        if checked is None:
            nones = _levels(value, max_depth, max_bytes)
            if nones < 0:
                return None
    else:
        checked = True
        if _leaf(value, t) < 0 or (t is str and len(value) > max_bytes):
            return None
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return None  # a non-str key, an int beyond 64 bits, a lone surrogate
    if DOLLAR in data and b'"$' in data:
        return None  # perhaps a key starting with $ (or a string that starts with $)
    if not checked and (data.count(b"null") if nones else b"null" in data) != nones:
        return None  # orjson wrote a NaN or an infinity as null (or a string holds "null")
    return data


def plain_fields(
    values: dict[str, Any], names: tuple[str, ...], max_depth: int, max_bytes: int
) -> dict[str, Any] | None:
    """`{name: values[name] for name in names}` when those values are
    plain-shaped with finite floats (`small_plain`, walking the names as it
    picks them); None when they are not, when a name is missing from
    `values`, when they are too many to tell by a direct walk, or when their
    strings are longer than `max_bytes`."""
    fields = {}
    inner = None  # the containers among the values
    size = 0  # the length of the strings
    try:
        for name in names:
            v = fields[name] = values[name]
            t = type(v)
            if t is str:
                size += len(v)
                continue
            if t in _OTHER_SCALARS:
                continue
            if t is float:
                if v - v != 0.0:  # nan or an infinity
                    return None
            elif t is list or t is dict:
                if inner is None:
                    inner = [v]
                else:
                    inner.append(v)
            else:
                return None
    except KeyError:
        return None  # a local not assigned on the path taken
    if inner is None:
        return fields if size <= max_bytes else None
    if max_depth < 2:
        return None  # containers are too deep already: dumps_plain tells
    if len(inner) == 1:
        x = inner[0]
        if len(x) <= _SMALL:  # a flat container, the common case: walked here
            for v in x.values() if type(x) is dict else x:
                t = type(v)
                if t is str:
                    size += len(v)
                    continue
                if t in _OTHER_SCALARS:
                    continue
                if t is not float:
                    break  # a container: small_plain
                if v - v != 0.0:
                    return None
            else:
                return fields if size <= max_bytes else None
        checked = small_plain(x, max_depth - 1, max_bytes - size)
    else:  # `inner` as a list: its items are the containers, at their depth
        checked = small_plain(inner, max_depth, max_bytes - size)
    return fields if checked else None


# -- the seal --------------------------------------------------------------------------
#
# A document ends with the member `"seal":"<8 characters>"`: characters of
# `01234567pqrstuvw` chosen so that the CRC-32 of the whole document, as stored
# (`zlib.crc32(data)`), is SEALED. Checking a document is one crc32 of its
# bytes; any flipped byte, truncation or edit changes that CRC.
#
# CRC-32 is linear: flipping one bit of the seal flips a fixed set of bits of
# the CRC, the same whatever comes before it, since the seal always ends 2
# bytes before the end. Each character of the seal has 4 free bits (0, 1, 2
# and 6: 0x30 "0" ... 0x77 "w"); their 32 effects are independent, so the seal
# can give any CRC: it is a linear function of the CRC of the bytes before it,
# computed with three 2048-entry tables (`sealed`).

#: The CRC-32 of every sealed document.
SEALED = 0xFFFFFFFF
#: What comes before and after the seal's characters.
SEAL_OPEN = b',"seal":"'
_SEAL_CLOSE = b'"}'
_SEAL_ZERO = b"00000000"  # every free bit 0
_FREE_BITS = (0, 1, 2, 6)


def _seal_tables() -> tuple[list[int], list[int], list[int]]:
    """Tables t0, t1, t2 such that the end of a document whose bytes before
    it have the CRC-32 c is `(t0[c & 2047] ^ t1[c >> 11 & 2047] ^ t2[c >> 22])
    .to_bytes(10, "big")`: the seal's 8 characters, then `"}`."""
    free = [(j, bit) for j in range(8) for bit in _FREE_BITS]
    base = zlib.crc32(_SEAL_ZERO + _SEAL_CLOSE)

    def effect(j: int, bit: int) -> int:
        chars = bytearray(_SEAL_ZERO)
        chars[j] ^= 1 << bit
        return zlib.crc32(bytes(chars) + _SEAL_CLOSE) ^ base

    # Gaussian elimination over GF(2): for each CRC bit, the free bits whose
    # effects add up to that bit alone.
    pivots: dict[int, tuple[int, int]] = {}  # highest bit -> (effect, free bits)
    for k, (j, bit) in enumerate(free):
        e, m = effect(j, bit), 1 << k
        for p in sorted(pivots, reverse=True):
            if e >> p & 1:
                e, m = e ^ pivots[p][0], m ^ pivots[p][1]
        if not e:
            raise AssertionError("the seal's free bits are not independent")
        pivots[e.bit_length() - 1] = (e, m)
    unit: list[int] = [0] * 32
    for p in range(32):
        e, m = pivots[p]
        for q in range(p):
            if e >> q & 1:
                m ^= unit[q]
        unit[p] = m

    def seal_of(target: int) -> int:
        """The characters' bits (relative to _SEAL_ZERO) whose effect is `target`."""
        m = 0
        for p in range(32):
            if target >> p & 1:
                m ^= unit[p]
        chars = 0
        for k, (j, bit) in enumerate(free):
            if m >> k & 1:
                chars ^= 1 << (8 * (7 - j) + bit)
        return chars

    # crc32(seal + close, c) = base ^ shift(c) ^ effect(seal); shift is linear in c.
    shift = [zlib.crc32(_SEAL_ZERO + _SEAL_CLOSE, 1 << p) ^ base for p in range(32)]
    zero = int.from_bytes(_SEAL_ZERO, "big") ^ seal_of(SEALED ^ base)
    zero = zero << 16 | int.from_bytes(_SEAL_CLOSE, "big")  # then the closing `"}`
    tables = []
    for low_bit, bits in ((0, 11), (11, 11), (22, 10)):
        basis = [seal_of(shift[low_bit + b]) << 16 for b in range(bits)]
        table = [zero if low_bit == 0 else 0] * (1 << bits)
        for v in range(1, 1 << bits):
            low = v & -v
            table[v] = table[v ^ low] ^ basis[low.bit_length() - 1]
        tables.append(table)
    return tables[0], tables[1], tables[2]


SEAL_T0, SEAL_T1, SEAL_T2 = _seal_tables()


def sealed(head: bytes) -> bytes:
    """The document `head` + seal + `"}`: `head` is a JSON object's bytes up
    to its last member, then SEAL_OPEN."""
    c = crc32(head)
    return head + (SEAL_T0[c & 2047] ^ SEAL_T1[c >> 11 & 2047] ^ SEAL_T2[c >> 22]).to_bytes(
        10, "big"
    )


def seal(data: bytes) -> bytes:
    """A JSON object's bytes with the seal added as its last member."""
    return sealed(data[:-1] + SEAL_OPEN if data != b"{}" else b'{"seal":"')


#: Values with at most this many elements are checked by a direct walk;
#: larger ones level by level, where each step is one C-level pass.
_SMALL = 64


def small_plain(value: dict[str, Any] | list[Any], max_depth: int, max_bytes: int) -> bool | None:
    """Whether a dict or list is plain-shaped (its keys aside) with finite
    floats and strings no longer than `max_bytes` in all, by a direct walk;
    None when it has more than _SMALL elements (or contains itself: the walk
    goes round until it has seen that many)."""
    budget = _SMALL - len(value)
    if budget < 0:
        return None
    todo = None  # containers to walk, with their depth
    x: Any = value
    depth = 1
    size = 0  # the length of the strings
    while True:
        for v in x.values() if type(x) is dict else x:
            t = type(v)
            if t is str:
                size += len(v)
                continue
            if t in _OTHER_SCALARS:
                continue
            if t is float:
                if v - v != 0.0:  # nan or an infinity
                    return False
            elif t is list or t is dict:
                budget -= len(v)
                if budget < 0:
                    return None
                if todo is None:
                    todo = [(v, depth + 1)]
                    met = [value, v]
                else:
                    todo.append((v, depth + 1))
                    met.append(v)
            else:
                return False
        if not todo:
            break
        x, depth = todo.pop()
        if depth > max_depth:
            return False
    if size > max_bytes:
        return False  # too long: the general path refuses it before a copy
    if todo is None:
        return True  # no container inside
    # No container met twice (shared: identity must be kept, the general path).
    # Two are two (the value inside itself would be a cycle, never walked to the end).
    return len(met) == 2 or len(set(map(id, met))) == len(met)


def _leaf(value: Any, t: type) -> int:
    if t is float:
        return 0 if math.isfinite(value) else -1
    return int(value is None) if t in _LEAVES else -1


def _levels(value: Any, max_depth: int, max_bytes: int) -> int:
    """The number of None values of a plain-shaped value (-1 when it is not),
    level by level; its floats are not checked here. -1 too when the strings
    of its levels that hold no number, bool or None (a list of strings) are
    longer than `max_bytes`: a cheap lower bound of its size, one C-level
    pass on such levels (the caller checks the size of the bytes)."""
    level: list[Any] = [value]
    seen: set[int] = set()
    depth = nones = size = 0
    while level:
        depth += 1
        if depth > max_depth:
            return -1
        known = len(seen)
        seen.update(map(id, level))
        if len(seen) != known + len(level):
            return -1  # a container met twice: shared, or a cycle
        refs = gc.get_referents(*level)  # the values of dicts, the items of lists
        each = list(map(type, refs))
        types = set(each)
        if not types <= _TYPES:
            return -1
        if str in types and types <= _SIZED:  # strings and containers: len() of each
            size += sum(map(len, refs))
            if size > max_bytes:
                return -1
        if NoneType in types:
            nones += refs.count(None)
        if types <= _CONTAINERS:  # containers only: the next level as it is
            level = refs
        elif dict in types or list in types:  # the containers, picked at C speed
            level = list(compress(refs, map(_CONTAINERS.__contains__, each)))
        else:
            level = []
    return nones


def nested_within(value: Any, max_depth: int) -> bool:
    """Whether no dict or list of a value parsed by orjson is nested deeper
    than `max_depth` (the value itself is at depth 0), level by level: each
    level is one `gc.get_referents` of the one before (strings, numbers,
    bools and None have no referents)."""
    level: list[Any] = [value]
    for _ in range(max_depth + 1):
        level = gc.get_referents(*level)
        if not level:
            return True
    return _CONTAINERS.isdisjoint(map(type, level))  # below max_depth: leaves only
