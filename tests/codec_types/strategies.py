"""Hypothesis strategies over every kind of value the codec stores, nested
recursively, with shared and cyclic structure.

Left out on purpose (each pinned by a strict xfail test instead, so the
properties keep guarding everything else):
- lone surrogates in str dict keys (test_codec_kinds.py::test_lone_surrogate_dict_key);
- ints over ~400,000 bits (test_codec_kinds.py::test_int_too_big_to_decode).
"""

from __future__ import annotations

import collections
import datetime
import decimal
import math
from typing import Any

from hypothesis import strategies as st

from . import models as m

__all__ = ["hashables", "values"]

_surrogates = st.characters(categories=["Cs"])
_texts = (
    st.text(max_size=6)
    | st.text(st.characters() | _surrogates, max_size=4)
    | st.sampled_from(["$id", "$v", "$ref", "$tuple", "$int", "$exc", "$", "$$", "é"])
)
_key_texts = st.text(max_size=6) | st.sampled_from(["$id", "$ref", "$tuple", "$"])
_ints = (
    st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.integers(max_value=-(2**63) + 2)
    # the hex form (bit_length >= 10,000), built so the strategy's repr stays small
    | st.tuples(st.integers(10_000, 12_000), st.integers(0, 2**64)).map(lambda p: 2 ** p[0] + p[1])
)
_floats = st.floats() | st.sampled_from([math.nan, -0.0, math.inf, -math.inf, 5e-324])
_offsets = st.integers(-23 * 60, 23 * 60).map(lambda minutes: datetime.timedelta(minutes=minutes))
_timezones = (
    st.none()
    | st.just(datetime.UTC)
    | st.builds(datetime.timezone, _offsets)
    | st.builds(datetime.timezone, _offsets, st.text(max_size=5))
    | st.timezones()
)
_datetimes = st.builds(
    lambda d, fold: d.replace(fold=fold),
    st.datetimes(timezones=_timezones),
    st.integers(0, 1),
)
_times = st.builds(
    lambda t, fold: t.replace(fold=fold), st.times(timezones=_timezones), st.integers(0, 1)
)
_decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [decimal.Decimal("-0"), decimal.Decimal("1.10"), decimal.Decimal("sNaN")]
)
_ranges = st.builds(
    range, st.integers(-5, 2**70), st.integers(-5, 2**70), st.integers(1, 3) | st.integers(-3, -1)
)
_enums = st.one_of(  # one branch per class: sampled_from favours its first element
    st.sampled_from(m.Color),
    st.sampled_from([*m.Perm, m.Perm.R | m.Perm.X, m.Perm(0)]),
    st.sampled_from(m.Level),
    st.sampled_from(m.Mode),
    st.sampled_from([*m.Bits, m.Bits(3)]),
)

# Values that can be dict keys and set members.
_hashable_leaves = (
    st.none()
    | st.booleans()
    | _ints
    | st.floats()
    | _key_texts
    | st.binary(max_size=6)
    | _ranges
    | _enums
    | _datetimes
    | st.dates()
    | st.timedeltas()
    | st.decimals(allow_nan=False)
    | st.uuids()
    | st.fractions()
    | st.builds(m.Money, st.integers(), st.sampled_from(["EUR", "USD"]))
)

hashables = st.recursive(
    _hashable_leaves,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3).map(tuple)
        | st.frozensets(inner, min_size=1, max_size=3)
        | st.builds(m.Pair, inner, inner)
        | st.builds(m.Coord, st.floats(), st.floats())
        | st.builds(m.Frozen, _key_texts, st.lists(inner, max_size=2).map(tuple))
        | st.builds(m.Row, st.lists(inner, max_size=2))
        | st.builds(m.FrozenTags, st.sets(inner, max_size=2))
    ),
    max_leaves=6,
)

_leaves = (
    _hashable_leaves
    | _enums
    | _texts
    | _floats
    | _times
    | _decimals
    | st.binary(max_size=6).map(bytearray)
    | st.complex_numbers()
    | st.builds(m.Tag, st.text(max_size=4))
    | st.builds(m.Cents, st.integers())
    | st.builds(m.Ratio, _floats)
    | st.builds(m.Blob, st.binary(max_size=4))
    | st.sampled_from([m.Point, m.helper, m.fetch, m, int, KeyError])
)


def _exception(args: list[Any], attrs: dict[str, Any], kind: int) -> BaseException:
    exc: BaseException
    if kind == 0:
        exc = m.PlainError(*args)
    elif kind == 1:
        exc = m.AppError("boom", len(args))
    else:
        exc = KeyError(*args)
    for k, v in attrs.items():
        setattr(exc, k, v)
    return exc


def _chained(exc: BaseException, context: BaseException, cause: BaseException | None) -> Any:
    exc.__context__ = context
    if cause is not None:
        exc.__cause__ = cause
    return exc


def _cycle(kind: int, child: Any) -> Any:
    """A fresh container that holds `child` and itself."""
    if kind == 0:
        loop: list[Any] = [child]
        loop.append(loop)
        return loop
    if kind == 1:
        d: dict[str, Any] = {"child": child}
        d["self"] = d
        return d
    if kind == 2:
        point = m.Point(child)
        point.y = point
        return point
    if kind == 3:
        bag = m.Bag([child])
        list.append(bag, bag)
        return bag
    if kind == 4:
        err = m.PlainError(child)
        err.me = err  # type: ignore[attr-defined]
        return err
    registry = m.Registry()
    dict.__setitem__(registry, "self", registry)
    dict.__setitem__(registry, "child", child)
    return registry


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    small = st.lists(inner, max_size=3)
    attrs = st.dictionaries(st.sampled_from(["a", "b", "note"]), inner, max_size=2)
    exceptions = st.builds(_exception, small, attrs, st.integers(0, 2))
    return (
        small
        | small.map(tuple)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.dictionaries(_key_texts, inner, max_size=3)
        | st.sets(hashables, max_size=3)
        | st.frozensets(hashables, max_size=3)
        | st.builds(m.Point, inner, inner)
        | st.builds(m.Slotted, inner, inner)
        | st.builds(m.Frozen, _key_texts, small.map(tuple))
        | st.builds(m.Pair, inner, inner)
        | st.builds(m.Guarded, inner, inner)
        | exceptions
        | st.builds(_chained, exceptions, exceptions, st.none() | exceptions)
        | st.builds(m.Bag, small)
        | st.builds(m.Registry, st.dictionaries(hashables, inner, max_size=2))
        | st.builds(m.TagSet, st.sets(hashables, max_size=2))
        | st.builds(collections.OrderedDict, st.dictionaries(_key_texts, inner, max_size=2))
        | st.builds(collections.deque, small, st.none() | st.integers(3, 5))
        | st.builds(m.FrozenModel, key=st.text(max_size=3), value=inner)
        | st.builds(m.Customer.model_construct, name=st.text(max_size=3), tags=small)
        # identity: the same object twice, and cycles
        | inner.map(lambda v: [v, v])
        | st.builds(lambda a, b: (a, {"again": a, "b": b}, [b]), inner, inner)
        | st.builds(_cycle, st.integers(0, 5), inner)
    )


values = st.recursive(_leaves, _containers, max_leaves=12)
