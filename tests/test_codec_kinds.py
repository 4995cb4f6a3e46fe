"""Exact round trips of every kind of value the codec stores: value, exact
type, equality checked recursively by a strict comparator (nan, -0.0, time
zones, fold, Enum identity, dict order, shared and cyclic structure), and
that decoding calls none of the user's code (dataclass __init__ and
__post_init__, pydantic validators, overridden methods of subclasses).

Three routes are checked for each value: bytes (`encode`/`decode`), the JSON
tree (`encode_tree`/`decode_tree`) and named fields (`encode_fields`, the way
checkpoint locals are written). Helper types live in tests/codec_types/.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import math
import pathlib
import types
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resumable import SerializationError
from resumable.codec import (
    decode,
    decode_tree,
    encode,
    encode_fields,
    encode_tree,
    traceback_text,
)
from tests.codec_types import models as m
from tests.codec_types import strategies
from tests.codec_types.compare import assert_same, same
from tests.codec_types.samples import SAMPLES, run_fresh_process

# ----------------------------------------------------------------- routes


def through_bytes(value: Any) -> Any:
    return decode(encode(value))


def through_tree(value: Any) -> Any:
    tree, plain = encode_tree(value)
    return decode_tree(orjson.loads(orjson.dumps(tree)), plain=plain)


def through_fields(value: Any) -> Any:
    """As two checkpoint locals holding the same value (one identity memo)."""
    tree, plain = encode_fields({"x": value, "y": value})
    out = decode_tree(orjson.loads(orjson.dumps(tree)), plain=plain)
    assert list(out) == ["x", "y"]
    return out


def check_all_routes(value: Any) -> Any:
    """Assert the exact round trip through every route; the bytes route's copy."""
    out = through_bytes(value)
    assert_same(value, out)
    assert_same(value, through_tree(value))
    assert_same({"x": value, "y": value}, through_fields(value))
    return out


# ----------------------------------------------------------------- the table


def _tz(hours: float, name: str | None = None) -> datetime.timezone:
    offset = datetime.timedelta(hours=hours)
    return datetime.timezone(offset) if name is None else datetime.timezone(offset, name)


_NY = zoneinfo.ZoneInfo("America/New_York")

