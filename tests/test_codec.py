"""The checkpoint codec (resumable.codec): exact round trips of what checkpoints
hold, identity, errors naming the path of an unencodable value, and hostile
input to `decode` (CheckpointError, nothing imported or executed)."""

from __future__ import annotations

import math
import sys
import threading
import types
import zlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from resumable import CheckpointError, SerializationError
from resumable.codec import (
    FORMAT_VERSION,
    SEALED,
    Limits,
    Unencodable,
    decode,
    decode_document,
    decode_tree,
    decode_value,
    encode,
    encode_checkpoint,
    encode_checkpoint_fresh,
    encode_document,
    encode_fields,
    encode_value,
    seal,
)

# ----------------------------------------------------------------- helpers


class CodecTestError(Exception):
    """A module-level custom exception (importable by `module:qualname`)."""


class WithInit(Exception):
    """A custom exception whose __init__ differs from its args and records calls."""

    inits: list[tuple[Any, ...]] = []  # noqa: RUF012 (a deliberate class-level log)

    def __init__(self, message: str, code: int) -> None:
        WithInit.inits.append((message, code))
        super().__init__(message)
        self.code = code


class Outer:
    class NestedError(Exception):
        """An exception class nested in a class (qualname `Outer.NestedError`)."""


class Canary:
    """Not an exception: decoding must never instantiate it."""

    created = 0

    def __new__(cls, *args: Any) -> Canary:
        Canary.created += 1
        return super().__new__(cls)


def roundtrip(value: Any) -> Any:
    return decode(encode(value))


def same(a: Any, b: Any) -> bool:
    """Type and value equal, recursively (nan equals nan; -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if type(a) in (set, frozenset):
        if len(a) != len(b):
            return False
        for x in a:
            matches = [y for y in b if y == x]
            if len(matches) != 1 or not same(x, matches[0]):
                return False
        return True
    if type(a) is range:
        return (a.start, a.stop, a.step) == (b.start, b.stop, b.step)
    if isinstance(a, BaseException):
        return same_exception(a, b)
    return bool(a == b)


def _attrs(e: BaseException) -> dict[str, Any]:
    """An exception's attributes, without the traceback text a checkpoint adds."""
    return {k: v for k, v in vars(e).items() if k != "__resumable_traceback__"}


def same_exception(a: BaseException | None, b: BaseException | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (
        type(a) is type(b)
        and same(list(a.args), list(b.args))
        and same(_attrs(a), _attrs(b))
        and a.__suppress_context__ == b.__suppress_context__
        and same_exception(a.__context__, b.__context__)
        and same_exception(a.__cause__, b.__cause__)
    )


# ----------------------------------------------------------------- scalars


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        1.5,
        "",
        "plain",
        "héllo wörld",
        "日本語のテキスト",
        "emoji 🎉👩‍👩‍👧",
        "nul \x00 and line sep \u2028 and bidi \u202e",
        '"$tuple" looks like a tag',
        [],
        {},
        [1, "a", None, True, 2.5],
        {"a": [1, {"b": None}], "c": "d"},
    ],
)
def test_json_values_round_trip(value: Any) -> None:
    assert same(roundtrip(value), value)


def test_json_values_are_written_as_themselves() -> None:
    value = {"a": [1, "x", None, True, 2.5], "b": {}}
    data = encode(value)
    document = orjson.loads(data)
    assert list(document)[-1] == "seal"  # the checksum's seal, last
    assert len(document.pop("seal")) == 8 and zlib.crc32(data) == SEALED
    assert document == {"v": FORMAT_VERSION, "plain": True, "value": value}


def test_lone_surrogate_is_escaped_and_round_trips() -> None:
    value = ["ok", "\ud800", "a\udfffb"]
    assert same(roundtrip(value), value)


@pytest.mark.parametrize(
    "value",
    [2**63 - 1, 2**63, 2**64, 2**200, -(2**63), -(2**63) - 1, -(2**200), 10**40 + 7],
)
def test_big_ints(value: int) -> None:
    out = roundtrip(value)
    assert type(out) is int and out == value
    assert same(roundtrip([value, (value,), {value: value}]), [value, (value,), {value: value}])


