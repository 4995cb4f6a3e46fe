"""Stored callables and classes: only allowed ones, in every position.

A function or class a checkpoint holds as a value may be called by the
user's code (a defaultdict calls its factory on a missing key), so a
checkpoint may hold only: decorated functions, functions and classes of the
project's own modules, built-in constructors, classes with a registered codec
and targets of register_alias (resumable/codec/allowed.py). Everything else
is refused when decoding (CheckpointError naming it) and when encoding
(SerializationError naming the variable). Modules: only those the function
imports, or the project's.
"""

from __future__ import annotations

import collections
import importlib
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import resumable
from resumable import CheckpointError, SerializationError
from resumable.codec import (
    FORMAT_VERSION,
    decode,
    encode,
    register_alias,
    register_codec,
    seal,
)
from tests.codec_types import models as m
from tests.compiled import compile_and_import, import_file

MODELS = "tests.codec_types.models"
ROOT = Path(__file__).resolve().parents[1]

assert shutil and subprocess and importlib and threading  # imported: their names resolve


def document(tree: Any, *, plain: bool = False) -> bytes:
    return seal(orjson.dumps({"v": FORMAT_VERSION, "plain": plain, "value": tree}))


def decode_raw(tree: Any) -> Any:
    return decode(document(tree))


# ----------------------------------------------------------------- hostile names

#: Functions and classes a checkpoint must never hand to the user's code.
HOSTILE_FUNCTIONS = [
    "os:system", "os:abort", "os:getcwd", "subprocess:run", "builtins:eval", "builtins:exec",
    "builtins:open", "builtins:getattr", "builtins:__import__", "builtins:compile",
    "builtins:breakpoint", "builtins:input", "sys:exit", "shutil:rmtree",
    "importlib:import_module",
]  # fmt: skip
HOSTILE_CLASSES = ["subprocess:Popen", "builtins:type", "threading:Thread"]


def _reference(name: str) -> dict[str, str]:
    return {"$class": name} if name in HOSTILE_CLASSES else {"$function": name}


#: Every place a decoded value can sit: the reference `r` in each.
POSITIONS: dict[str, Callable[[Any], Any]] = {
    "value": lambda r: r,
    "list": lambda r: [1, r],
    "dict": lambda r: {"k": r},
    "dict_pair_value": lambda r: {"$dict": [[1, r]]},
    "dict_pair_key": lambda r: {"$dict": [[r, 1]]},
    "tuple": lambda r: {"$tuple": [r]},
    "set": lambda r: {"$set": [r]},
    "identity": lambda r: [{"$id": 0, "$v": [r]}, {"$ref": 0}],
    "defaultdict_factory": lambda r: {
        "$sub": {"class": "collections:defaultdict", "items": [], "factory": r}
    },
    "defaultdict_subclass_factory": lambda r: {
        "$sub": {"class": f"{MODELS}:Counts", "items": [], "factory": r}
    },
    "dataclass_field": lambda r: {"$dataclass": [f"{MODELS}:Point", {"x": r, "y": 0}]},
    "namedtuple_item": lambda r: {"$namedtuple": [f"{MODELS}:Pair", [r, 1]]},
    "pydantic_field": lambda r: {
        "$pydantic": [f"{MODELS}:FrozenModel", {"key": r}, [], None, None]
    },
    "exception_arg": lambda r: {"$exc": {"type": "builtins:ValueError", "args": [r]}},
    "exception_attr": lambda r: {
        "$exc": {"type": "builtins:ValueError", "args": [], "attrs": {"callback": r}}
    },
    "exception_field": lambda r: {
        "$exc": {"type": "builtins:AttributeError", "args": [], "fields": {"obj": r}}
    },
    "sub_attr": lambda r: {"$sub": {"class": f"{MODELS}:Tag", "value": "x", "attrs": {"cb": r}}},
    "sub_items": lambda r: {"$sub": {"class": f"{MODELS}:Bag", "items": [r]}},
    "codec_payload": lambda r: {"$codec": ["codec_types:Money", [r, "EUR"]]},
    "loop_cursor": lambda r: {"$loop.seq": [[r], 0]},
}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("name", HOSTILE_FUNCTIONS + HOSTILE_CLASSES)
def test_hostile_callable_is_refused_in_every_position(name: str, position: str) -> None:
    tree = POSITIONS[position](_reference(name))
    with pytest.raises(CheckpointError, match=f"{name!r} as a (function|class): refused"):
        decode_raw(tree)