KIND_CASES: dict[str, Callable[[], Any]] = {
    # ints of any size
    "int_zero": lambda: 0,
    "int_64_bit_edges": lambda: [2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64],
    "int_3000_digits": lambda: 7 * 10**3000 + 1,  # decimal form, under str's digit limit
    "int_hex_form": lambda: -(1 << 200_000) - 3,
    "int_bool_distinct": lambda: [1, True, 0, False, 1.0],
    # floats
    "float_specials": lambda: [math.nan, math.inf, -math.inf, -0.0, 0.0],
    "float_extremes": lambda: [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1 + 0.2],
    "float_top_level_nan": lambda: math.nan,
    "float_top_level_neg_zero": lambda: -0.0,
    # str and bytes
    "str_unicode": lambda: ["", "héllo", "日本", "🎉", "\x00\u2028\u202e", '"$tuple"'],
    "str_lone_surrogates": lambda: ["\ud800", "a\udfffb", "\ud83d\ude00", "\udc80" * 3],
    "str_top_level_surrogate": lambda: "\ud800",
    "bytes": lambda: [b"", b"\x00\xff", bytes(range(256))],
    "bytearray": lambda: [bytearray(), bytearray(b"\x00abc")],
    "none_bool": lambda: [None, True, False],
    # containers
    "tuple": lambda: (1, (2, (3, ())), ["x"]),
    "empty_tuple": lambda: (),
    "list": lambda: [[], [[]], [1, "a", None]],
    "dict_str_keys": lambda: {"b": 1, "a": 2, "": 3},
    "dict_dollar_keys": lambda: {"$ref": 0, "$id": 1, "$v": 2, "$": 3, "x": {"$tuple": []}},
    "dict_int_keys_order": lambda: {3: "c", 1: "a", 2: "b", -(2**80): "big"},
    "dict_mixed_keys": lambda: {
        1: "int",
        2.5: "float",
        False: "bool",
        None: "none",
        (1, (2,)): "tuple",
        frozenset({1, 2}): "frozenset",
        m.Color.GREEN: "enum",
        m.Level.HIGH: "int enum",
        b"k": "bytes",
        decimal.Decimal("1.5"): "decimal",
        datetime.date(2024, 1, 1): "date",
        m.Pair(1, 2): "namedtuple",
        m.Frozen("k", (1,)): "frozen dataclass",
        m.Money(1, "EUR"): "codec",
        m.Tag("t"): "str subclass",
        "s": "str",
    },
    "dict_nan_and_neg_zero_keys": lambda: {math.nan: 1, -0.0: 2},
    "set": lambda: {1, "a", (1, 2), frozenset({3}), m.Color.RED, None},
    "frozenset": lambda: frozenset({1, "b", (2,), frozenset()}),
    "empty_sets": lambda: [set(), frozenset()],
    "range": lambda: [range(0), range(-5, 2**70, 7), range(10, 0, -3)],
    "complex": lambda: complex(-0.0, math.nan),
    # dates and times
    "datetime_naive": lambda: datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
    "datetime_utc": lambda: datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    "datetime_fixed_offsets": lambda: [
        datetime.datetime(2024, 1, 1, 12, tzinfo=_tz(5.5, "IST")),
        datetime.datetime(2024, 1, 1, 12, tzinfo=_tz(-8)),
        datetime.datetime(2024, 1, 1, 12, tzinfo=_tz(0)),
        datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(0), "Z")),
    ],
    "datetime_zoneinfo_fold": lambda: [
        datetime.datetime(2024, 11, 3, 1, 30, tzinfo=_NY),
        datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=_NY),
        datetime.datetime(2024, 3, 10, 2, 30, tzinfo=_NY),  # imaginary: kept as is
    ],
    "datetime_extremes": lambda: [datetime.datetime.min, datetime.datetime.max],
    "date": lambda: [datetime.date(1, 1, 1), datetime.date(9999, 12, 31)],
    "time": lambda: [
        datetime.time(),
        datetime.time(1, 2, 3, 4, fold=1),
        datetime.time(12, tzinfo=_tz(-3.75)),
        datetime.time(12, tzinfo=datetime.UTC),
    ],
    "timedelta": lambda: [datetime.timedelta(-1, 1, 1), datetime.timedelta.max],
    "timezones_alone": lambda: [datetime.UTC, _tz(1, "CET"), _NY],
    # numbers
    "decimal": lambda: [
        decimal.Decimal("0.10"),
        decimal.Decimal("-0.000"),
        decimal.Decimal("NaN"),
        decimal.Decimal("-NaN123"),
        decimal.Decimal("sNaN"),
        decimal.Decimal("Infinity"),
        decimal.Decimal("1E-1000"),
        decimal.Decimal("9" * 500),
    ],
    "uuid": lambda: [uuid.UUID(int=0), uuid.UUID("12345678-1234-5678-1234-567812345678")],
    "fraction": lambda: [fractions.Fraction(0), fractions.Fraction(-(2**90), 7)],
    # enums: the same singletons
    "enum": lambda: [m.Color.RED, m.Color.CRIMSON, m.Color.BLUE, m.Color.GREEN],
    "flag": lambda: [m.Perm.R, m.Perm.R | m.Perm.W | m.Perm.X, m.Perm(0)],
    "int_enum_in_a_tuple": lambda: (m.Level.LOW, m.Mode.READ, m.Bits.A | m.Bits.B, m.Bits(0)),
    "int_enum_in_plain_json": lambda: {"level": m.Level.HIGH, "modes": [m.Mode.READ, m.Bits.B]},
    # dataclasses and named tuples
    "dataclass": lambda: m.Point(1, [2, 3]),
    "dataclass_frozen": lambda: m.Frozen("f", (1, 2)),
    "dataclass_slots": lambda: m.Slotted(m.Slotted(1), None),
    "dataclass_custom_init": lambda: m.CustomInit({"v": 1}),
    "dataclass_extra_attribute": lambda: _with_attr(m.Point(1), "extra", [1]),
    "namedtuple": lambda: m.Pair(m.Pair(1, 2), None),
    "typing_namedtuple": lambda: m.Coord(1.5),
    "namedtuple_custom_new": lambda: m.Guarded([1], "b"),
    # exceptions
    "exception_builtin": lambda: [ValueError("v"), KeyError("k"), ArithmeticError()],
    "exception_custom": lambda: m.AppError("boom", 7),
    "exception_chain": lambda: _chain(),
    "exception_fields": lambda: [
        OSError(2, "No such file or directory", "a.txt"),
        PermissionError(13, "denied", "a", None, "b"),
        StopIteration([1]),
        SystemExit(3),
        ImportError("no", name="mod", path="/p"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        SyntaxError("bad", ("f.py", 1, 2, "x = ", 1, 3)),
    ],
    "exception_group": lambda: ExceptionGroup("g", [ValueError(1), KeyError(2)]),
    # pydantic
    "pydantic": lambda: _customer(),
    "pydantic_frozen": lambda: m.FrozenModel(key="k", value={"a": (1,)}),
    "pydantic_construct": lambda: m.Address.model_construct(street=" not validated "),
    # subclasses of built-in types keep their class
    "str_subclass": lambda: _with_attr(m.Tag("abc"), "note", "n"),
    "int_subclass": lambda: m.Cents(7),
    "float_subclass": lambda: m.Ratio(-0.0),
    "bytes_subclass": lambda: m.Blob(b"\x00"),
    "dict_subclass": lambda: _with_attr(m.Registry({(1,): "a", "b": 2}), "owner", "me"),
    "list_subclass": lambda: m.Bag([1, [2]]),
    "set_subclasses": lambda: [m.TagSet({1}), m.FrozenTags({2, 3})],
    "tuple_subclass": lambda: m.Row((1, "a")),
    "ordered_dict": lambda: [collections.OrderedDict(b=1, a=2), m.Ordered(z=1)],
    "defaultdict": lambda: collections.defaultdict(list, {1: [2]}),
    "counter": lambda: collections.Counter({"x": 2, "y": -1}),
    "deque": lambda: [collections.deque([1, 2, 3], maxlen=3), collections.deque()],
    # references by name, registered codecs
    "references": lambda: [m.Point, m.helper, m.fetch, m, int, pathlib.PosixPath, ValueError],
    "paths": lambda: [pathlib.PurePosixPath("/x/y"), pathlib.PosixPath("a"), pathlib.PurePath()],
    "registered_codec": lambda: [m.Money(5, "EUR"), {"total": m.Money(-1, "USD")}],
    # identity
    "shared_list": lambda: _shared(),
    "self_containing_list": lambda: _self_list(),
    "self_containing_dict": lambda: _self_dict(),
    "mutual_cycle": lambda: _mutual(),
    "dataclass_cycle": lambda: _node_cycle(),
    "exception_attribute_cycle": lambda: _exception_cycle(),
    "subclass_cycles": lambda: _subclass_cycles(),
    "shared_tuple_and_frozenset": lambda: _shared_immutables(),
    "shared_key_object": lambda: _shared_key(),
    # the golden table too
    **{f"sample_{name}": build for name, build in SAMPLES.items()},
}