def test_ints_beyond_64_bits_are_strings_in_the_json() -> None:
    # Other JSON readers would lose precision on a bare number.
    assert orjson.loads(encode(2**70))["value"] == {"$int": str(2**70)}
    assert orjson.loads(encode(-(2**70)))["value"] == {"$int": str(-(2**70))}
    assert orjson.loads(encode(2**63 - 1))["value"] == 2**63 - 1


def test_big_ints_as_dict_keys_keep_order() -> None:
    value = {2**70: "a", -(2**65): "b", 1: "c", (2**64, -(2**64)): "d"}
    out = roundtrip(value)
    assert same(out, value)
    assert list(out) == list(value)


def test_special_floats() -> None:
    out = roundtrip([float("nan"), float("inf"), -float("inf"), -0.0, 0.0])
    nan, inf, ninf, neg_zero, zero = out
    assert type(nan) is float and math.isnan(nan)
    assert type(inf) is float and inf == math.inf
    assert type(ninf) is float and ninf == -math.inf
    assert type(neg_zero) is float and neg_zero == 0.0 and math.copysign(1.0, neg_zero) == -1.0
    assert type(zero) is float and math.copysign(1.0, zero) == 1.0
    one = roundtrip(1.0)
    assert type(one) is float and one == 1.0


def test_bytes_bytearray_sets_ranges() -> None:
    value = [
        b"",
        b"\x00\xff\x80abc",
        bytearray(b"\x01\x02"),
        {1, "a", (2, 3)},
        frozenset({b"x", 2**70}),
        set(),
        frozenset(),
        range(0),
        range(3),
        range(10, -5, -3),
        range(2**70, 2**71, 2**65),
    ]
    out = roundtrip(value)
    assert same(out, value)
    assert [type(v) for v in out] == [type(v) for v in value]


def test_tuples_nested_in_lists_and_dict_keys() -> None:
    value = {
        (1, (2, (3, ()))): [(4,), ((5, 6), [7, (8,)])],
        (): (),
        ("a", None): {("k",): (1.5, b"b")},
    }
    assert same(roundtrip(value), value)


def test_dicts_with_dollar_keys_and_non_str_keys_keep_order() -> None:
    value: dict[Any, Any] = {
        "$id": 1,
        "plain": 2,
        "$ref": {"$v": 3},
        "$tuple": [1, 2],
        "$": None,
        5: "five",
        None: "none",
        True: "true",
        2.5: "float",
        b"k": "bytes",
        frozenset({1}): "fs",
    }
    out = roundtrip(value)
    assert same(out, value)
    assert list(out) == list(value)
    # single-key dicts that look like tags
    for tagged in ({"$int": "5"}, {"$exc": ["os:system", ["echo"]]}, {"$ref": 0}, {"$id": 0}):
        assert same(roundtrip(tagged), tagged)


# ----------------------------------------------------------------- exceptions


def _chained() -> BaseException:
    try:
        try:
            raise KeyError("inner")
        except KeyError as e:
            raise ValueError("middle", 2) from e
    except ValueError:
        try:
            raise WithInit("outer", 7)
        except WithInit as e:
            e.add_note("first note")
            e.add_note("second note")
            return e
    raise AssertionError("unreachable")


def test_exception_chain_round_trips() -> None:
    exc = _chained()
    out = roundtrip(exc)
    assert same_exception(out, exc)
    assert type(out) is WithInit and out.args == ("outer",) and out.code == 7
    assert out.__notes__ == ["first note", "second note"]
    middle = out.__context__
    assert type(middle) is ValueError and middle.args == ("middle", 2)
    assert type(middle.__cause__) is KeyError and middle.__cause__.args == ("inner",)
    assert middle.__suppress_context__ is True  # set by `raise ... from e`
    assert middle.__context__ is middle.__cause__  # one object, not two copies


def test_raise_from_none_keeps_suppress_context() -> None:
    try:
        try:
            raise OSError("disk")
        except OSError:
            raise CodecTestError("clean") from None
    except CodecTestError as e:
        exc = e
    out = roundtrip(exc)
    assert out.__suppress_context__ is True and out.__cause__ is None
    assert type(out.__context__) is OSError and out.__context__.args == ("disk",)


