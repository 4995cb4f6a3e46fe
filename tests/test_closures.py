"""Closures held across checkpoints: how they are stored, where they may not
go, and what a hostile checkpoint naming one can do (nothing).

A lambda or nested function of a compiled function is stored by its
definition (`{"$closure": {"def": "f.<locals>.get", "fp": ...}}`) with its
defaults and attributes, and rebuilt over the run's locals. Returned, put in
a child run's arguments, or made by another run, it is a SerializationError;
a checkpoint naming a definition the function does not have, or malformed,
is a CheckpointError (a changed definition, VersionMismatch), and the run is
blocked at its last good checkpoint. On each store (memory, SQLite,
PostgreSQL). Real crashes: tests/test_crash.py (`tally`).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import resumable
from resumable import CheckpointError, SerializationError, VersionMismatch
from resumable.codec import seal
from resumable.runtime import decode_checkpoint
from resumable.store import BLOCKED
from resumable.store.base import checkpoint_write, owner_name
from tests.compiled import compile_and_import
from tests.stores import KINDS, store_url

SOURCE = '''
from __future__ import annotations

import functools

import resumable

KEEP = []


async def tick(value=None):
    return value


@resumable.function
async def holds(n):
    k = n
    def get(scale=2, *, offset=1):
        """Doc."""
        return k * scale + offset
    get.tag = "t"
    await tick()
    k = n + 1
    await tick()
    return get(), get.tag, get.__doc__


@resumable.function
async def returns_closure(n):
    k = await tick(n)
    return lambda: k


@resumable.function
async def returns_closure_in_a_list(n):
    def get():
        return n
    await tick()
    return [1, {"get": get}]


@resumable.function
async def child(fn):
    return fn()


@resumable.function
async def passes_closure_to_a_child(n):
    k = await tick(n)
    return await child(lambda: k)


@resumable.function
async def holds_an_inner_closure(n):
    def outer():
        y = 1
        def inner():
            return y + n
        return inner
    h = outer()
    await tick()
    return h()


@resumable.function
async def keeps_its_closure(n):
    k = n
    KEEP.append(lambda: k)
    return await tick(n)


def logged(fn):
    def wrapper(*args):
        return fn(*args)
    return wrapper


@resumable.function
async def holds_a_decorated_closure(n, cached):
    if cached:
        @functools.lru_cache
        def get():
            return n
    else:
        @logged
        def get():
            return n
    await tick()
    return get()


@resumable.function
async def holds_another_functions_closure():
    borrowed = KEEP[-1]
    await tick()
    return borrowed()


@resumable.function
async def shares(n, borrow):
    k = n
    mine = lambda: k
    if borrow:
        mine = KEEP[-1]
    else:
        KEEP.append(mine)
    await tick()
    return mine()
'''


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    path = tmp_path_factory.mktemp("closures") / "closure_jobs.py"
    yield compile_and_import(path, "closure_jobs", SOURCE)
    sys.modules.pop("closure_jobs", None)


class Stop(BaseException):
    """Stands for the process dying right after a checkpoint."""


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture
def runtime(url: str) -> Iterator[Callable[..., resumable.Runtime]]:
    """Runtimes on the test's store (closed at its end)."""
    opened: list[resumable.Runtime] = []

    def new(**options: Any) -> resumable.Runtime:
        opened.append(resumable.Runtime(url, **options))
        return opened[-1]

    yield new
    for rt in opened:
        rt.close()


@pytest.fixture
def stopped_at(
    runtime: Callable[..., resumable.Runtime],
) -> Callable[..., tuple[resumable.Runtime, str]]:
    def stop(fn: Any, n: int, *args: Any) -> tuple[resumable.Runtime, str]:
        """A run of `fn` stopped right after its checkpoint `n`."""

        def saved(info: Any) -> None:
            if info.seq == n:
                raise Stop

        rt = runtime(on_checkpoint=saved)
        with pytest.raises(Stop):
            rt.run(fn, *args, run_id="r")
        rt.on_checkpoint = None
        return rt, "r"

    return stop