def _with_attr(obj: Any, name: str, value: Any) -> Any:
    setattr(obj, name, value)
    return obj


def _chain() -> BaseException:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise m.AppError("outer", 1) from inner
    except m.AppError as outer:
        outer.add_note("note 1")
        outer.add_note("note 2")
        try:
            raise ValueError("handling") from None
        except ValueError as last:
            last.__context__ = outer
            return last


def _customer() -> m.Customer:
    customer = m.Customer(
        name="ann lee", address=m.Address(street=" 1 Main "), tags=[1, (2,)], nickname="al"
    )
    customer._secret = {"token": "t"}
    return customer


def _shared() -> Any:
    inner = [1]
    d = {"inner": inner}
    return [inner, d, (inner, d), {"again": inner}]


def _self_list() -> Any:
    loop: list[Any] = [1]
    loop.append(loop)
    loop.append([loop])
    return loop


def _self_dict() -> Any:
    d: dict[Any, Any] = {"k": 1}
    d["self"] = d
    d[("t",)] = [d]
    return d


def _mutual() -> Any:
    a: list[Any] = []
    b: dict[str, Any] = {"a": a}
    a.append(b)
    return (a, b)


def _node_cycle() -> Any:
    first = m.Node(1)
    second = m.Node(2, first)
    first.next = second
    return [first, second]