def test_exception_attributes_and_classes() -> None:
    exc = CodecTestError("x", 2**70, (1, b"b"))
    exc.detail = {"k": [1.5, float("nan")]}
    exc.other = ValueError("attr")
    nested = Outer.NestedError("nested")
    group = ExceptionGroup("group", [ValueError(1), CodecTestError("two")])
    out = roundtrip([exc, nested, group, KeyboardInterrupt(), KeyError("k")])
    assert same(out[:2], [exc, nested])
    assert type(out[2]) is ExceptionGroup and out[2].message == "group"
    assert [type(e) for e in out[2].exceptions] == [ValueError, CodecTestError]
    assert type(out[3]) is KeyboardInterrupt and type(out[4]) is KeyError
    assert str(out[4]) == "'k'"


def test_decoding_does_not_call_exception_init() -> None:
    blob = encode(WithInit("message", 3))
    WithInit.inits.clear()
    out = decode(blob)
    assert WithInit.inits == []
    assert type(out) is WithInit and out.args == ("message",) and out.code == 3


@pytest.mark.parametrize(
    ("exc", "attribute", "expected"),
    [
        (StopIteration(5), "value", 5),
        (SystemExit(3), "code", 3),
        (FileNotFoundError(2, "No such file", "f.txt"), "filename", "f.txt"),
        (ImportError("no module", name="mod"), "name", "mod"),
        (SyntaxError("bad", ("f.py", 3, 1, "x y", 3, 2)), "lineno", 3),
    ],
    ids=[
        "StopIteration.value",
        "SystemExit.code",
        "OSError.filename",
        "ImportError.name",
        "SyntaxError.lineno",
    ],
)
def test_builtin_exception_fields(exc: BaseException, attribute: str, expected: Any) -> None:
    assert getattr(roundtrip(exc), attribute) == expected


# ----------------------------------------------------------------- identity


def test_identity_within_one_value() -> None:
    shared_list = [1, 2]
    shared_dict = {"k": 1}
    shared_set = {1, 2}
    shared_exc = ValueError("same")
    shared_ba = bytearray(b"ab")
    shared_tuple = (1, [2])
    value = [
        shared_list,
        {"a": shared_list, "d": shared_dict},
        (shared_dict, shared_set),
        shared_set,
        shared_exc,
        [shared_exc, shared_ba, shared_ba],
        shared_tuple,
        {shared_tuple[0]: shared_tuple},
    ]
    out = roundtrip(value)
    assert out[0] is out[1]["a"]
    assert out[1]["d"] is out[2][0]
    assert out[2][1] is out[3]
    assert out[4] is out[5][0]
    assert out[5][1] is out[5][2]
    assert out[6] is out[7][1]
    out[0].append(3)
    assert out[1]["a"] == [1, 2, 3]


def test_equal_but_distinct_objects_stay_distinct() -> None:
    out = roundtrip([[1], [1], {"a": 1}, {"a": 1}])
    assert out[0] == out[1] and out[0] is not out[1]
    assert out[2] == out[3] and out[2] is not out[3]


def test_identity_is_shared_between_fields() -> None:
    shared = {"x": [1]}
    tree, plain = encode_fields({"a": shared, "b": [shared["x"], shared]})
    assert not plain  # shared containers need identity
    out = decode_value(orjson.loads(orjson.dumps(tree)))
    assert out["a"] is out["b"][1]
    assert out["a"]["x"] is out["b"][0]


def test_exception_shared_between_context_and_list() -> None:
    exc = _chained()
    inner = exc.__context__
    assert inner is not None
    out = roundtrip([exc, inner])
    assert out[0].__context__ is out[1]


@pytest.mark.parametrize("kind", ["list", "dict", "exception", "list-through-tuple"])
def test_cycles_round_trip(kind: str) -> None:
    if kind == "list":
        value: Any = []
        value.append(value)
        out = roundtrip(value)
        assert out[0] is out
    elif kind == "dict":
        value = {"a": 1}
        value["self"] = value
        out = roundtrip(value)
        assert out["self"] is out and out["a"] == 1
    elif kind == "exception":
        value = CodecTestError("loop")
        value.me = value
        out = roundtrip(value)
        assert out.me is out
    else:
        value = []
        value.append((value,))
        out = roundtrip(value)
        assert type(out[0]) is tuple and out[0][0] is out