@pytest.mark.parametrize("name", ["os:abort", "sys:exit", "builtins:input", "builtins:breakpoint"])
def test_a_hostile_factory_is_never_called(name: str) -> None:
    """In a new interpreter, whose death would show: a defaultdict of the
    checkpoint is used as the user's code does (`counts[k] += 1`)."""
    data = document(POSITIONS["defaultdict_factory"](_reference(name)))
    script = textwrap.dedent(
        """
        import sys
        from resumable import CheckpointError
        from resumable.codec import decode
        try:
            counts = decode(sys.stdin.buffer.read())
        except CheckpointError as e:
            print("refused:", e)
        else:
            counts["k"] += 1  # calls the factory
            print("decoded", dict(counts))
        print("survived")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=data,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "runtime"), str(ROOT)])},
        timeout=60,
        check=False,
    )
    out = done.stdout.decode()
    assert done.returncode == 0 and out.endswith("survived\n"), (done.returncode, out, done.stderr)
    assert out.startswith(f"refused: checkpoint names {name!r} as a function: refused")


def test_a_function_outside_the_project_is_refused_and_not_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain Python function, from a file outside the project's roots."""
    outside = tmp_path / "outside"
    outside.mkdir()
    module = _module(monkeypatch, outside / "allow_outside.py", "allow_outside", OUTSIDE)
    name = "allow_outside:count"
    for tree in (_reference(name), POSITIONS["defaultdict_factory"](_reference(name))):
        with pytest.raises(
            CheckpointError, match=r"allow_outside \(.*\) is not one of the project"
        ):
            decode_raw(tree)
    with pytest.raises(SerializationError, match="allow_outside:count may not be stored"):
        encode(collections.defaultdict(module.count))
    assert module.CALLS == []  # the sentinel: never called


def test_hostile_module_is_refused() -> None:
    for name in ("os", "subprocess", "shutil", "builtins"):
        with pytest.raises(CheckpointError, match=f"module {name!r}: refused"):
            decode_raw({"$module": name})
        assert decode(document({"$module": name}), imports=frozenset({name})) is sys.modules[name]
    assert decode_raw({"$module": MODELS}) is m  # a module of the project


# ----------------------------------------------------------------- allowed ones

OUTSIDE = """
CALLS = []


def count():
    CALLS.append(1)
    return 0


class Thing:
    pass
"""

SHOP = """
import dataclasses


def fee(amount):
    return amount // 10


@dataclasses.dataclass
class Order:
    id: int = 0
"""


def _module(monkeypatch: pytest.MonkeyPatch, path: Path, name: str, source: str) -> Any:
    path.write_text(textwrap.dedent(source))
    module = import_file(path, name)
    monkeypatch.setitem(sys.modules, name, module)  # removed after the test
    return module


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A module of the project: written in the working directory, a root."""
    folder = tmp_path / "shop"
    folder.mkdir()
    monkeypatch.chdir(folder)
    yield _module(monkeypatch, folder / "allow_shop.py", "allow_shop", SHOP)


def test_a_project_function_and_class_round_trip(shop: types.ModuleType) -> None:
    value = [shop.fee, shop.Order, collections.defaultdict(shop.Order), shop, shop.Order(3)]
    out = decode(encode(value))
    assert out[0] is shop.fee and out[1] is shop.Order and out[3] is shop
    assert out[2].default_factory is shop.Order and out[4] == shop.Order(3)


def test_a_project_is_its_working_directory_and_its_roots(
    shop: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = encode([shop.fee, shop.Order, shop])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # allow_shop is not one of its project's modules
    with pytest.raises(CheckpointError, match="'allow_shop:fee' as a function: refused"):
        decode(data)
    with pytest.raises(SerializationError, match="allow_shop:Order may not be stored"):
        encode(shop.Order)
    with pytest.raises(CheckpointError, match="module 'allow_shop': refused"):
        decode(document({"$module": "allow_shop"}))
    with_roots = tmp_path / "with_roots"
    with_roots.mkdir()
    (with_roots / "pyproject.toml").write_text('[tool.resumable]\nroots = ["../shop"]\n')
    monkeypatch.chdir(with_roots)
    assert decode(data) == [shop.fee, shop.Order, shop]


def test_built_in_constructors_round_trip() -> None:
    factories = [list, int, dict, set, str, collections.Counter, collections.OrderedDict]
    for factory in factories:
        value = collections.defaultdict(factory, {"a": factory()})
        out = decode(encode(value))
        assert type(out) is collections.defaultdict and out.default_factory is factory
        assert out["b"] == factory()  # the factory is there to be called
    classes = [bool, bytes, tuple, frozenset, object, range, slice, ValueError, KeyboardInterrupt]
    assert decode(encode(classes)) == classes


def test_a_decorated_function_round_trips_by_its_function_id() -> None:
    data = encode([m.fetch, collections.defaultdict(m.fetch)])
    assert b'{"$function":"tests.codec_types.models:fetch"}' in data
    out = decode(data)
    assert out[0] is m.fetch and out[1].default_factory is m.fetch


def test_a_class_with_a_registered_codec_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wherever it is defined: its owner registered it."""
    module = _module(monkeypatch, tmp_path / "allow_codec.py", "allow_codec", OUTSIDE)
    with pytest.raises(SerializationError, match="allow_codec:Thing may not be stored"):
        encode(module.Thing)
    register_codec(module.Thing, lambda t: [], lambda v: module.Thing(), name="allow_codec:Thing")
    assert decode(encode([module.Thing])) == [module.Thing]


def test_an_alias_target_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = _module(monkeypatch, tmp_path / "allow_alias.py", "allow_alias", OUTSIDE)
    with pytest.raises(SerializationError, match="allow_alias:count may not be stored"):
        encode(module.count)
    register_alias("allow_alias_old:count", module.count)
    out = decode(encode(collections.defaultdict(module.count)))
    assert out.default_factory is module.count
    assert decode_raw({"$function": "allow_alias_old:count"}) is module.count
    assert module.CALLS == []


# ----------------------------------------------------------------- encoding


def test_a_callable_instance_is_refused_as_a_factory() -> None:
    """An instance is stored by its kind; as a factory it would be called."""
    assert decode(encode(m.Default(5))) == m.Default(5)
    with pytest.raises(SerializationError, match=r"default_factory: a defaultdict's factory"):
        encode(collections.defaultdict(m.Default(5)))
    factory = {"$dataclass": [f"{MODELS}:Default", {"value": 5}]}
    m.CALLS.clear()
    with pytest.raises(CheckpointError, match="factory that is refused"):
        decode_raw(POSITIONS["defaultdict_factory"](factory))
    assert m.CALLS == {}


HOLDS = """
import json
import os

import resumable


async def tick():
    return None


@resumable.function
async def holds_getcwd():
    where = os.getcwd
    await tick()
    return where()


@resumable.function
async def holds_a_module():
    codec = json
    await tick()
    return codec.__name__


@resumable.function
async def imports_a_module():
    import json as codec

    await tick()
    return codec.__name__
"""


@pytest.fixture(scope="module")
def holds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    path = tmp_path_factory.mktemp("allow_holds") / "allow_holds.py"
    yield compile_and_import(path, "allow_holds", HOLDS)
    sys.modules.pop("allow_holds", None)


def test_a_run_holding_a_built_in_function_is_refused_with_the_variable(
    holds: types.ModuleType,
) -> None:
    runtime = resumable.Runtime("memory://")
    with pytest.raises(SerializationError) as info:
        runtime.run(holds.holds_getcwd, run_id="getcwd")
    message = str(info.value)
    assert "variable `where` holds a `builtin_function_or_method`" in message
    assert "posix:getcwd may not be stored in a checkpoint" in message
    assert "resumable.register_alias('posix:getcwd', getcwd)" in message


def test_a_run_holds_a_module_its_function_imports(holds: types.ModuleType) -> None:
    runtime = resumable.Runtime("memory://")
    assert runtime.run(holds.imports_a_module, run_id="imports") == "json"
    with pytest.raises(SerializationError) as info:
        runtime.run(holds.holds_a_module, run_id="global")
    assert "variable `codec` holds a `module`" in str(info.value)
    assert "`import json` in the function" in str(info.value)
