"""User types in checkpoints: registered codecs (names and aliases), classes
that moved or were renamed (register_alias), unregistered classes refused
with an error that says what to do, kinds checked on decode, and the
SerializationError a real compiled run raises (variable, type, path inside
the value, function, source line, fix)."""

from __future__ import annotations

import dataclasses
import enum
import sys
import textwrap
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest

import resumable
from resumable import CheckpointError, SerializationError
from resumable.codec import (
    FORMAT_VERSION,
    Unencodable,
    decode,
    encode,
    encode_fields,
    register_alias,
    register_codec,
    seal,
)
from tests.codec_types import models as m
from tests.codec_types.compare import assert_same
from tests.compiled import compile_and_import

MODELS = "tests.codec_types.models"


def decode_raw(tree: Any) -> Any:
    return decode(seal(orjson.dumps({"v": FORMAT_VERSION, "plain": False, "value": tree})))


def tree_of(value: Any) -> Any:
    return orjson.loads(encode(value))["value"]


# ----------------------------------------------------------------- registered codecs


def test_registered_codec_is_written_under_its_name() -> None:
    value = m.Money(150, "EUR")
    assert tree_of(value) == {"$codec": ["codec_types:Money", [150, "EUR"]]}
    out = decode(encode(value))
    assert type(out) is m.Money and out == value


def test_registered_codec_decodes_under_its_aliases() -> None:
    out = decode_raw({"$codec": ["old.billing:Money", [3, "USD"]]})
    assert type(out) is m.Money and out == m.Money(3, "USD")


def test_registered_codec_keeps_identity_and_nests() -> None:
    price = m.Money(1, "EUR")
    value = {"a": price, "b": [price], "nested": m.Money(m.Money(2, "USD"), "XXX")}  # type: ignore[arg-type]
    out = decode(encode(value))
    assert out["a"] is out["b"][0]
    assert out["nested"].amount == m.Money(2, "USD")
    assert_same(value, out)


class Celsius(float):
    """A float subclass with a codec: the codec wins over the generic $sub form."""


class Temperature:
    def __init__(self, degrees: float) -> None:
        self.degrees = degrees


register_codec(Celsius, float, Celsius, name="test_codec_user:Celsius")
register_codec(
    Temperature,
    lambda t: {"deg": t.degrees, "when": (1, 2)},
    lambda v: Temperature(v["deg"]),
    name="test_codec_user:Temperature",
)


def test_registered_codec_for_a_builtin_subclass_and_any_payload() -> None:
    assert tree_of(Celsius(21.5)) == {"$codec": ["test_codec_user:Celsius", 21.5]}
    assert type(decode(encode(Celsius(21.5)))) is Celsius
    assert tree_of(Temperature(3.0)) == {
        "$codec": ["test_codec_user:Temperature", {"deg": 3.0, "when": {"$tuple": [1, 2]}}]
    }
    assert decode(encode(Temperature(3.0))).degrees == 3.0


def test_register_codec_validates_its_arguments() -> None:
    with pytest.raises(TypeError, match="stored natively"):
        register_codec(dict, dict, dict)
    with pytest.raises(TypeError, match="stored natively"):
        register_codec(type(None), repr, repr)
    with pytest.raises(TypeError, match="not a class"):
        register_codec(m.Money(1, "x"), repr, repr)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already used"):
        register_codec(m.Lock, repr, repr, name="codec_types:Money")
    # registering the same class again under its name is allowed
    register_codec(
        m.Money,
        lambda x: [x.amount, x.currency],
        lambda v: m.Money(*v),
        name="codec_types:Money",
        aliases=("old.billing:Money",),
    )
    assert decode(encode(m.Money(1, "EUR"))) == m.Money(1, "EUR")


def test_codec_payload_that_cannot_be_stored_names_its_path() -> None:
    class Local:
        pass

    class Holder:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

    register_codec(Holder, lambda h: {"inner": h.inner}, lambda v: Holder(v["inner"]))
    with pytest.raises(SerializationError) as info:
        encode([Holder(Local())])
    message = str(info.value)
    assert message.startswith("value[0].<tests.test_codec_user:")
    assert ".Holder>['inner']: " in message and ".Local cannot be stored" in message


class Fragile:
    """Its registered encode function fails."""


def _fail_to_encode(value: Fragile) -> Any:
    raise ValueError("cannot encode a Fragile")