@pytest.mark.parametrize("kind", ["empty tuple", "tuple", "frozenset", "exception"])
def test_dict_key_shared_with_its_value(kind: str) -> None:
    key: Any = {
        "empty tuple": (),
        "tuple": (1, 2),
        "frozenset": frozenset({1}),
        "exception": ValueError("k"),
    }[kind]
    out = roundtrip({key: [key]})
    [(k, v)] = out.items()
    assert v[0] is k


def test_tuple_containing_itself_through_a_list_is_a_serialization_error() -> None:
    # A tuple is built after its items, so a path back to it cannot be decoded:
    # encoding refuses it (it does not silently produce a broken checkpoint).
    t: tuple[list[Any]] = ([],)
    t[0].append(t)
    with pytest.raises(SerializationError, match=r"value\[0\]\[0\]: it contains itself"):
        encode(t)
    e = ValueError([])
    e.args[0].append(e)
    with pytest.raises(SerializationError, match=r"value\.args\[0\]\[0\]"):
        encode(e)


# ----------------------------------------------------------------- unencodable values


def test_unencodable_values_name_their_path(tmp_path: Any) -> None:
    with pytest.raises(SerializationError) as info:
        encode([0, 1, {"k": object()}])
    assert str(info.value).startswith("value[2]['k']: object cannot be stored")

    with pytest.raises(SerializationError) as info:
        encode({"a": (1, {2: [lambda: 0]})})
    assert str(info.value).startswith(
        "value['a'][1][2][0]: it is the function "
        "test_unencodable_values_name_their_path.<locals>.<lambda>, defined inside "
        "test_unencodable_values_name_their_path: a closure cannot leave the run"
    )

    with open(tmp_path / "f.txt", "w") as f, pytest.raises(SerializationError) as info:
        encode({"files": [f]})
    assert str(info.value).startswith("value['files'][0]: _io.TextIOWrapper cannot be stored")

    exc = CodecTestError("x")
    exc.callback = lambda: 0
    with pytest.raises(SerializationError, match=r"^value\.callback: "):
        encode(exc)
    # a module-level function of the project is stored by name, and a built-in function
    # that computes a value (len), but not one that reads input or runs code
    exc.callback = roundtrip
    assert decode(encode(exc)).callback is roundtrip
    exc.callback = len
    assert decode(encode(exc)).callback is len
    exc.callback = input
    with pytest.raises(SerializationError, match=r"^value\.callback: builtins:input may not be"):
        encode(exc)
    with pytest.raises(SerializationError, match=r"^value\[0\]\.args\[1\]: "):
        encode([ValueError(1, object())])


def test_unencodable_field_names_the_variable() -> None:
    from resumable.codec import Unencodable

    with pytest.raises(Unencodable) as info:
        encode_fields({"ok": 1, "handle": [1, {"gen": (i for i in range(3))}]})
    assert info.value.variable == "handle"
    assert info.value.where() == "[1]['gen']"


def test_huge_int_is_a_serialization_error_or_round_trips() -> None:
    value = 10**5000
    try:
        out = roundtrip(value)
    except SerializationError:
        return
    assert out == value


def test_encode_value_does_not_mutate_input() -> None:
    shared = [1]
    value = {"a": shared, "b": shared, "c": (shared,)}
    encode_value(value)
    assert value == {"a": [1], "b": [1], "c": ([1],)} and value["a"] is value["b"]


# ----------------------------------------------------------------- hostile input


def _exc(name: str, args: Any = None) -> bytes:
    return orjson.dumps({"$exc": {"type": name, "args": [] if args is None else args}})


