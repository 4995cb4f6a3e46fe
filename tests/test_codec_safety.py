"""Hostile and corrupt checkpoints: decoding raises CheckpointError and
nothing else, never imports a module, never builds an instance of a class
the codec was not told about, never runs code, and stays within its limits
(depth, size, digits) without overflowing Python's recursion limit.

The mutation fuzz takes real encoded values (the golden sample table, random
values, and checkpoints written by a compiled run), flips bits, truncates,
swaps tags and replaces subtrees. Every document is sealed (the CRC-32 of its
bytes is a constant), so a flipped byte, a truncation or a swapped tag must
raise CheckpointError; a mutant that still decodes (several flips that undo
each other) must decode to the right value. A subtree replaced in a tree
sealed again must decode (to some value) or raise CheckpointError.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import resumable
from resumable import CheckpointError, SerializationError
from resumable.codec import (
    FORMAT_VERSION,
    Limits,
    decode,
    decode_document,
    decode_tree,
    encode,
    seal,
)
from resumable.runtime import decode_checkpoint
from tests.codec_types import models as m
from tests.codec_types import strategies
from tests.codec_types.compare import assert_same
from tests.codec_types.samples import TAGS, samples
from tests.compiled import compile_and_import

MODELS = "tests.codec_types.models"


def document(tree: Any, *, plain: bool = False) -> bytes:
    return seal(orjson.dumps({"v": FORMAT_VERSION, "plain": plain, "value": tree}))


def decode_raw(tree: Any) -> Any:
    """Decode a JSON tree as the value of a current-format document."""
    return decode(document(tree))


def refused_or_right(
    data: bytes, expected: Any, decode_fn: Callable[[bytes], Any] = decode
) -> bool:
    """False on CheckpointError, True when `data` decodes to `expected`; a
    decoded value that differs fails the test, and so does any other exception."""
    try:
        value = decode_fn(data)
    except CheckpointError:
        return False
    assert_same(expected, value)
    return True


def decodes_or_refuses(data: bytes, decode_fn: Callable[[bytes], Any] = decode) -> bool:
    """True if `data` decoded, False on CheckpointError; any other exception
    propagates (and fails the test)."""
    try:
        decode_fn(data)
    except CheckpointError:
        return False
    return True


# ----------------------------------------------------------------- hostile inputs

DEEP = 10_000

HOSTILE: dict[str, Any] = {
    # not a document
    "empty": b"",
    "not_json": b"\xff\xfe{",
    "nan_literal": b"NaN",
    "not_an_object": b"[1, 2]",
    "no_version": b'{"value": 1}',
    "future_version": b'{"v": 4, "plain": true, "value": 1}',
    "version_zero": b'{"v": 0, "plain": true, "value": 1}',
    "version_as_string": b'{"v": "2", "plain": true, "value": 1}',
    "version_as_bool": b'{"v": true, "plain": true, "value": 1}',
    "version_as_float": b'{"v": 2.0, "plain": true, "value": 1}',
    "no_value": b'{"v": 2, "plain": true}',
    "plain_not_bool": b'{"v": 2, "plain": 1, "value": 1}',
    # unknown tags and tags that look like other formats
    "unknown_tag": {"$pickle": "gASVAAAA"},
    "reduce_tag": {"$reduce": ["os:system", ["echo hacked"]]},
    "empty_tag": {"$": 1},
    "unknown_internal": {"$loop.nope": []},
    "internal_bad_state": {"$loop.seq": [1, -5]},
    "internal_not_list": {"$loop.seq": "x"},
    "internal_wrong_arity": {"$loop.zip": [1, 2, 3]},
    # identity wrappers
    "ref_before_id": [{"$ref": 0}, {"$id": 0, "$v": []}],
    "ref_to_itself_tuple": {"$id": 0, "$v": {"$tuple": [{"$ref": 0}]}},
    "ref_to_itself_frozenset": {"$id": 0, "$v": {"$frozenset": [{"$ref": 0}]}},
    "ref_in_own_exc_args": {
        "$id": 0,
        "$v": {"$exc": {"type": "builtins:ValueError", "args": [{"$ref": 0}]}},
    },
    "duplicate_id": [{"$id": 0, "$v": []}, {"$id": 0, "$v": []}],
    "id_not_int": {"$id": "0", "$v": []},
    "id_bool": {"$id": True, "$v": []},
    "id_plain_value": {"$id": 0, "$v": 5},
    "id_extra_key": {"$id": 0, "$v": [], "x": 1},
    "ref_str": {"$ref": "0"},
    "ref_list": {"$ref": [0]},
    "ref_float": {"$ref": 0.0},
    "ref_to_scalar_tag": [{"$id": 0, "$v": {"$int": "99999999999999999999"}}, {"$ref": 0}],
    # scalars
    "int_not_digits": {"$int": "12x"},
    "int_empty": {"$int": ""},
    "int_number": {"$int": 5},
    "int_huge": {"$int": "9" * 200_000},
    "int_huge_hex": {"$int": "0x" + "f" * 200_000},
    "int_over_str_limit": {"$int": "9" * 5_000},
    "float_value": {"$float": "1.5"},
    "float_code": {"$float": "__import__('os')"},
    "str_bad_base64": {"$str": "!!!"},
    "str_not_utf8": {"$str": "/w=="},
    "bytes_number": {"$bytes": 5},
    "bytes_padding": {"$bytes": "QQ"},
    "bytearray_null": {"$bytearray": None},
    "decimal_garbage": {"$decimal": "1..2"},
    "decimal_huge": {"$decimal": "1" * 200_000},
    "uuid_garbage": {"$uuid": "not-a-uuid"},
    "uuid_number": {"$uuid": 5},
    "fraction_zero_den": {"$fraction": [1, 0]},
    "fraction_negative_den": {"$fraction": [1, -2]},
    "fraction_floats": {"$fraction": [1.5, 2]},
    "fraction_arity": {"$fraction": [1]},
    "complex_ints": {"$complex": [1, 2]},
    "range_zero_step": {"$range": [1, 2, 0]},
    "range_float": {"$range": [1, 2.0, 1]},
    "range_bool": {"$range": [True, 2, 1]},
    "range_arity": {"$range": [1, 2]},
    # dates
    "datetime_month_13": {"$datetime": [2024, 13, 1, 0, 0, 0, 0, 0, None]},
    "datetime_huge_year": {"$datetime": [2**63 - 1, 1, 1, 0, 0, 0, 0, 0, None]},
    "datetime_float_year": seal(
        b'{"v":3,"plain":false,"value":{"$datetime":[1e300,1,1,0,0,0,0,0,null]}}'
    ),
    "datetime_fold_2": {"$datetime": [2024, 1, 1, 0, 0, 0, 0, 2, None]},
    "datetime_bad_tz": {"$datetime": [2024, 1, 1, 0, 0, 0, 0, 0, 5]},
    "datetime_tz_not_tzinfo": {"$datetime": [2024, 1, 1, 0, 0, 0, 0, 0, {"$tuple": []}]},
    "datetime_arity": {"$datetime": [2024, 1, 1]},
    "datetime_strings": {"$datetime": ["2024", 1, 1, 0, 0, 0, 0, 0, None]},
    "date_zero": {"$date": [2024, 0, 1]},
    "time_hour_25": {"$time": [25, 0, 0, 0, 0, None]},
    "timedelta_huge": {"$timedelta": [2**63 - 1, 0, 0]},
    "timezone_24h": {"$timezone": [1, 0, 0, None]},
    "timezone_name_number": {"$timezone": [0, 3600, 0, 5]},
    "zoneinfo_unknown": {"$zoneinfo": "No/Such_Zone"},
    "zoneinfo_path": {"$zoneinfo": "../../../../etc/passwd"},
    "zoneinfo_absolute": {"$zoneinfo": "/etc/localtime"},
    "zoneinfo_number": {"$zoneinfo": 5},
    "path_unknown_class": {"$path": ["Popen", "/"]},
    "path_windows": {"$path": ["WindowsPath", "C:/x"]},
    # containers
    "tuple_not_list": {"$tuple": 1},
    "set_unhashable": {"$set": [[1]]},
    "frozenset_unhashable": {"$frozenset": [{"a": 1}]},
    "dict_short_pair": {"$dict": [[1]]},
    "dict_unhashable_key": {"$dict": [[[1], 2]]},
    "dict_not_pairs": {"$dict": {"a": 1}},
    # names: not imported, not existing, not a class, lazy attributes
    "module_not_imported": {"$module": "this"},
    "module_number": {"$module": 5},
    "class_not_imported": {"$class": "antigravity:Anything"},
    "class_missing": {"$class": "builtins:NoSuchClass"},
    "class_is_function": {"$class": "os:system"},
    "class_dunder_path": {"$class": "builtins:object.__subclasses__"},
    "class_empty_qualname": {"$class": "builtins:"},
    "class_no_colon": {"$class": "builtins"},
    "function_is_class": {"$function": "subprocess:Popen"},
    "function_missing": {"$function": "os:no_such_function"},
    "codec_unregistered": {"$codec": ["subprocess:Popen", ["ls"]]},
    "codec_name_number": {"$codec": [5, 1]},
    # kinds: a tag naming something of another kind (callables included)
    "exc_naming_system": {"$exc": {"type": "os:system", "args": ["echo hacked"]}},
    "exc_naming_popen": {"$exc": {"type": "subprocess:Popen", "args": [["true"]]}},
    "exc_naming_eval": {"$exc": {"type": "builtins:eval", "args": ["1"]}},
    "exc_list_form_in_v2": {"$exc": ["builtins:ValueError", [], None, None, None, False, None]},
    "exc_bad_context": {"$exc": {"type": "builtins:ValueError", "context": 5}},
    "exc_bad_suppress": {"$exc": {"type": "builtins:ValueError", "suppress_context": 1}},
    "exc_attr_traceback": {"$exc": {"type": "builtins:ValueError", "attrs": {"__traceback__": 1}}},
    "exc_attr_class": {
        "$exc": {
            "type": "builtins:ValueError",
            "attrs": {"__class__": {"$class": "builtins:KeyError"}},
        }
    },
    "exc_group_no_exceptions": {"$exc": {"type": "builtins:ExceptionGroup", "args": []}},
    "exc_unicode_error_bad_field": {
        "$exc": {"type": "builtins:UnicodeDecodeError", "fields": {"start": "x"}}
    },
    "dataclass_naming_popen": {"$dataclass": ["subprocess:Popen", {"args": ["true"]}]},
    "dataclass_naming_system": {"$dataclass": ["os:system", {}]},
    "dataclass_naming_enum": {"$dataclass": [f"{MODELS}:Color", {"_value_": 1}]},
    "dataclass_fields_not_dict": {"$dataclass": [f"{MODELS}:Point", [1, 2]]},
    "dataclass_slots_unknown_field": {"$dataclass": [f"{MODELS}:Slotted", {"zzz": 1}]},
    "dataclass_frozen_exception": {"$dataclass": ["builtins:ValueError", {}]},
    "enum_naming_popen": {"$enum": ["subprocess:Popen", "x"]},
    "enum_no_member": {"$enum": [f"{MODELS}:Color", "PURPLE"]},
    "enum_member_dunder": {"$enum": [f"{MODELS}:Color", "__class__"]},
    "enum_member_number": {"$enum": [f"{MODELS}:Color", 1]},
    "enum_flag_list_on_plain_enum": {"$enum": [f"{MODELS}:Color", ["RED"]]},
    "enum_flag_unknown_member": {"$enum": [f"{MODELS}:Perm", ["R", "Q"]]},
    "namedtuple_naming_system": {"$namedtuple": ["os:system", [1]]},
    "namedtuple_plain_tuple_subclass": {"$namedtuple": [f"{MODELS}:Row", [1]]},
    "namedtuple_arity": {"$namedtuple": [f"{MODELS}:Pair", [1, 2, 3]]},
    "pydantic_naming_popen": {"$pydantic": ["subprocess:Popen", {}, [], None, None]},
    "pydantic_naming_dataclass": {"$pydantic": [f"{MODELS}:Point", {"x": 1}, [], None, None]},
    "pydantic_bad_fields_set": {
        "$pydantic": [f"{MODELS}:FrozenModel", {"key": "k"}, [1], None, None]
    },
    "pydantic_arity": {"$pydantic": [f"{MODELS}:FrozenModel", {"key": "k"}]},
    "sub_naming_popen": {"$sub": {"class": "subprocess:Popen", "items": []}},
    "sub_naming_dataclass": {"$sub": {"class": f"{MODELS}:Point", "value": 1}},
    "sub_naming_plain_enum": {"$sub": {"class": f"{MODELS}:Color", "value": 1}},
    "sub_wrong_value_type": {"$sub": {"class": f"{MODELS}:Tag", "value": 1}},
    "sub_no_class": {"$sub": {"value": "x"}},
    "sub_items_not_list": {"$sub": {"class": f"{MODELS}:Bag", "items": 5}},
    "sub_defaultdict_bad_factory": {
        "$sub": {"class": "collections:defaultdict", "items": [], "factory": 5}
    },
    "sub_deque_bad_maxlen": {"$sub": {"class": "collections:deque", "items": [], "maxlen": -1}},
    # deep nesting, in every shape the decoder recurses through
    "deep_lists": b"[" * DEEP + b"]" * DEEP,
    "deep_dicts": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "deep_tuples": b'{"$tuple":[' * DEEP + b"]}" * DEEP,
    "deep_ids": b'{"$id":0,"$v":[' * DEEP + b"]}" * DEEP,
    "deep_dict_pairs": b'{"$dict":[[1,' * DEEP + b"1]]}" * DEEP,
    "deep_exc_context": b'{"$exc":{"type":"builtins:ValueError","context":' * DEEP
    + b"null"
    + b"}}" * DEEP,
    # deeper than the decoder's limit but within orjson's (1024): the decoder's own check
    "deep_500_lists_tagged": b'[{"$tuple":[' * 250 + b"]}]" * 250,
    "deep_900_lists": b'[{"$set":[' * 300 + b"]}]" * 300,
}


#: Hostile inputs that are not refused yet: bugs.
#: Cases pinning known bugs (strict xfail): none left.
HOSTILE_BUGS: dict[str, str] = {}


def _hostile_bytes(case: Any) -> bytes:
    return case if isinstance(case, bytes) else document(case)


def _hostile_params() -> list[Any]:
    params = []
    for name, case in HOSTILE.items():
        marks = []
        if name in HOSTILE_BUGS:
            reason = HOSTILE_BUGS[name]
            marks.append(
                pytest.mark.xfail(strict=True, raises=pytest.fail.Exception, reason=reason)
            )
        params.append(pytest.param(case, id=name, marks=marks))
    return params


@pytest.mark.parametrize("case", _hostile_params())
def test_hostile_input_is_a_checkpoint_error(case: Any) -> None:
    # The stdlib's own lazy import: looking up an unknown zone imports the
    # tzdata package's resources once, whoever looks first.
    with contextlib.suppress(Exception):
        zoneinfo.ZoneInfo("No/Such_Zone")
    before = set(sys.modules)
    m.Canary.created = 0
    with pytest.raises(CheckpointError):
        decode(_hostile_bytes(case))
    assert set(sys.modules) == before, set(sys.modules) ^ before
    assert m.Canary.created == 0


def test_hostile_python_trees_are_checkpoint_errors() -> None:
    """decode_tree on deep Python structures (no JSON parser to stop them)."""
    for build in (lambda x: [x], lambda x: {"a": x, "b": 1}, lambda x: {"$tuple": [x]}):
        tree: Any = 1
        for _ in range(DEEP):
            tree = build(tree)
        with pytest.raises(CheckpointError, match="nested"):
            decode_tree(tree)
        # even with the limit raised far beyond Python's recursion limit
        with pytest.raises(CheckpointError, match="nested"):
            decode_tree(tree, limits=Limits(max_depth=10**9))


def test_naming_callables_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    command = f"touch {marker}"
    for tree in (
        {"$exc": {"type": "os:system", "args": [command]}},
        {"$dataclass": ["os:system", {"a": command}]},
        {"$namedtuple": ["os:system", [command]]},
        {"$pydantic": ["os:system", {}, [], None, None]},
        {"$sub": {"class": "os:system", "value": command}},
        {"$enum": ["os:system", command]},
        {"$codec": ["os:system", command]},
        {"$exc": {"type": "subprocess:Popen", "args": [["touch", str(marker)]]}},
        {"$dataclass": ["subprocess:Popen", {"args": ["touch", str(marker)]}]},
        {"$sub": {"class": "subprocess:Popen", "items": [["touch", str(marker)]]}},
        {"$pydantic": ["subprocess:run", {}, [], None, None]},
    ):
        with pytest.raises(CheckpointError):
            decode_raw(tree)
    # not even as a reference: a stored function may be called by the user's code
    with pytest.raises(CheckpointError, match="'os:system' as a function: refused"):
        decode_raw({"$function": "os:system"})
    gc.collect()
    assert not marker.exists()


def test_never_imports_and_never_uses_module_getattr(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    fake = types.ModuleType("resumable_fake_lazy")

    def lazy(name: str) -> Any:  # what a lazy package does: import on attribute access
        calls.append(name)
        return importlib.import_module("colorsys")

    fake.__getattr__ = lazy  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    absent = ["this", "antigravity", "colorsys"]
    for name in absent:  # another test (or a library) may have imported one
        monkeypatch.delitem(sys.modules, name, raising=False)
    names = ["resumable_fake_lazy:Thing", "resumable_fake_lazy:sub.Thing"]
    names += [f"{module}:Anything" for module in absent]
    before = set(sys.modules)
    for name in names:
        for tree in (
            {"$class": name},
            {"$function": name},
            {"$enum": [name, "A"]},
            {"$dataclass": [name, {}]},
            {"$namedtuple": [name, []]},
            {"$pydantic": [name, {}, [], None, None]},
            {"$sub": {"class": name, "value": "x"}},
            {"$exc": {"type": name, "args": []}},
            {"$codec": [name, 1]},
        ):
            with pytest.raises(CheckpointError):
                decode_raw(tree)
    for module in absent:
        with pytest.raises(CheckpointError, match="not imported"):
            decode_raw({"$module": module})
    with pytest.raises(CheckpointError, match="refused"):  # neither imported by nor the project's
        decode_raw({"$module": "resumable_fake_lazy"})
    lazy_imported = frozenset({"resumable_fake_lazy"})
    assert decode(document({"$module": "resumable_fake_lazy"}), imports=lazy_imported) is fake
    assert calls == []
    assert set(sys.modules) == before


def test_module_import_only_when_the_function_imports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)  # imported elsewhere, maybe
    data = document({"$module": "colorsys"})
    with pytest.raises(CheckpointError, match="not imported"):
        decode(data)
    assert "colorsys" not in sys.modules
    try:
        module = decode(data, imports=frozenset({"colorsys"}))
        assert module is sys.modules["colorsys"] and hasattr(module, "rgb_to_hsv")
    finally:
        sys.modules.pop("colorsys", None)


def test_never_instantiates_an_unregistered_class() -> None:
    canary = f"{MODELS}:Canary"
    m.Canary.created = 0
    for tree in (
        {"$dataclass": [canary, {}]},
        {"$exc": {"type": canary, "args": []}},
        {"$enum": [canary, "x"]},
        {"$namedtuple": [canary, []]},
        {"$pydantic": [canary, {}, [], None, None]},
        {"$sub": {"class": canary, "items": []}},
        {"$codec": [canary, []]},
        {"$function": canary},
    ):
        with pytest.raises(CheckpointError):
            decode_raw(tree)
    assert decode_raw({"$class": canary}) is m.Canary  # a class reference, not an instance
    assert m.Canary.created == 0
    gc.collect()
    assert not any(type(o) is m.Canary for o in gc.get_objects())


# ----------------------------------------------------------------- known holes (bugs)


def _refused(tree: Any) -> None:
    try:
        result = decode_raw(tree)
    except CheckpointError:
        return
    raise AssertionError(f"decoded to a {type(result).__qualname__}")


def test_enum_flag_member_list_of_lists() -> None:
    _refused({"$enum": [f"{MODELS}:Perm", [["R"]]]})


@pytest.mark.parametrize("cls", ["TagSet", "FrozenTags"])
def test_sub_set_with_unhashable_items(cls: str) -> None:
    _refused({"$sub": {"class": f"{MODELS}:{cls}", "items": [[1]]}})


@pytest.mark.parametrize(
    "tree",
    [
        {"$sub": {"class": "builtins:bool", "value": 1}},
        {"$sub": {"class": "os:stat_result", "items": [1]}},
        {"$sub": {"class": "os:terminal_size", "items": [1, 2]}},
    ],
    ids=["bool", "stat_result", "terminal_size"],
)
def test_sub_naming_a_c_subclass(tree: Any) -> None:
    _refused(tree)


def test_sub_attrs_on_a_class_without_dict() -> None:
    _refused({"$sub": {"class": "builtins:dict", "items": [], "attrs": {"x": 1}}})


@pytest.mark.parametrize("payload", [1, [], [1, 2, 3]])
def test_registered_codec_rejecting_its_payload(payload: Any) -> None:
    _refused({"$codec": ["codec_types:Money", payload]})


@pytest.mark.parametrize(
    "tree",
    [
        {"$dataclass": [f"{MODELS}:Point", {"x": 1, "__class__": {"$class": f"{MODELS}:Canary"}}]},
        {
            "$dataclass": [
                f"{MODELS}:Point",
                {"__class__": {"$class": "subprocess:Popen"}, "_child_created": False},
            ]
        },
        {
            "$sub": {
                "class": f"{MODELS}:Tag",
                "value": "x",
                "attrs": {"__class__": {"$class": f"{MODELS}:Mode"}},
            }
        },
    ],
    ids=["dataclass_to_canary", "dataclass_to_popen", "sub_str_to_str_enum"],
)
def test_class_attribute_is_not_assigned(tree: Any) -> None:
    _refused(tree)


def test_class_attribute_of_another_layout() -> None:
    _refused(
        {
            "$sub": {
                "class": f"{MODELS}:Bag",
                "items": [],
                "attrs": {"__class__": {"$class": f"{MODELS}:Registry"}},
            }
        }
    )


def test_hostile_checkpoint_cannot_delete_a_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    closer = {"$class": "tempfile:_TemporaryFileCloser"}
    harmless = {"$dataclass": [f"{MODELS}:Point", {"close_called": True, "__class__": closer}]}
    tree = {
        "$dataclass": [
            f"{MODELS}:Point",
            {
                "close_called": False,
                "delete": True,
                "name": str(victim),
                "file": harmless,
                "__class__": closer,
            },
        ]
    }
    with contextlib.suppress(CheckpointError):
        decode_raw(tree)
    gc.collect()
    assert victim.exists(), "decoding a checkpoint deleted a file"


# ----------------------------------------------------------------- mutation fuzz

_SWAPS = sorted(TAGS - {"$id", "$v"})
_PAIRS = [
    ("$tuple", "$set"),
    ("$set", "$frozenset"),
    ("$dataclass", "$exc"),
    ("$exc", "$sub"),
    ("$namedtuple", "$dataclass"),
    ("$enum", "$namedtuple"),
    ("$pydantic", "$dataclass"),
    ("$bytes", "$bytearray"),
    ("$str", "$bytes"),
    ("$int", "$decimal"),
    ("$date", "$timedelta"),
    ("$time", "$datetime"),
    ("$range", "$fraction"),
    ("$complex", "$fraction"),
    ("$codec", "$enum"),
    ("$class", "$function"),
    ("$module", "$class"),
    ("$ref", "$id"),
    ("$zoneinfo", "$module"),
    ("$loop.seq", "$loop.reversed"),
]


def _tag_swaps(data: bytes, everything: bool) -> Iterator[bytes]:
    """`data` with one tag occurrence replaced by another tag (every tag when
    `everything`, else the pairs above, both ways)."""
    for tag in _SWAPS:
        quoted = f'"{tag}"'.encode()
        if everything:
            targets = [t for t in _SWAPS if t != tag]
        else:
            targets = [b for a, b in _PAIRS if a == tag] + [a for a, b in _PAIRS if b == tag]
        for found in re.finditer(re.escape(quoted), data):
            for other in targets:
                yield data[: found.start()] + f'"{other}"'.encode() + data[found.end() :]


def _flips(data: bytes, masks: tuple[int, ...] = (0x01, 0x04, 0x20, 0x80)) -> Iterator[bytes]:
    for i in range(len(data)):
        for mask in masks:
            mutant = bytearray(data)
            mutant[i] ^= mask
            yield bytes(mutant)


def _sample_blobs() -> dict[str, bytes]:
    return {name: encode(value) for name, value in samples().items() if name != "huge_int"}


def test_mutation_fuzz_sample_table() -> None:
    """Every bit flip (4 masks), every truncation and every tag swap of every
    golden sample: CheckpointError (the seal)."""
    count = 0
    for name, data in _sample_blobs().items():
        assert decodes_or_refuses(data), name
        for n in range(len(data)):
            assert not decodes_or_refuses(data[:n]), (name, data[:n])
        for mutant in (*_flips(data), *_tag_swaps(data, everything=True)):
            assert not decodes_or_refuses(mutant), (name, mutant)
            count += 1
    assert count > 1000, count  # not vacuous


def test_every_byte_value_at_every_position_is_refused() -> None:
    """Not only single bits: any other byte anywhere in a document."""
    data = encode({"a": (1, "é"), "b": [2.5, None]})
    for i in range(len(data)):
        for mask in range(1, 256):
            mutant = data[:i] + bytes([data[i] ^ mask]) + data[i + 1 :]
            assert not decodes_or_refuses(mutant), mutant


def _replacements() -> list[Any]:
    return [
        None, True, 0, -1, 1.5, 2**62, "x", "0x1f", "", [], {}, [[1]], {"a": 1},
        [1, [2]], [["a"], 1], {"$ref": 0}, "builtins:bool", f"{MODELS}:Color",
    ]  # fmt: skip


def _subtree_paths(tree: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _subtree_paths(v, (*path, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _subtree_paths(v, (*path, i))


def _replace(tree: Any, path: tuple[Any, ...], new: Any) -> Any:
    tree = copy.deepcopy(tree)
    holder = tree
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return tree


#: Samples pinning known bugs (strict xfail): none left.
_STRUCTURAL_BUGS: dict[str, str] = {}


def _structural_params() -> list[Any]:
    params = []
    for name in samples():
        if name == "huge_int":
            continue
        marks = []
        if name in _STRUCTURAL_BUGS:
            marks.append(
                pytest.mark.xfail(strict=True, raises=TypeError, reason=_STRUCTURAL_BUGS[name])
            )
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _structural_params())
def test_mutation_fuzz_subtree_replacement(name: str) -> None:
    """Every subtree of a sample replaced by each of a few JSON values."""
    tree = orjson.loads(encode(samples()[name]))["value"]
    count = 0
    for path in _subtree_paths(tree):
        if path:
            for new in _replacements():
                decodes_or_refuses(document(_replace(tree, path, new)))
                count += 1
    assert count >= len(_replacements())


_mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
)


@settings(max_examples=200)
@given(strategies.values, st.lists(_mutations, min_size=1, max_size=3))
def test_mutation_fuzz_property(value: Any, mutations: list[tuple[str, int, int]]) -> None:
    data = encode(value)
    for kind, where, what in mutations:
        if kind == "flip":
            mutant = bytearray(data)
            mutant[where % len(mutant)] ^= what
            data = bytes(mutant)
        elif kind == "truncate":
            data = data[: where % len(data)]
            assert not decodes_or_refuses(data)
            return
        else:
            swaps = list(_tag_swaps(data, everything=True))
            if swaps:
                data = swaps[where % len(swaps)]
    refused_or_right(data, value)


# ----------------------------------------------------------------- real checkpoints

MACHINE_SOURCE = """
from __future__ import annotations