def _exception_cycle() -> Any:
    err = m.PlainError("x")
    err.self = err  # type: ignore[attr-defined]
    err.others = [err]  # type: ignore[attr-defined]
    return err


def _subclass_cycles() -> Any:
    bag = m.Bag()
    list.append(bag, bag)
    registry = m.Registry()
    dict.__setitem__(registry, "me", registry)
    dict.__setitem__(registry, "bag", bag)
    return [bag, registry]


def _shared_immutables() -> Any:
    t = (1, [2])
    fs = frozenset({(3,)})
    return [t, t, fs, {"fs": fs, "t": t}]


def _shared_key() -> Any:
    key = (1, 2)
    return {key: key, "list": [key]}


@pytest.mark.parametrize("build", KIND_CASES.values(), ids=KIND_CASES.keys())
def test_exact_round_trip(build: Callable[[], Any]) -> None:
    check_all_routes(build())


def test_comparator_is_strict() -> None:
    # The oracle must tell apart what the codec must keep apart.
    assert same([math.nan, -0.0], [math.nan, -0.0])
    shared: list[Any] = []
    for a, b in [
        (1, True),
        (1, 1.0),
        (0.0, -0.0),
        ((1,), [1]),
        ({1: 2, 3: 4}, {3: 4, 1: 2}),
        (m.Color.RED, m.Level.LOW),
        (m.Tag("A"), "A"),
        ({m.Tag("A")}, {"A"}),
        (m.Registry(), {}),
        (datetime.datetime(2024, 1, 1, 12, tzinfo=_tz(1)), datetime.datetime(2024, 1, 1, 11)),
        (
            datetime.datetime(2024, 1, 1, 12, tzinfo=_tz(1)),
            datetime.datetime(2024, 1, 1, 11, tzinfo=_tz(0)),  # the same instant
        ),
        (datetime.time(1, fold=0), datetime.time(1, fold=1)),
        (
            datetime.datetime(2024, 1, 1, tzinfo=_tz(0)),
            datetime.datetime(2024, 1, 1, tzinfo=_tz(0, "Z")),
        ),
        (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
        (decimal.Decimal("0"), decimal.Decimal("-0")),
        (m.Point(1), m.Point(1.0)),
        (m.Pair(1, 2), (1, 2)),
        (ValueError(1), KeyError(1)),
        (_with_attr(ValueError(1), "a", 1), ValueError(1)),
        ([shared, shared], [[], []]),
        ([[], []], [shared, shared]),
        (range(0), range(1, 1)),
        (m.Customer.model_construct(name="a"), m.Customer.model_construct(name="a", x=1)),
        (collections.deque([1], maxlen=2), collections.deque([1])),
    ]:
        assert not same(a, b), (a, b)


# ----------------------------------------------------------------- int sizes


@pytest.mark.parametrize("bits", [62, 63, 64, 65, 9_999, 10_000, 10_001, 399_000])
def test_int_of_many_sizes(bits: int) -> None:
    for value in (1 << bits, -(1 << bits), (1 << bits) - 1, -(1 << bits) + 1):
        assert_same(value, through_bytes(value))


def test_int_too_big_to_decode() -> None:
    value = 1 << 500_000
    try:
        data = encode(value)
    except SerializationError:
        return  # refusing to write it is fine too
    assert decode(data) == value


def test_decimal_too_long_to_decode() -> None:
    value = decimal.Decimal("1" * 150_000)
    try:
        data = encode(value)
    except SerializationError:
        return
    assert decode(data) == value


# ----------------------------------------------------------------- known gaps (bugs)


@pytest.mark.parametrize(
    "value",
    [
        m.Level.HIGH,
        [m.Level.HIGH],
        {"level": m.Level.LOW},
        {"mode": m.Mode.READ},
        [m.Bits.A | m.Bits.B],
    ],
    ids=["top", "in_list", "in_dict", "str_enum", "int_flag"],
)
def test_mixin_enum_in_plain_json(value: Any) -> None:
    """Regression: orjson writes an Enum member as its value, and an IntEnum /
    StrEnum / IntFlag member equals it, so a plain-JSON fast path that only
    compares the copy with the original decoded them as int / str."""
    check_all_routes(value)


def test_lone_surrogate_dict_key() -> None:
    value = {"\ud800": 1}
    assert_same(value, through_bytes(value))


def test_uuid_is_safe() -> None:
    value = uuid.UUID(int=7, is_safe=uuid.SafeUUID.safe)
    assert_same(value, through_bytes(value))


# ----------------------------------------------------------------- enums


def test_enum_members_are_the_same_singletons() -> None:
    members = [*m.Color, m.Color.CRIMSON, *m.Perm, m.Perm.R | m.Perm.W]
    members += [*m.Level, *m.Mode, *m.Bits]
    out = through_bytes(members)
    assert len(out) == len(members)
    for before, after in zip(members, out, strict=True):
        assert after is before or (after == before and type(after) is type(before))
        if before._name_ in type(before).__members__:
            assert after is before
    assert out[len(m.Color)] is m.Color.RED  # the alias CRIMSON is RED
    assert all(type(x) is type(y) for x, y in zip(members, out, strict=True))


@pytest.mark.parametrize("value", [m.Bits(4), m.Bits(5)], ids=["only_unnamed", "partly_unnamed"])
def test_flag_with_unnamed_bits(value: Any) -> None:
    assert_same((value,), through_bytes((value,)))


# ----------------------------------------------------------------- user code not run


def test_decoding_calls_no_init_post_init_validator_or_override() -> None:
    values = [
        m.Point(1),
        m.Frozen("f"),
        m.CustomInit(1),
        m.Guarded(1, 2),
        m.AppError("x", 1),
        _customer(),
        m.FrozenModel(key="k"),
        m.Tag("t"),
        m.Cents(1),
        m.Registry({1: 2}),
        m.Bag([1]),
        m.TagSet({1}),
    ]
    m.CALLS.clear()
    data = encode(values)
    assert m.CALLS == {}, "encoding ran user code"
    out = decode(data)
    assert m.CALLS == {}, f"decoding ran user code: {dict(m.CALLS)}"
    assert_same(values, out)
    assert m.CALLS == {}
    # the values were not rebuilt through their constructors
    assert str.__str__(out[7]) == "T" and int.__int__(out[8]) == 100
    assert out[5].name == "Ann Lee" and out[5].address.street == "1 Main"


def test_dataclass_without_init_is_rebuilt_field_by_field() -> None:
    value = m.Point(1)
    value.__dict__["late"] = "set after __init__"
    m.CALLS.clear()
    out = through_bytes(value)
    assert vars(out) == {"x": 1, "y": 0, "late": "set after __init__"}
    assert m.CALLS == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        through_bytes(m.Frozen("f")).name = "changed"  # type: ignore[misc]


def test_pydantic_fields_set_extra_private_survive() -> None:
    value = _customer()
    out = through_bytes(value)
    assert type(out) is m.Customer and out == value
    assert out.model_fields_set == value.model_fields_set == {"name", "address", "tags", "nickname"}
    assert out.__pydantic_extra__ == {"nickname": "al"}
    assert out._secret == {"token": "t"}
    assert out.model_dump() == value.model_dump()
    constructed = m.Address.model_construct(street=" raw ")
    assert through_bytes(constructed).street == " raw "  # not validated (not stripped)


def test_pydantic_model_post_init_not_called() -> None:
    value = m.Counted(n=5)
    assert value.n == 6
    m.CALLS.clear()
    out = through_bytes(value)
    assert m.CALLS == {}, dict(m.CALLS)
    assert out.n == 6


def test_exception_overridden_new_not_called() -> None:
    value = m.NewError("x")
    m.CALLS.clear()
    out = through_bytes(value)
    assert_same(value, out)
    assert m.CALLS == {}, dict(m.CALLS)


def test_exception_overridden_setattr_not_called() -> None:
    value = m.WatchedError("x")
    value.code = 1  # type: ignore[attr-defined]
    m.CALLS.clear()
    out = through_bytes(value)
    assert_same(value, out)
    assert m.CALLS == {}, dict(m.CALLS)


# ----------------------------------------------------------------- exceptions


def test_exception_traceback_is_kept_as_text() -> None:
    error = _chain()
    assert error.__traceback__ is not None
    text = traceback_text(error)
    assert text is not None and "_chain" in text
    out = through_bytes(error)
    assert out.__traceback__ is None
    assert traceback_text(out) == text
    assert traceback_text(out.__context__) == traceback_text(error.__context__)
    assert out.__context__.__notes__ == ["note 1", "note 2"]
    assert out.__suppress_context__ is True and out.__cause__ is None
    assert type(out.__context__.__cause__) is KeyError
    # kept through a second checkpoint
    assert traceback_text(through_bytes(out)) == text


def test_exception_builtin_fields() -> None:
    out = through_bytes(KIND_CASES["exception_fields"]())
    assert (out[0].errno, out[0].strerror, out[0].filename) == (
        2,
        "No such file or directory",
        "a.txt",
    )
    assert type(out[0]) is FileNotFoundError and out[1].filename2 == "b"
    assert out[2].value == [1] and out[3].code == 3
    assert (out[4].name, out[4].path) == ("mod", "/p")
    assert (out[5].object, out[5].start, out[5].reason) == (b"\xff", 0, "invalid start byte")
    assert (out[6].lineno, out[6].text) == (1, "x = ")
    assert str(out[5]) == str(KIND_CASES["exception_fields"]()[5])


# ----------------------------------------------------------------- identity


def test_identity_and_cycles() -> None:
    loop = through_bytes(_self_list())
    assert loop[1] is loop and loop[2][0] is loop
    d = through_bytes(_self_dict())
    assert d["self"] is d and d[("t",)][0] is d
    a, b = through_bytes(_mutual())
    assert a[0] is b and b["a"] is a
    first, second = through_bytes(_node_cycle())
    assert first.next is second and second.next is first
    err = through_bytes(_exception_cycle())
    assert err.self is err and err.others[0] is err
    bag, registry = through_bytes(_subclass_cycles())
    assert bag[0] is bag and registry["me"] is registry and registry["bag"] is bag
    out = through_bytes(_shared())
    assert out[0] is out[1]["inner"] is out[2][0] is out[3]["again"] and out[2][1] is out[1]


def test_identity_shared_between_fields() -> None:
    shared = {"k": [1]}
    tree, plain = encode_fields({"a": shared, "b": [shared], "c": shared["k"]})
    out = decode_tree(orjson.loads(orjson.dumps(tree)), plain=plain)
    assert out["a"] is out["b"][0] and out["c"] is out["a"]["k"]


def test_equal_but_distinct_stay_distinct() -> None:
    a, b = [1], [1]
    out = through_bytes([a, b, (a,), (b,)])
    assert out[0] is not out[1] and out[2][0] is out[0] and out[3][0] is out[1]


# ----------------------------------------------------------------- depth


def _linked_dicts(n: int) -> Any:
    head: Any = None
    for i in range(n):
        head = {"value": i, "next": head}
    return head


def _linked_nodes(n: int) -> Any:
    head: Any = None
    for i in range(n):
        head = m.Node(i, head)
    return head


@pytest.mark.parametrize("build", [_linked_dicts, _linked_nodes], ids=["dicts", "dataclasses"])
def test_ten_thousand_long_linked_list(build: Callable[[int], Any]) -> None:
    value = build(10_000)
    with pytest.raises(SerializationError, match=r"nested more than .* store it flatter") as e:
        through_bytes(value)  # refused clearly (deeper than Limits.max_depth), no RecursionError
    assert "steps)..." in str(e.value) and len(str(e.value)) < 400  # a readable path
    # a short one round-trips
    assert_same(build(40), through_bytes(build(40)))


def test_deep_but_allowed_nesting_round_trips() -> None:
    value: Any = "leaf"
    for i in range(60):
        value = [value] if i % 3 == 0 else ((value,) if i % 3 == 1 else {i: value})
    assert_same(value, through_bytes(value))


# ----------------------------------------------------------------- properties


@settings(max_examples=150)
@given(strategies.values)
def test_round_trip_property(value: Any) -> None:
    assert_same(value, through_bytes(value))


@settings(max_examples=60)
@given(st.dictionaries(st.sampled_from(["a", "b", "total", "_x1", "é"]), strategies.values))
def test_fields_round_trip_property(fields: dict[str, Any]) -> None:
    tree, plain = encode_fields(fields)
    assert_same(fields, decode_tree(orjson.loads(orjson.dumps(tree)), plain=plain))


@settings(max_examples=60)
@given(strategies.values)
def test_tree_round_trip_property(value: Any) -> None:
    assert_same(value, through_tree(value))


@settings(max_examples=2)
@given(st.lists(strategies.values, min_size=15, max_size=15))
def test_round_trip_property_through_a_fresh_process(batch: list[Any]) -> None:
    """Decoded (and encoded again) in a new interpreter, then decoded here."""
    payload = [base64.b64encode(encode(v)).decode() for v in batch]
    back = run_fresh_process("reencode", payload)
    assert len(back) == len(batch)
    for value, data in zip(batch, back, strict=True):
        assert_same(value, decode(base64.b64decode(data)))


def test_strategies_cover_every_kind() -> None:
    """The property above is only as good as its strategy: every kind shows up."""
    seen: set[str] = set()

    def kinds(value: Any) -> None:
        stack, visited = [value], set()
        while stack:
            x = stack.pop()
            if id(x) in visited or isinstance(x, type | types.ModuleType):
                continue
            visited.add(id(x))
            seen.add(type(x).__name__)
            if isinstance(x, dict):
                stack.extend(x.keys())
                stack.extend(x.values())
            elif isinstance(x, list | tuple | set | frozenset | collections.deque):
                stack.extend(x)
            elif isinstance(x, BaseException):
                stack.extend([*x.args, *vars(x).values(), x.__context__, x.__cause__])
            elif not isinstance(x, enum.Enum):
                stack.extend(getattr(x, "__dict__", {}).values())
                stack.extend(getattr(x, s) for s in getattr(x, "__slots__", ()) if hasattr(x, s))

    @settings(max_examples=300, database=None, derandomize=True)
    @given(strategies.values)
    def collect(value: Any) -> None:
        kinds(value)

    collect()
    expected = {
        "int", "float", "str", "bytes", "bytearray", "NoneType", "bool", "tuple", "list",
        "dict", "set", "frozenset", "range", "datetime", "date", "time", "timedelta",
        "Decimal", "UUID", "Fraction", "Color", "Perm", "Level", "Mode", "Bits", "Point", "Slotted", "Frozen", "Pair",
        "Coord", "Guarded", "PlainError", "AppError", "KeyError", "FrozenModel", "Customer",
        "Tag", "Cents", "Ratio", "Blob", "Registry", "Bag", "TagSet", "Row", "FrozenTags",
        "OrderedDict", "deque", "Money", "complex",
    }  # fmt: skip
    assert expected <= seen, sorted(expected - seen)


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError("no event within 10 s"),
        ConnectionError("reset"),
        OSError(2, "No such file"),
        FileNotFoundError(2, "No such file", "a.txt"),
        OSError(1, "a", "b", None, "c"),
        OSError(),
    ],
    ids=repr,
)
def test_the_text_of_an_os_error_survives(exc: OSError) -> None:
    """OSError fields left unset by its arguments stay unset: set to None,
    str() would read `[Errno None] None: None -> None`."""
    decoded = decode(encode(exc))
    assert (str(decoded), decoded.args) == (str(exc), exc.args)
    assert (decoded.errno, decoded.strerror, decoded.filename, decoded.filename2) == (
        exc.errno, exc.strerror, exc.filename, exc.filename2,
    )  # fmt: skip