def decode_raw(data: bytes) -> Any:
    """Decode a raw JSON tree (wrapped in the current envelope), or bytes
    that are not JSON at all, as `decode` would."""
    try:
        tree = orjson.loads(data)
    except orjson.JSONDecodeError:
        return decode(data)
    return decode(seal(orjson.dumps({"v": FORMAT_VERSION, "plain": False, "value": tree})))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b'{"a": ',
        b"[1, 2",
        b"\xff\xfe",
        b"NaN",
        b'{"$pickle": "gASVAAAA"}',
        b'{"$unknown": []}',
        b'{"$int": "12x"}',
        b'{"$int": [1]}',
        b'{"$int": 5}',
        b'{"$int": "' + b"9" * 20_000 + b'"}',
        b'{"$bytes": "!!not base64!!"}',
        b'{"$bytes": 5}',
        b'{"$bytes": "QQ"}',
        b'{"$bytearray": null}',
        b'{"$ref": 0}',
        b'{"$ref": "0"}',
        b'{"$ref": [0]}',
        b'[{"$ref": 0}, {"$id": 0, "$v": []}]',
        b'[{"$id": 0, "$v": []}, {"$id": 0, "$v": []}]',
        b'{"$id": "0", "$v": []}',
        b'{"$id": 0, "$v": 5}',
        b'{"$id": 0, "$v": [], "x": 1}',
        b'{"$float": "1.5"}',
        b'{"$float": "__import__(\'os\')"}',
        b'{"$tuple": 1}',
        b'{"$set": [[1]]}',
        b'{"$frozenset": [{"a": 1}]}',
        b'{"$dict": [[1]]}',
        b'{"$dict": [[[1], 2]]}',
        b'{"$dict": {"a": 1}}',
        b'{"$range": [1, 2]}',
        b'{"$range": [1, 2, 0]}',
        b'{"$range": [1, 2.0, 1]}',
        b'{"$range": [true, 2, 1]}',
        b'{"$exc": ["builtins:ValueError", [], null, null, null]}',
        b'{"$exc": ["builtins:ValueError", {"a": 1}, null, null, null, false, null]}',
        b'{"$exc": ["builtins:ValueError", [], [1], null, null, false, null]}',
        b'{"$exc": ["builtins:ValueError", [], null, 5, null, false, null]}',
        b'{"$exc": ["builtins:ValueError", [], null, null, "x", false, null]}',
        b'{"$exc": ["builtins:ValueError", [], null, null, null, 0, null]}',
        b'{"$exc": [1, [], null, null, null, false, null]}',
        b'{"$exc": ["builtins:ExceptionGroup", [], null, null, null, false, null]}',
        _exc("builtins:ValueError.__subclasses__"),
        _exc("builtins:__import__"),
        _exc("builtins:eval", ["1"]),
        _exc("builtins:object"),
        _exc("builtins:NoSuchError"),
        _exc("builtins"),
        _exc(":ValueError"),
        b"[" * 5000 + b"]" * 5000,
        b'{"$tuple": [' * 600 + b"]}" * 600,
    ],
)
def test_malformed_input_is_a_checkpoint_error(data: bytes) -> None:
    with pytest.raises(CheckpointError):
        decode_raw(data)


def test_exc_naming_callables_executes_nothing(tmp_path: Any) -> None:
    marker = tmp_path / "marker"
    for blob in (
        _exc("os:system", [f"touch {marker}"]),
        _exc("subprocess:Popen", [["touch", str(marker)]]),
        _exc("subprocess:run", [["touch", str(marker)]]),
        _exc("os:remove", [str(tmp_path)]),
    ):
        with pytest.raises(CheckpointError):
            decode_raw(blob)
    assert not marker.exists()
    assert tmp_path.exists()


def test_exc_naming_a_class_that_is_not_an_exception_does_not_build_it() -> None:
    Canary.created = 0
    with pytest.raises(CheckpointError, match="as an exception class"):
        decode_raw(_exc(f"{__name__}:Canary"))
    assert Canary.created == 0


def test_exc_from_a_module_that_is_not_imported(capsys: pytest.CaptureFixture[str]) -> None:
    # `import this` prints the Zen of Python: decoding must not import it.
    assert "this" not in sys.modules
    with pytest.raises(CheckpointError, match="'this' is not imported"):
        decode_raw(_exc("this:Zen"))
    assert "this" not in sys.modules
    assert capsys.readouterr().out == ""
    with pytest.raises(CheckpointError, match="not imported"):
        decode_raw(_exc("no_such_module_resumable_test:Error"))


def test_custom_exception_round_trips_only_while_its_module_is_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blob = encode(CodecTestError("x"))
    assert type(decode(blob)) is CodecTestError
    monkeypatch.delitem(sys.modules, __name__)
    with pytest.raises(CheckpointError, match="is not imported"):
        decode(blob)