def checkpoint_tree(rt: resumable.Runtime, run_id: str) -> dict[str, Any]:
    record = rt.store.get(run_id)
    assert record is not None and record.checkpoint is not None
    document: dict[str, Any] = orjson.loads(record.checkpoint)
    return document


def with_checkpoint(rt: resumable.Runtime, run_id: str, document: dict[str, Any]) -> None:
    """Replace the stored checkpoint of `run_id` with `document`, sealed: as
    a driver writes one (owned, claimed, its number and line kept)."""
    document = {k: v for k, v in document.items() if k != "seal"}
    store = rt.store
    record = store.get(run_id)
    assert record is not None and store.lock(run_id)
    try:
        lease = store.claim(run_id, owner_name(), record.fingerprint)
        assert lease is not None
        blob = seal(orjson.dumps(document))
        write = checkpoint_write(lease, blob, record.seq, record.line, record.fingerprint)
        assert store.apply(write)
    finally:
        store.unlock(run_id)


# ------------------------------------------------------------------ stored


def test_a_closure_is_stored_by_its_definition(
    mod: types.ModuleType, stopped_at: Callable[..., tuple[resumable.Runtime, str]]
) -> None:
    rt, run_id = stopped_at(mod.holds, 1, 3)
    document = checkpoint_tree(rt, run_id)
    assert document["plain"] is False
    stored = document["locals"]["get"]["$closure"]
    assert stored["def"] == "holds.<locals>.get"
    assert len(stored["fp"]) == 12
    assert stored["defaults"] == {"$tuple": [2]}
    assert stored["kwdefaults"] == {"offset": 1}
    assert stored["attrs"] == {"tag": "t"}
    assert "names" not in stored  # the definition's own names and doc
    assert document["locals"]["k"] == 3  # used only by the closure: live
    # Resumed (in a fresh runtime's decode, as after a crash): late binding.
    assert rt.run(mod.holds, 3, run_id=run_id) == (4 * 2 + 1, "t", "Doc.")


def test_rebuilt_closures_share_the_locals_the_run_goes_on_with(
    mod: types.ModuleType, stopped_at: Callable[..., tuple[resumable.Runtime, str]]
) -> None:
    rt, run_id = stopped_at(mod.holds, 1, 3)
    record = rt.store.get(run_id)
    assert record is not None and record.checkpoint is not None
    blob = record.checkpoint
    frame = resumable.machine.Locals()
    point = decode_checkpoint(blob, mod.holds.machine(), frame=frame)
    get = point["locals"]["get"]
    frame.__dict__.update(point["locals"])
    assert get.__closure__[0].cell_contents is frame
    assert get.__qualname__ == "holds.<locals>.get"
    assert get() == 7
    frame.k = 10
    assert get(1, offset=0) == 10


# ------------------------------------------------------------------ leaving the run


def test_a_returned_closure_is_a_serialization_error_naming_it(
    mod: types.ModuleType, runtime: Callable[..., resumable.Runtime]
) -> None:
    rt = runtime()
    with pytest.raises(SerializationError) as info:
        rt.run(mod.returns_closure, 1, run_id="r")
    message = str(info.value)
    assert "returns_closure returned a `function`" in message
    assert "returns_closure.<locals>.<lambda>" in message
    assert "cannot leave the run" in message
    assert rt.status("r") == BLOCKED


def test_a_closure_in_a_returned_value_names_its_path(
    mod: types.ModuleType, runtime: Callable[..., resumable.Runtime]
) -> None:
    rt = runtime()
    with pytest.raises(SerializationError) as info:
        rt.run(mod.returns_closure_in_a_list, 1, run_id="r")
    assert "(at `result[1]['get']`)" in str(info.value)
    assert "returns_closure_in_a_list.<locals>.get" in str(info.value)