from typing import Any

import resumable


async def tick(value: Any = None) -> Any:
    return value


@resumable.function
async def hold(value: Any) -> Any:
    copy = value
    await tick()
    return copy
"""


@pytest.fixture(scope="module")
def machine_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    path = tmp_path_factory.mktemp("codec_safety_machine") / "codec_safety_machine.py"
    yield compile_and_import(path, "codec_safety_machine", MACHINE_SOURCE)
    sys.modules.pop("codec_safety_machine", None)


def _checkpoints(module: types.ModuleType) -> list[bytes]:
    """Checkpoints written by real runs holding each sample."""
    blobs = []
    for name, value in samples().items():
        if name in ("huge_int", "loop_cursor"):
            continue
        runtime = resumable.Runtime("memory://")
        assert runtime.run(module.hold, value, run_id=name) is not None
        blob = runtime.store.runs[name].checkpoint
        assert blob is not None
        blobs.append(blob)
    return blobs


def test_mutation_fuzz_real_checkpoints(machine_module: types.ModuleType) -> None:
    machine = machine_module.hold.machine()
    blobs = _checkpoints(machine_module)
    assert len(blobs) > 30

    def decode_fn(data: bytes) -> Any:
        return decode_checkpoint(data, machine)

    for data in blobs:
        assert decodes_or_refuses(data, decode_fn)
        for n in range(0, len(data), 3):
            assert not decodes_or_refuses(data[:n], decode_fn)
        for mutant in (*_flips(data, (0x01, 0x20)), *_tag_swaps(data, everything=False)):
            assert not decodes_or_refuses(mutant, decode_fn), mutant


# ----------------------------------------------------------------- limits


def test_huge_numbers_against_the_digit_limit() -> None:
    small = Limits(max_int_digits=40)
    ok = document({"$int": "9" * 40})
    assert decode(ok, limits=small) == int("9" * 40)
    for tree in (
        {"$int": "9" * 41},
        {"$int": "-0x" + "f" * 41},
        {"$decimal": "1" * 41},
        {"$decimal": "1." + "0" * 40},
    ):
        with pytest.raises(CheckpointError):
            decode(document(tree), limits=small)
        decode(document(tree))  # within the default limit
    with pytest.raises(CheckpointError):
        decode(document({"$int": "9" * 100_001}))


def test_size_limit_refuses_on_both_sides() -> None:
    big = "x" * 5_000
    data = encode(big)
    assert decode(data) == big
    small = Limits(max_bytes=1_000)
    with pytest.raises(CheckpointError, match="more than the limit"):
        decode(data, limits=small)
    with pytest.raises(SerializationError, match="more than the limit"):
        encode(big, limits=small)
    with pytest.raises(SerializationError, match="more than the limit"):
        encode((big,), limits=small)  # the general path too
    assert decode(encode("x" * 500, limits=small), limits=small) == "x" * 500


def test_huge_string_and_bytes_round_trip() -> None:
    text = "é" * 1_000_000 + "\ud800"
    blob = bytes(range(256)) * 4_000
    out = decode(encode([text, blob]))
    assert out == [text, blob]


def test_depth_limit_refuses_on_both_sides() -> None:
    value: Any = 1
    for _ in range(20):
        value = (value,)
    shallow = Limits(max_depth=10)
    data = encode(value)
    assert decode(data) == value
    with pytest.raises(CheckpointError, match="nested more than 10"):
        decode(data, limits=shallow)
    with pytest.raises(SerializationError, match="nested more than 10"):
        encode(value, limits=shallow)
    listy: Any = []
    for _ in range(20):
        listy = [listy]
    with pytest.raises(SerializationError, match="nested more than 10"):
        encode(listy, limits=shallow)


def test_depth_limits_of_plain_and_tagged_documents() -> None:
    # max_depth bounds every value encoded and every value decoded from
    # storage, plain or tagged; bytes this process has just written
    # (verify=False) are not walked again.
    listy: Any = []
    for _ in range(20):
        listy = [listy]
    with pytest.raises(SerializationError):
        encode(listy, limits=Limits(max_depth=10))
    with pytest.raises(CheckpointError, match="nested more than 10"):
        decode(encode(listy), limits=Limits(max_depth=10))
    assert decode(encode(listy), limits=Limits(max_depth=20)) == listy  # 21 lists: 0 to 20
    assert decode(encode(listy), limits=Limits(max_depth=10), verify=False) == listy
    tagged: Any = ()
    for _ in range(20):
        tagged = (tagged,)
    with pytest.raises(CheckpointError, match="nested more than 10"):
        decode(encode(tagged), limits=Limits(max_depth=10))
    deep = seal(b'{"v":3,"plain":true,"value":' + b"[" * 2000 + b"]" * 2000 + b"}")
    with pytest.raises(CheckpointError):
        decode(deep)


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_plain_documents_nested_deeper_than_the_limit_are_refused() -> None:
    deep = seal(b'{"v":3,"plain":true,"value":' + _nested(1000) + b"}")  # orjson: up to 1024
    with pytest.raises(CheckpointError, match="nested more than 200 levels deep"):
        decode(deep)
    assert decode(deep, verify=False) is not None  # bytes just written are not walked again
    at_limit = seal(b'{"v":3,"plain":true,"value":' + _nested(201) + b"}")  # depths 0 to 200
    assert decode(at_limit) is not None
    with pytest.raises(CheckpointError, match="nested more than 200"):
        decode(seal(b'{"v":3,"plain":true,"value":' + _nested(202) + b"}"))
    # one deep branch in a wide document; a checkpoint's locals
    wide = b'{"v":3,"plain":true,"value":[' + b"[1,{}]," * 5000 + _nested(300) + b"]}"
    with pytest.raises(CheckpointError, match="nested"):
        decode(seal(wide))
    locals_ = b'{"v":3,"fn":"a:b","fp":"x","seq":1,"state":3,"plain":true,"locals":{"x":'
    with pytest.raises(CheckpointError, match="nested"):
        decode_document(seal(locals_ + _nested(300) + b"}}"), "locals")
    shallow = Limits(max_depth=10)
    with pytest.raises(CheckpointError, match="nested more than 10"):
        decode(seal(b'{"v":3,"plain":true,"value":{"a":{"b":' + _nested(10) + b"}}}"), shallow)


def test_big_flat_plain_documents_still_decode() -> None:
    rows = [{"id": i, "tags": ["x", [i]], "deep": {"a": {"b": [None]}}} for i in range(20_000)]
    assert decode(encode(rows)) == rows


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux only")
@pytest.mark.parametrize("kind", ["bytes", "str", "strings"])
def test_a_value_over_max_bytes_is_refused_before_it_is_copied(kind: str) -> None:
    """A 120 MiB local (the limit is 64 MiB), in a new interpreter: refusing it
    adds less than 32 MiB to the peak (it took 2 to 4 copies before)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "tests.codec_types.memory", kind, "120"],
        capture_output=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "runtime"), str(root)])},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert "more than the limit of 67108864" in result["error"]
    assert result["extra"] < 32 * 1024, result  # KiB: no copy of the value


def test_deep_python_values_are_serialization_errors() -> None:
    builders: list[Callable[[Any], Any]] = [
        lambda x: [x],
        lambda x: (x,),
        lambda x: {1: x},
        lambda x: {"k": x},
        lambda x: m.Node(0, x),
        lambda x: _context(x),
    ]
    for build in builders:
        value: Any = None
        for _ in range(DEEP):
            value = build(value)
        with pytest.raises(SerializationError, match="nested"):
            encode(value)
        with pytest.raises(SerializationError, match="nested"):
            encode(value, limits=Limits(max_depth=10**9))


def _context(inner: Any) -> BaseException:
    error = ValueError()
    error.__context__ = inner
    return error