def test_resolving_a_class_runs_no_module_getattr(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real case: `concurrent.futures:ProcessPoolExecutor` imports
    # concurrent.futures.process through the package's lazy __getattr__.
    calls: list[str] = []
    module = types.ModuleType("resumable_test_lazy")

    def lazy(name: str) -> Any:
        calls.append(name)
        raise AttributeError(name)

    module.__getattr__ = lazy  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(CheckpointError):
        decode_raw(_exc("resumable_test_lazy:Anything"))
    assert calls == []


@pytest.mark.parametrize(
    "data", [b'{"$loop.seq": []}', b'{"$loop.dict": [1]}', b'{"$loop.zip": []}']
)
def test_malformed_internal_tags_are_checkpoint_errors(data: bytes) -> None:
    with pytest.raises(CheckpointError):
        decode_raw(data)


def test_local_exception_class_is_refused_when_encoding() -> None:
    class LocalError(Exception):
        pass

    with pytest.raises(SerializationError):
        encode(LocalError("x"))


# ----------------------------------------------------------------- property

_texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=8) | st.sampled_from(
    ["$id", "$v", "$ref", "$tuple", "$int", "$exc", "$", "$$"]
)
_ints = st.integers() | st.integers(min_value=2**63) | st.integers(max_value=-(2**63) - 1)
_ranges = st.builds(
    range, st.integers(-5, 2**70), st.integers(-5, 2**70), st.integers(1, 3) | st.integers(-3, -1)
)
_hashable_leaves = (
    st.none()
    | st.booleans()
    | _ints
    | st.floats(allow_nan=False)
    | _texts
    | st.binary(max_size=6)
    | _ranges
)
# No empty tuples/frozensets among keys: they are singletons, so `{(): ()}` shares
# one object between a key and its value (see test_dict_key_shared_with_its_value).
_hashables = st.recursive(
    _hashable_leaves,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3).map(tuple)
        | st.frozensets(inner, min_size=1, max_size=3)
    ),
    max_leaves=8,
)
_leaves = _hashable_leaves | st.floats() | st.binary(max_size=6).map(bytearray)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(_hashables, inner, max_size=4)
        | st.sets(_hashables, max_size=4)
        | st.frozensets(_hashables, max_size=4)
        | st.builds(lambda args: CodecTestError(*args), st.lists(inner, max_size=2))
    )


_values = st.recursive(_leaves, _containers, max_leaves=25)
_small_values = st.recursive(_leaves, _containers, max_leaves=6)


@given(_values)
def test_round_trip_property(value: Any) -> None:
    out = roundtrip(value)
    assert same(out, value), (value, out)


@given(st.dictionaries(st.sampled_from(["a", "b", "total", "_x1", "é"]), _small_values, max_size=4))
def test_fields_round_trip_property(fields: dict[str, Any]) -> None:
    tree, plain = encode_fields(fields)
    out = decode_tree(orjson.loads(orjson.dumps(tree)), plain=plain)
    assert same(out, fields)
    assert list(out) == list(fields)


def test_same_helper_tells_types_and_signs_apart() -> None:
    # The oracle of the properties above must not be vacuous.
    assert same([float("nan"), -0.0, (1,)], [float("nan"), -0.0, (1,)])
    assert not same(1, True) and not same(1, 1.0) and not same(0.0, -0.0)
    assert not same((1, 2), [1, 2]) and not same({1: 2, 3: 4}, {3: 4, 1: 2})
    assert not same({(1,)}, {(True,)}) and not same(range(0), range(1, 1))
    assert not same(ValueError(1), KeyError(1)) and not same(ValueError(1), ValueError(1.0))


# ----------------------------------------------------------------- checkpoints


def _machine(live: tuple[str, ...], site: tuple[int, str] | None = None) -> type:
    """A stand-in for a compiled function's Machine class: one await (state 3)."""
    return type(
        "hold",
        (),
        {
            "function_id": "shop.orders:hold",
            "run_fingerprint": "sha256:f4d1c1a314d99dea9024f4e0823ea203",
            "lowering_version": 1,
            "sites": {} if site is None else {3: site},
            "awaits": {3: (4, live)},
        },
    )


def _envelope_document(machine: Any, seq: int, values: dict[str, Any]) -> bytes:
    """What encode_checkpoint writes, by the general route: encode_document."""
    meta: dict[str, Any] = {"v": FORMAT_VERSION, "fn": machine.function_id}
    site = machine.sites.get(3)
    if site is not None:
        meta["at"], meta["fp"] = site
    else:
        meta["fp"] = machine.run_fingerprint
    meta["seq"], meta["state"] = seq, 3
    live = machine.awaits[3][1]
    fields = {k: values[k] for k in live if k in values}
    return encode_document(meta, "locals", fields, named=True)[0]