def test_a_closure_passed_to_a_child_run_is_a_serialization_error(
    mod: types.ModuleType, runtime: Callable[..., resumable.Runtime]
) -> None:
    rt = runtime()
    with pytest.raises(SerializationError) as info:
        rt.run(mod.passes_closure_to_a_child, 1, run_id="r")
    message = str(info.value)
    assert "cannot start child: argument `fn` holds a `function`" in message
    assert "passes_closure_to_a_child.<locals>.<lambda>" in message
    assert rt.status("r") == BLOCKED


def test_a_closure_over_an_inner_functions_variable_is_refused(
    mod: types.ModuleType, runtime: Callable[..., resumable.Runtime]
) -> None:
    rt = runtime()
    with pytest.raises(SerializationError) as info:
        rt.run(mod.holds_an_inner_closure, 1, run_id="r")
    message = str(info.value)
    assert "variable `h`" in message
    assert "holds_an_inner_closure.<locals>.outer.<locals>.inner" in message
    assert "uses the variable `y`" in message


@pytest.mark.parametrize(
    ("cached", "words"),
    [
        (True, "functools._lru_cache_wrapper cannot be stored"),
        (False, "logged.<locals>.wrapper, defined inside logged"),
    ],
)
def test_a_decorated_closure_is_refused_when_the_decorator_returned_another_object(
    mod: types.ModuleType, cached: bool, words: str, runtime: Callable[..., resumable.Runtime]
) -> None:
    rt = runtime()
    with pytest.raises(SerializationError) as info:
        rt.run(mod.holds_a_decorated_closure, 1, cached, run_id="r")
    assert "variable `get`" in str(info.value)
    assert words in str(info.value)


def test_a_closure_of_another_function_is_refused(
    mod: types.ModuleType, runtime: Callable[..., resumable.Runtime]
) -> None:
    rt = runtime()
    assert rt.run(mod.keeps_its_closure, 5, run_id="a") == 5
    with pytest.raises(SerializationError) as info:
        rt.run(mod.holds_another_functions_closure, run_id="b")
    message = str(info.value)
    assert "variable `borrowed`" in message
    assert "keeps_its_closure.<locals>.<lambda>, defined inside keeps_its_closure" in message
    assert "only the lambdas and functions defined in holds_another_functions_closure" in message


def test_a_closure_of_another_run_of_the_function_is_refused(
    mod: types.ModuleType, runtime: Callable[..., resumable.Runtime]
) -> None:
    rt = runtime()
    assert rt.run(mod.shares, 1, False, run_id="a") == 1
    with pytest.raises(SerializationError) as info:
        rt.run(mod.shares, 2, True, run_id="b")
    message = str(info.value)
    assert "variable `mine`" in message
    assert "shares.<locals>.<lambda> of another run (or call) of shares" in message


# ------------------------------------------------------------------ hostile checkpoints