register_codec(Fragile, _fail_to_encode, lambda v: Fragile(), name="test_codec_user:Fragile")


def test_codec_encode_failure_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match=r"value\['x'\]"):
        encode({"x": Fragile()})


# ----------------------------------------------------------------- moved and renamed


OLD_HOME = """
import collections
import dataclasses
import enum
from typing import Any, NamedTuple


@dataclasses.dataclass
class Point:
    x: Any
    y: Any = 0


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


class Coord(NamedTuple):
    lat: float
    lon: float = 0.0


class AppError(Exception):
    pass


class Tag(str):
    pass


def helper(x):
    return x
"""


@pytest.fixture
def old_home(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module of the project the classes used to live in (removed after encoding)."""
    module = types.ModuleType("codec_user_old_home")
    module.__file__ = str(Path(__file__).with_name("codec_user_old_home.py"))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(OLD_HOME, "codec_user_old_home.py", "exec", dont_inherit=True), module.__dict__)
    return module


def test_moved_classes_decode_through_aliases(
    old_home: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = old_home.AppError("boom")
    error.code = 7
    value = [
        old_home.Point(1, [2]),
        old_home.Color.GREEN,
        old_home.Coord(1.5, 2.5),
        error,
        old_home.Tag("ABC"),
        old_home.helper,
        old_home.Point,
    ]
    data = encode(value)
    assert b"codec_user_old_home:Point" in data
    monkeypatch.delitem(sys.modules, "codec_user_old_home")
    with pytest.raises(CheckpointError, match="register an alias"):
        decode(data)

    # the new homes, under new names for some of them
    for old, new in [
        ("Point", m.Point),
        ("Color", m.Color),
        ("Coord", m.Coord),
        ("AppError", m.AppError),
        ("Tag", m.Tag),
        ("helper", m.helper),
    ]:
        register_alias(f"codec_user_old_home:{old}", new)
    m.CALLS.clear()
    out = decode(data)
    assert m.CALLS == {}
    assert type(out[0]) is m.Point and (out[0].x, out[0].y) == (1, [2])
    assert out[1] is m.Color.GREEN
    assert type(out[2]) is m.Coord and out[2] == (1.5, 2.5)
    assert type(out[3]) is m.AppError and out[3].args == ("boom",) and out[3].code == 7
    assert type(out[4]) is m.Tag and str.__str__(out[4]) == "ABC"
    assert out[5] is m.helper and out[6] is m.Point


class RenamedShape(enum.Enum):
    """Stands for an Enum renamed from `Shape` in this module."""

    SQUARE = "square"


def test_renamed_class_in_the_same_module() -> None:
    old_name = f"{__name__}:Shape"
    with pytest.raises(CheckpointError, match="does not exist"):
        decode_raw({"$enum": [old_name, "SQUARE"]})
    register_alias(old_name, RenamedShape)
    assert decode_raw({"$enum": [old_name, "SQUARE"]}) is RenamedShape.SQUARE
    # new checkpoints are written under the new name
    assert tree_of(RenamedShape.SQUARE) == {"$enum": [f"{__name__}:RenamedShape", "SQUARE"]}


def test_alias_to_a_class_of_the_wrong_kind_is_still_checked() -> None:
    register_alias("codec_user_gone:Thing", m.Color)
    with pytest.raises(CheckpointError, match="as a dataclass"):
        decode_raw({"$dataclass": ["codec_user_gone:Thing", {"x": 1}]})
    register_alias("codec_user_gone:Function", m.helper)
    with pytest.raises(CheckpointError):
        decode_raw({"$exc": {"type": "codec_user_gone:Function", "args": []}})


def test_register_alias_wants_a_qualified_name() -> None:
    with pytest.raises(ValueError, match="module:qualname"):
        register_alias("Point", m.Point)


# ----------------------------------------------------------------- unregistered classes


def test_unregistered_plain_class_is_refused_with_the_fix() -> None:
    with pytest.raises(SerializationError) as info:
        encode({"lock": [m.Lock()]})
    message = str(info.value)
    assert message.startswith("value['lock'][0]: tests.codec_types.models.Lock cannot be stored")
    assert "register_codec(Lock, encode, decode)" in message
    assert "dataclass, Enum, NamedTuple, exception or pydantic model" in message


def test_unregistered_class_in_fields_names_the_variable() -> None:
    with pytest.raises(Unencodable) as info:
        encode_fields({"ok": 1, "order": {"items": [1, 2, 3, m.Lock()]}})
    assert info.value.variable == "order"
    assert info.value.where() == "['items'][3]"
    assert "register_codec" in info.value.reason


def test_the_advertised_register_codec_exists() -> None:
    assert hasattr(resumable, "register_codec") and hasattr(resumable, "register_alias")


@pytest.mark.parametrize(
    "value, fragment",
    [
        (threading.Lock(), "_thread.lock cannot be stored"),
        ((i for i in range(3)), "generator cannot be stored"),
        (lambda: 0, "defined inside a function"),
        (object(), "object cannot be stored"),
    ],
    ids=["lock", "generator", "lambda", "object"],
)
def test_unencodable_builtins(value: Any, fragment: str) -> None:
    with pytest.raises(SerializationError, match=fragment):
        encode([value])


def test_local_classes_are_refused() -> None:
    @dataclasses.dataclass
    class LocalPoint:
        x: int

    class LocalColor(enum.Enum):
        RED = 1

    class LocalPair(NamedTuple):
        a: int

    for value in (LocalPoint(1), LocalColor.RED, LocalPair(1), LocalPoint):
        with pytest.raises(SerializationError, match="define it at module level"):
            encode(value)


# ----------------------------------------------------------------- kinds checked on decode


KIND_MISMATCHES: dict[str, tuple[Any, str]] = {
    "dataclass_naming_enum": ({"$dataclass": [f"{MODELS}:Color", {}]}, "as a dataclass"),
    "dataclass_naming_pydantic": ({"$dataclass": [f"{MODELS}:Address", {}]}, "as a dataclass"),
    "dataclass_naming_namedtuple": ({"$dataclass": [f"{MODELS}:Pair", {}]}, "as a dataclass"),
    "dataclass_naming_plain_class": ({"$dataclass": [f"{MODELS}:Lock", {}]}, "as a dataclass"),
    "enum_naming_dataclass": ({"$enum": [f"{MODELS}:Point", "x"]}, "as an Enum"),
    "namedtuple_naming_tuple_subclass": ({"$namedtuple": [f"{MODELS}:Row", [1]]}, "named tuple"),
    "namedtuple_naming_dataclass": ({"$namedtuple": [f"{MODELS}:Point", [1]]}, "named tuple"),
    "pydantic_naming_dataclass": (
        {"$pydantic": [f"{MODELS}:Point", {}, [], None, None]},
        "as a pydantic model",
    ),
    "exc_naming_dataclass": ({"$exc": {"type": f"{MODELS}:Point"}}, "as an exception class"),
    "exc_naming_enum": ({"$exc": {"type": f"{MODELS}:Color"}}, "as an exception class"),
    "sub_naming_dataclass": (
        {"$sub": {"class": f"{MODELS}:Point", "items": []}},
        "as a subclass of a built-in type",
    ),
    "sub_naming_plain_class": (
        {"$sub": {"class": f"{MODELS}:Lock", "value": "x"}},
        "as a subclass of a built-in type",
    ),
    "function_naming_class": ({"$function": f"{MODELS}:Point"}, "as a function"),
    "class_naming_function": ({"$class": f"{MODELS}:helper"}, "but it is"),
    "codec_unknown_name": ({"$codec": [f"{MODELS}:Lock", []]}, "no codec is registered"),
    "enum_unknown_member": ({"$enum": [f"{MODELS}:Color", "PINK"]}, "has no member"),
    "namedtuple_arity": ({"$namedtuple": [f"{MODELS}:Pair", [1]]}, "takes 2 values"),
}


@pytest.mark.parametrize("tree, message", KIND_MISMATCHES.values(), ids=KIND_MISMATCHES.keys())
def test_kind_is_checked_on_decode(tree: Any, message: str) -> None:
    m.CALLS.clear()
    m.Canary.created = 0
    with pytest.raises(CheckpointError, match=message):
        decode_raw(tree)
    assert m.CALLS == {}


@pytest.mark.parametrize(
    "tree",
    [
        {"$sub": {"class": f"{MODELS}:Level", "value": 5}},
        {"$sub": {"class": f"{MODELS}:Mode", "value": "zzz"}},
        {"$sub": {"class": f"{MODELS}:Pair", "items": [1, 2, 3]}},
    ],
    ids=["int_enum", "str_enum", "namedtuple_arity"],
)
def test_sub_refuses_enums_and_named_tuples(tree: Any) -> None:
    try:
        result = decode_raw(tree)
    except CheckpointError:
        return
    raise AssertionError(f"built {type(result).__qualname__} through $sub")


# ----------------------------------------------------------------- a real compiled run

SHOP = '''
from __future__ import annotations

import dataclasses
import threading
from typing import Any

import resumable


async def tick(value: Any = None) -> Any:
    return value


@dataclasses.dataclass
class Lock:
    held: bool = False


@dataclasses.dataclass
class Item:
    name: str
    lock: Any = None


@dataclasses.dataclass
class Order:
    items: list[Item]


class Gadget:
    """Neither a dataclass nor registered."""


@resumable.function
async def checkout(n: int) -> int:
    order = Order([Item(f"item{i}") for i in range(n)])
    order.items[3].lock = threading.Lock()
    total = 0
    await tick()  # AWAIT-CHECKOUT
    return len(order.items) + total


@resumable.function
async def keep_gadget() -> str:
    box = {"parts": [1, Gadget()]}
    await tick()  # AWAIT-GADGET
    return str(len(box))


@resumable.function
async def take(arg: Any) -> Any:
    await tick()
    return arg


@resumable.function
async def give() -> Any:
    await tick()
    return {"gadget": Gadget()}


@resumable.function
async def fine(n: int) -> list[Any]:
    order = Order([Item(f"item{i}", Lock()) for i in range(n)])
    await tick()
    return [order, n]
'''


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    path = tmp_path_factory.mktemp("codec_user_shop") / "codec_user_shop.py"
    yield compile_and_import(path, "codec_user_shop", textwrap.dedent(SHOP))
    sys.modules.pop("codec_user_shop", None)


def _line(module: types.ModuleType, marker: str) -> int:
    lines = Path(module.__file__ or "").read_text().splitlines()
    hits = [i + 1 for i, text in enumerate(lines) if marker in text]
    assert len(hits) == 1
    return hits[0]


def test_serialization_error_names_variable_type_path_function_line(
    shop: types.ModuleType,
) -> None:
    runtime = resumable.Runtime("memory://")
    with pytest.raises(SerializationError) as info:
        runtime.run(shop.checkout, 5, run_id="r1")
    message = str(info.value)
    line = _line(shop, "AWAIT-CHECKOUT")
    assert f"cannot checkpoint checkout at the await on line {line}" in message
    assert f"codec_user_shop.py:{line}" in message
    assert "variable `order`" in message
    assert "holds a `_thread.lock`" in message
    assert "at `order.items[3].lock`" in message
    assert "_thread.lock cannot be stored" in message
    assert "Fix:" in message
    assert runtime.status("r1") == "blocked"


def test_serialization_error_for_an_unregistered_class_says_register_a_codec(
    shop: types.ModuleType,
) -> None:
    runtime = resumable.Runtime("memory://")
    with pytest.raises(SerializationError) as info:
        runtime.run(shop.keep_gadget)
    message = str(info.value)
    line = _line(shop, "AWAIT-GADGET")
    assert f"keep_gadget at the await on line {line}" in message
    assert "variable `box`" in message and "at `box['parts'][1]`" in message
    assert "holds a `codec_user_shop.Gadget`" in message
    assert "register_codec(Gadget, encode, decode)" in message


def test_serialization_error_for_arguments_and_results(shop: types.ModuleType) -> None:
    runtime = resumable.Runtime("memory://")
    with pytest.raises(SerializationError) as info:
        runtime.run(shop.take, [1, shop.Gadget()])
    message = str(info.value)
    assert "cannot start take" in message and "argument `arg[1]`" in message
    assert "codec_user_shop.Gadget" in message
    with pytest.raises(SerializationError) as info:
        runtime.run(shop.give)
    message = str(info.value)
    assert "give returned" in message and "result['gadget']" in message


def test_user_classes_round_trip_through_a_run(shop: types.ModuleType) -> None:
    seen: list[Any] = []
    runtime = resumable.Runtime("memory://", on_checkpoint=seen.append)
    order, n = runtime.run(shop.fine, 3)
    assert n == 3 and type(order) is shop.Order
    assert [type(i.lock) for i in order.items] == [shop.Lock] * 3
    assert seen and type(seen[-1].locals["order"]) is shop.Order