def _checkpoint_round_trip(values: dict[str, Any], live: tuple[str, ...]) -> tuple[Any, bool]:
    machine = _machine(live, site=(0, "b029ee4fc7d0.1263b56d"))
    data = encode_checkpoint(machine, 3, 7, values)
    assert data == _envelope_document(machine, 7, values)
    assert zlib.crc32(data) == SEALED
    document, out = decode_document(data, "locals")
    assert (document["fn"], document["at"], document["seq"], document["state"]) == (
        "shop.orders:hold",
        0,
        7,
        3,
    )
    return out, document["plain"]


def test_checkpoint_of_plain_locals() -> None:
    values = {"user_id": "u_123", "order_id": 456, "amount": 19.99, "items": ["a"], "r": None}
    out, plain = _checkpoint_round_trip(values, tuple(values))
    assert plain and same(out, values)
    machine = _machine(("a",))
    assert encode_checkpoint(machine, 3, 1, {"a": 1}) == _envelope_document(machine, 1, {"a": 1})


@pytest.mark.parametrize(
    "values",
    [
        {"a": float("nan")},
        {"a": [1.0, float("inf")]},
        {"a": {"b": [float("-inf")]}},
        {"a": (1, 2)},
        {"a": [(1,)]},
        {"a": {"$x": 1}},
        {"a": [{"$ref": 0}]},
        {"a": 2**64},
        {"a": [2**70]},
        {"a": {1: "x"}},
        {"a": "\ud800"},
        {"a": True, "b": b"x"},
        {"a": [[[[1, [2, {"c": (3,)}]]]]]},
    ],
)
def test_checkpoint_of_locals_that_are_not_plain(values: dict[str, Any]) -> None:
    out, plain = _checkpoint_round_trip(values, tuple(values))
    assert not plain and same(out, values)


def _cursor_cases() -> list[dict[str, Any]]:
    from resumable.loops import ReversedCursor, SeqCursor

    c = SeqCursor(range(0, 200, 1), 17)
    return [
        {"a": 1, "b": "x", "c": 1.5, "d": True, "e": None},
        {"a": "ü", "b": "$x", "c": 2**63 - 1, "d": -(2**63)},
        {"a": 2**64},  # an $int
        {"a": float("nan")},
        {"a": "\ud800"},  # a $str
        {"a": 1, "_c1": c},
        {"a": "order", "_c1": SeqCursor(range(5, -7, -3), 0), "_c2": ReversedCursor(range(9), 4)},
        {"_c1": c, "_c2": c},  # one cursor twice: a $ref
        {"_c1": SeqCursor(range(2**64), 1)},  # a range of $ints
        {"_c1": SeqCursor(range(3), 2**64)},
        {"_c1": SeqCursor(range(2**63, 2**63 + 5), 1)},  # 64 bits unsigned: orjson writes them
        {"a": 2**63, "_c1": c},
        {"a": "\ud800", "_c1": c},
        {"a": 'ü$x"', "b": -0.0, "_c1": c},
        {"_c1": SeqCursor([1, 2], 1)},  # not a range: decoded
        {"a": [1], "_c1": c},  # a mutable local: decoded
        {"a": (1, 2)},
        {"b": 1},  # a live local not assigned
    ]