def _set_closure(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        change(document["locals"]["get"]["$closure"])

    return mutate


def _put(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return _set_closure(lambda c: c.__setitem__(key, value))


HOSTILE: dict[str, Callable[[dict[str, Any]], None]] = {
    "unknown_definition": _put("def", "holds.<locals>.nothing"),
    "definition_of_another_module": _put("def", "os:system"),
    "definition_numbered_beyond": _put("def", "holds.<locals>.get#7"),
    "definition_not_a_string": _put("def", ["holds.<locals>.get"]),
    "no_definition": _set_closure(lambda c: c.pop("def")),
    "no_fingerprint": _set_closure(lambda c: c.pop("fp")),
    "fingerprint_not_a_string": _put("fp", 5),
    "unknown_field": _put("code", "6300"),
    "defaults_not_a_tuple": _put("defaults", [2]),
    "too_many_defaults": _put("defaults", {"$tuple": [1, 2, 3]}),
    "keyword_default_of_no_parameter": _put("kwdefaults", {"nope": 1}),
    "dunder_attribute": _put("attrs", {"__code__": 1}),
    "globals_attribute": _put("attrs", {"__globals__": {}}),
    "bad_name": _put("names", {"__name__": 5}),
    "unknown_name_field": _put("names", {"__class__": "x"}),
    "body_not_an_object": lambda d: d["locals"].__setitem__("get", {"$closure": "get"}),
    "closure_in_an_exception_arg": lambda d: d["locals"].__setitem__(
        "k", {"$exc": {"type": "builtins:ValueError", "args": [{"$closure": {"def": "x"}}]}}
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_closure_is_a_checkpoint_error(
    mod: types.ModuleType, case: str, stopped_at: Callable[..., tuple[resumable.Runtime, str]]
) -> None:
    rt, run_id = stopped_at(mod.holds, 1, 3)
    document = checkpoint_tree(rt, run_id)
    HOSTILE[case](document)
    with_checkpoint(rt, run_id, document)
    with pytest.raises(CheckpointError) as info:
        rt.run(mod.holds, 3, run_id=run_id)
    assert str(info.value).startswith(f"run {run_id!r}: ")
    assert rt.status(run_id) == BLOCKED


def test_a_changed_definition_is_a_version_mismatch(
    mod: types.ModuleType, stopped_at: Callable[..., tuple[resumable.Runtime, str]]
) -> None:
    rt, run_id = stopped_at(mod.holds, 1, 3)
    document = checkpoint_tree(rt, run_id)
    document["locals"]["get"]["$closure"]["fp"] = "000000000000"
    with_checkpoint(rt, run_id, document)
    with pytest.raises(VersionMismatch) as info:
        rt.run(mod.holds, 3, run_id=run_id)
    assert "the closure holds.<locals>.get" in str(info.value)
    assert "changed" in str(info.value)
    assert rt.status(run_id) == BLOCKED


def test_a_closure_outside_a_checkpoint_is_refused(mod: types.ModuleType) -> None:
    # In arguments or a result, a closure can only be hostile.
    from resumable.codec import decode

    data = seal(orjson.dumps({"v": 3, "plain": False, "value": {"$closure": {"def": "f"}}}))
    with pytest.raises(CheckpointError, match="outside the locals of a checkpoint"):
        decode(data)


_JUNK: list[Any] = [None, 1, -1, 2**62, "x", "", [], {}, [1, 2, 3], {"$tuple": []}]
_JUNK += [{"$ref": 0}, {"$closure": {}}, {"$dict": [[1, 2]]}, {"k": {"$closure": "x"}}]


def _replacements(tree: Any) -> Iterator[Any]:
    """`tree` with one member of a `$closure` body (or the body) replaced by junk,
    or a subtree wrapped in a `$closure` tag."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            for junk in _JUNK if k != "$closure" else [*_JUNK, {**v, "fp": None}]:
                yield {**tree, k: junk}
            for inner in _replacements(v):
                yield {**tree, k: inner}
        yield {"$closure": tree}
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            for inner in _replacements(v):
                yield [*tree[:i], inner, *tree[i + 1 :]]


def test_resealed_junk_in_a_closure_is_refused_or_decodes(
    mod: types.ModuleType, stopped_at: Callable[..., tuple[resumable.Runtime, str]]
) -> None:
    """Any member of a stored closure replaced by junk, the document sealed
    again: CheckpointError (or a value: junk where junk is allowed), never
    another exception."""
    rt, run_id = stopped_at(mod.holds, 1, 3)
    document = checkpoint_tree(rt, run_id)
    document.pop("seal")
    machine = mod.holds.machine()
    count = 0
    for local in _replacements(document["locals"]["get"]):
        mutant = {**document, "locals": {**document["locals"], "get": local}}
        data = seal(orjson.dumps(mutant))
        with contextlib.suppress(CheckpointError):
            decode_checkpoint(data, machine)
        count += 1
    assert count > 100