@pytest.mark.parametrize("values", _cursor_cases())
def test_checkpoint_fresh_locals_are_what_decoding_gives(values: dict[str, Any]) -> None:
    """encode_checkpoint_fresh writes encode_checkpoint's bytes, and hands back
    (without a decode) only locals that decoding would give the same: immutable
    values as they are, range cursors new."""
    from resumable.loops import Cursor

    live = ("a", "b", "c", "d", "e", "_c1", "_c2")
    for site in (None, (0, "b029ee4fc7d0.1263b56d")):
        machine = _machine(live, site=site)
        fast = encode_checkpoint_fresh(machine, 3, 7, values)
        data = encode_checkpoint(machine, 3, 7, values)
        fresh = None
        if fast is not None:
            assert fast[0] == data
            fresh = fast[1]
        assert data == _envelope_document(machine, 7, values)
        decoded = decode_document(data, "locals")[1]
        fast = not any(type(v) in (list, tuple) for v in values.values()) and not (
            b"$ref" in data
            or b"$float" in data
            or (b"loop" in data and (b"$int" in data or b"$str" in data))
        )
        fast = fast and all(type(getattr(v, "seq", range(0))) is range for v in values.values())
        assert (fresh is not None) == fast
        if fresh is None:
            continue
        assert list(fresh) == list(decoded)
        for name, v in fresh.items():
            if isinstance(v, Cursor):
                w = decoded[name]
                assert v is not values[name] and type(v) is type(w)
                assert (v.seq, v.i) == (w.seq, w.i) and type(v.seq) is type(w.seq)
                assert v.seq is not values[name].seq
            else:
                assert same(v, decoded[name]) and v is values[name]


def test_checkpoint_keeps_identity_between_locals() -> None:
    shared = [1, 2]
    nested = [shared]
    cycle: list[Any] = [1]
    cycle.append(cycle)
    cases: list[dict[str, Any]] = [
        {"a": shared, "b": shared},  # one list in two locals
        {"a": shared, "b": nested},  # in a local and inside another
        {"a": {"x": shared, "y": shared}},  # twice inside one local
        {"a": cycle},
        {"a": [shared, [shared]]},
    ]
    for values in cases:
        out, plain = _checkpoint_round_trip(values, tuple(values))
        assert not plain
        if values["a"] is not cycle:  # (same() does not follow cycles)
            assert same(out, values)
    out, _ = _checkpoint_round_trip(cases[0], ("a", "b"))
    assert out["a"] is out["b"]
    out, _ = _checkpoint_round_trip(cases[1], ("a", "b"))
    assert out["b"][0] is out["a"]
    out, _ = _checkpoint_round_trip(cases[3], ("a",))
    assert out["a"][1] is out["a"]


def test_checkpoint_takes_the_live_locals_only() -> None:
    values = {"dead": object(), "b": 2, "a": [1]}
    out, plain = _checkpoint_round_trip(values, ("a", "b", "unassigned"))
    assert plain and list(out) == ["a", "b"] and out == {"a": [1], "b": 2}


def test_checkpoint_of_a_large_plain_local() -> None:
    rows = [{"id": i, "tags": ["x"], "p": i * 1.5, "n": None} for i in range(500)]
    out, plain = _checkpoint_round_trip({"rows": rows, "k": 1}, ("rows", "k"))
    assert plain and out == {"rows": rows, "k": 1}
    rows[7]["p"] = float("nan")
    out, plain = _checkpoint_round_trip({"rows": rows}, ("rows",))
    assert not plain and same(out, {"rows": rows})


def test_checkpoint_names_the_unencodable_local() -> None:
    with pytest.raises(Unencodable) as caught:
        encode_checkpoint(_machine(("ok", "lock")), 3, 1, {"ok": 1, "lock": threading.Lock()})
    assert caught.value.variable == "lock"


@given(st.dictionaries(st.sampled_from(["a", "b", "total", "_x1", "é"]), _small_values, max_size=4))
def test_checkpoint_property(values: dict[str, Any]) -> None:
    out, _ = _checkpoint_round_trip(values, ("total", "a", "é", "b"))
    live = {k: values[k] for k in ("total", "a", "é", "b") if k in values}
    assert same(out, live) and list(out) == list(live)


def test_checkpoint_depth_limit() -> None:
    machine = _machine(("a", "b"))
    flat = Limits(max_depth=1)
    assert decode(encode(1, limits=flat)) == 1
    with pytest.raises(Unencodable, match="nested"):
        encode_checkpoint(machine, 3, 1, {"a": 1, "b": [1]}, flat)
    two = Limits(max_depth=2)
    data = encode_checkpoint(machine, 3, 1, {"a": 1, "b": [1]}, two)
    assert decode_document(data, "locals")[1] == {"a": 1, "b": [1]}
    with pytest.raises(Unencodable, match="nested"):
        encode_checkpoint(machine, 3, 1, {"a": [[1]], "b": 2}, two)
    with pytest.raises(Unencodable, match="nested"):
        encode_checkpoint(machine, 3, 1, {"a": [1], "b": {"c": [2]}}, two)
