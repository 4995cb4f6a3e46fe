"""Decorated methods, and function values held across awaits, on real runtimes
(memory, SQLite, PostgreSQL; processes on SQLite and PostgreSQL).

- `rt.run(obj.method, ...)`, `rt.run(Cls.cmethod, ...)` and static methods,
  with `@staticmethod`/`@classmethod` above and below `@resumable.function`;
  `obj.method.dispatch(...)`; natively the original method runs untouched;
- a method awaited inside a run is a child run with `self` (or `cls`) among
  its arguments, through the codec: it works on a decoded copy;
- function values (a decorated function, a module-level function, a class, a
  built-in function, bound methods) held in locals across an await are
  restored after a real crash (SIGKILL in a subprocess) and resumed in a new
  process;
- hostile rows naming callables outside the allowlist in their place are
  refused (CheckpointError, the run blocked) and nothing they name is called.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import os
import re
import sqlite3
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

import resumable
from resumable import CheckpointError, SerializationError
from resumable.codec import decode, encode, seal
from resumable.function import BoundFunction
from resumable.store import RunRecord
from resumable_compiler.build import compile_file
from tests.compiled import compile_and_import
from tests.procs import clean_env, python
from tests.stores import KINDS, LASTING, store_url

MODULE = "method_jobs"

SOURCE = '''
"""Functions for tests/test_methods.py (compiled in a temporary folder)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal

import resumable

ONCE = resumable.Retry(max_attempts=1)
#: What ran, in this process.
LOG: list[str] = []


async def crash_point(tag: str) -> None:
    """A plain awaitable: SIGKILL here when $CRASH_AT is `tag` (and its marker
    file does not exist yet, so the run crashes once)."""
    marker = os.environ.get("CRASH_MARKER", "")
    if os.environ.get("CRASH_AT") == tag and marker and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(tag)
        os.kill(os.getpid(), signal.SIGKILL)
    LOG.append(tag)
    await asyncio.sleep(0)


def fee(amount):
    return amount // 10


@dataclasses.dataclass
class Cart:
    items: list

    def total(self):
        return sum(self.items)

    @resumable.function(retry=ONCE)
    async def checkout(self, tip):
        await crash_point("checkout")
        self.items.append(tip)  # changes the run's own copy of the cart
        return self.total()

    @resumable.function(retry=ONCE)
    async def checkout_twice(self, tip):
        first = await self.checkout(tip)  # a child run: self goes through the codec
        await crash_point("checkout_twice")
        return first, await self.checkout(tip), self.items

    @classmethod
    @resumable.function(retry=ONCE)
    async def open_above(cls, *items):
        await crash_point("open_above")
        return cls(list(items))

    @resumable.function(retry=ONCE)
    @classmethod
    async def open_below(cls, *items):
        await crash_point("open_below")
        return cls(list(items))

    @staticmethod
    @resumable.function(retry=ONCE)
    async def tax_above(amount):
        await crash_point("tax_above")
        return amount // 5

    @resumable.function(retry=ONCE)
    @staticmethod
    async def tax_below(amount):
        await crash_point("tax_below")
        return amount // 4


class Opaque:
    """Not a dataclass, no codec: cannot be stored."""

    @resumable.function(retry=ONCE)
    async def run(self):
        return 1


@resumable.function(retry=ONCE)
async def order_apples(n):
    await crash_point("apples")
    return f"apples {n}"


@resumable.function(retry=ONCE)
async def order_bananas(n):
    return f"bananas {n}"


@resumable.function(retry=ONCE)
async def holds(n, cheap):
    cart = Cart([n, 2 * n])
    order = order_apples if cheap else order_bananas  # a decorated function
    by_name = fee  # a module-level function
    kind = Cart  # a class
    size = len  # a built-in function
    total = cart.total  # a bound method
    pay = cart.checkout  # a decorated method, bound
    opener = Cart.open_above  # a classmethod, bound to its class
    await crash_point("holds")
    return [
        await order(n),
        by_name(100 * n),
        kind([n]).total(),
        size([0] * n),
        total(),
        await pay(1),
        (await opener(n)).items,
        total.__self__ is cart,
    ]


def shadowed(n):
    return n


SHADOWED = shadowed


def shadowed(n):  # noqa: F811  (the name now finds another function than SHADOWED)
    return -n


@resumable.function(retry=ONCE)
async def holds_a_shadowed_function():
    f = SHADOWED
    await crash_point("shadowed")
    return f(1)


@resumable.function(retry=ONCE)
async def awaits_a_method():
    cart = Cart([1, 2])
    total = await cart.checkout(3)
    return total, cart.items  # the child changed its own copy, not this one
'''

RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import resumable
import method_jobs as jobs
rt = resumable.Runtime(sys.argv[2])
target = eval(sys.argv[3], {"jobs": jobs})  # a bound method or function of jobs
try:
    value = rt.run(target, *json.loads(sys.argv[4]), run_id=sys.argv[5])
    print(json.dumps({"result": repr(value), "log": jobs.LOG}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e), "log": jobs.LOG}))
"""


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("methods")
    yield compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    sys.modules.pop(MODULE, None)


@pytest.fixture(autouse=True)
def in_project(jobs: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs module is one of the project's (its folder is the working
    directory), so its functions and classes may be stored by name."""
    monkeypatch.chdir(Path(jobs.__file__).parent)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


@pytest.fixture
def rt(url: str) -> Iterator[resumable.Runtime]:
    runtime = resumable.Runtime(url)
    yield runtime
    runtime.close()


# ------------------------------------------------------------------ running methods


def test_a_bound_method_is_run_with_its_object_first(jobs: ModuleType, rt: Any) -> None:
    cart = jobs.Cart([1, 2])
    method = cart.checkout
    assert isinstance(method, BoundFunction) and method.__self__ is cart
    assert method.__func__ is jobs.Cart.__dict__["checkout"] and method == cart.checkout
    assert method.function_id == f"{MODULE}:Cart.checkout"
    assert rt.run(method, 4, run_id="m1") == 7
    record = rt.get("m1")
    assert record.function == f"{MODULE}:Cart.checkout"
    args = decode(record.args)
    assert list(args) == ["self", "tip"] and args["self"] == jobs.Cart([1, 2]) and args["tip"] == 4
    assert cart.items == [1, 2]  # the run appended to its decoded copy
    # The unbound function with the object passed explicitly is the same run.
    assert rt.run(jobs.Cart.checkout, jobs.Cart([1, 2]), 4, run_id="m2") == 7


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("open_above", [1, 2]),
        ("open_below", [1, 2]),
    ],
)
def test_a_classmethod_in_either_order_is_bound_to_its_class(
    jobs: ModuleType, rt: Any, name: str, expected: list[int]
) -> None:
    method = getattr(jobs.Cart, name)
    assert method.__self__ is jobs.Cart
    assert getattr(jobs.Cart([]), name).__self__ is jobs.Cart  # through an instance too
    result = rt.run(method, 1, 2, run_id=name)
    assert type(result) is jobs.Cart and result.items == expected
    assert decode(rt.get(name).args)["cls"] is jobs.Cart  # stored by name
    assert asyncio.run(method(1, 2)) == jobs.Cart([1, 2])  # natively: the original


@pytest.mark.parametrize(("name", "divisor"), [("tax_above", 5), ("tax_below", 4)])
def test_a_staticmethod_in_either_order_takes_no_object(
    jobs: ModuleType, rt: Any, name: str, divisor: int
) -> None:
    assert getattr(jobs.Cart, name) is getattr(jobs.Cart([]), name)  # not bound
    assert rt.run(getattr(jobs.Cart, name), 100, run_id=name) == 100 // divisor
    assert rt.run(getattr(jobs.Cart([]), name), 40, run_id=name + "-2") == 40 // divisor
    assert list(decode(rt.get(name).args)) == ["amount"]


def test_dispatch_of_a_bound_method_enqueues_it_with_its_object(
    jobs: ModuleType, lasting_url: str
) -> None:
    url = lasting_url
    resumable.configure(store=url)
    try:
        run_id = jobs.Cart([5]).checkout.dispatch(1, run_id="d1")
        opened = jobs.Cart.open_below.dispatch(3, run_id="d2")
        taxed = jobs.Cart.tax_above.dispatch(50, run_id="d3")
        above = jobs.Cart.open_above.dispatch(4, run_id="d4")
        with resumable.Runtime(url) as rt:
            assert (run_id, opened, taxed, above) == ("d1", "d2", "d3", "d4")
            assert rt.status("d1") == "pending"
            assert decode(rt.get("d1").args)["self"] == jobs.Cart([5])
            # Driving the stored runs: the arguments are the stored ones.
            assert rt.run(jobs.Cart.checkout, run_id="d1") == 6
            assert rt.run(jobs.Cart.open_below, run_id="d2") == jobs.Cart([3])
            assert rt.run(jobs.Cart.tax_above, run_id="d3") == 10
            assert decode(rt.get("d4").args) == {"cls": jobs.Cart, "items": (4,)}
            assert rt.run(jobs.Cart.open_above, run_id="d4") == jobs.Cart([4])
    finally:
        resumable.configure(store=None)


def test_natively_the_original_method_runs_and_changes_the_object(jobs: ModuleType) -> None:
    cart = jobs.Cart([1])
    assert asyncio.run(cart.checkout(2)) == 3
    assert cart.items == [1, 2]  # natively the very object
    assert asyncio.run(cart.checkout_twice(1)) == (4, 5, [1, 2, 1, 1])
    assert inspect.iscoroutinefunction(cart.checkout)
    assert str(inspect.signature(cart.checkout)) == "(tip)"
    assert cart.checkout.__wrapped__.__self__ is cart
    assert cart.checkout.__wrapped__.__func__ is jobs.Cart.__dict__["checkout"].__wrapped__


def test_a_method_awaited_in_a_run_is_a_child_run_on_a_copy_of_self(
    jobs: ModuleType, rt: Any
) -> None:
    # Natively the child appends to the caller's cart; compiled, to its copy.
    assert asyncio.run(jobs.awaits_a_method()) == (6, [1, 2, 3])
    assert rt.run(jobs.awaits_a_method, run_id="parent") == (6, [1, 2])
    [summary] = rt.store.list_runs(parent="parent")
    child = rt.get(summary.run_id)
    assert child.function == f"{MODULE}:Cart.checkout" and child.status == "completed"
    assert decode(child.args) == {"self": jobs.Cart([1, 2]), "tip": 3}
    # A method awaiting its own methods: each child gets the object as it was passed.
    assert rt.run(jobs.Cart([1]).checkout_twice, 1, run_id="twice") == (2, 2, [1])


def test_a_method_whose_object_cannot_be_stored_is_refused(jobs: ModuleType, rt: Any) -> None:
    with pytest.raises(SerializationError) as info:
        rt.run(jobs.Opaque().run, run_id="opaque")
    message = str(info.value)
    assert "cannot start Opaque.run: argument `self` holds a `method_jobs.Opaque`" in message
    assert asyncio.run(jobs.Opaque().run()) == 1  # natively fine


def test_function_values_are_restored_across_a_checkpoint(jobs: ModuleType, rt: Any) -> None:
    native = asyncio.run(jobs.holds(2, True))
    assert native == ["apples 2", 20, 2, 2, 6, 7, [2], True]
    assert rt.run(jobs.holds, 2, True, run_id="h") == native
    assert rt.run(jobs.holds, 3, False, run_id="h2") == asyncio.run(jobs.holds(3, False))


def test_a_function_its_name_no_longer_finds_is_refused_naming_the_variable(
    jobs: ModuleType, rt: Any
) -> None:
    """Stored by name only when `module.qualname` is the very object."""
    with pytest.raises(SerializationError) as info:
        rt.run(jobs.holds_a_shadowed_function, run_id="shadowed")
    message = str(info.value)
    assert "variable `f` holds a `function`" in message
    assert f"{MODULE}:shadowed does not name it (was it rebound or replaced?)" in message
    assert rt.status("shadowed") == "blocked"


def test_bound_methods_round_trip_as_their_object_and_name(jobs: ModuleType) -> None:
    cart = jobs.Cart([1, 2])
    cart.callback = cart.total  # the object holds a method of itself
    out = decode(encode([cart, cart.checkout, jobs.Cart.open_above, "-".join, [].append]))
    assert out[0] == cart and out[0].callback.__self__ is out[0] and out[0].callback() == 3
    assert out[1] == out[0].checkout and out[1].__self__ is out[0]  # the same decoded cart
    assert out[2] == jobs.Cart.open_above and out[3](["a", "b"]) == "a-b"
    out[4](1)
    assert out[4].__self__ == [1]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (lambda: Path(".").exists, "its function Path.exists is defined in pathlib"),
        (
            lambda: collections.Counter("ab").most_common,
            "its function Counter.most_common is defined in collections",
        ),
        (lambda: jobs_module().Cart([]).__repr__, "__repr__ is a special method"),
        (lambda: types.SimpleNamespace(f=len).f, None),  # a built-in function: allowed
    ],
)
def test_bound_methods_outside_the_allowlist_are_refused_when_written(
    value: Any, why: str | None
) -> None:
    held = value()
    if why is None:
        assert decode(encode(held)) is held
        return
    with pytest.raises(SerializationError, match="bound method that may not be stored") as info:
        encode(held)
    assert why in str(info.value)


def jobs_module() -> ModuleType:
    return sys.modules[MODULE]


# ------------------------------------------------------------------ real crashes


class Process:
    """Runs `rt.run` of a jobs target in a subprocess on the store at `url`
    (a SQLite file at `db` unless given)."""

    def __init__(self, folder: Path, db: Path, url: str | None = None) -> None:
        self.folder, self.db = folder, db
        self.url = url or f"sqlite:///{db}"

    def run(self, target: str, args: list[Any], run_id: str, crash_at: str = "") -> Any:
        env = clean_env(CRASH_AT=crash_at, CRASH_MARKER=str(self.folder / f"{run_id}.crashed"))
        proc = python(
            RUNNER, str(self.folder), self.url, target, json.dumps(args), run_id,
            cwd=self.folder, env=env,
        )  # fmt: skip
        if proc.returncode == -9:
            return None  # killed where it was told to
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def row(self, run_id: str) -> RunRecord:
        with resumable.Runtime(self.url) as rt:
            record = rt.store.get(run_id)
        assert record is not None, run_id
        return record

    def set_checkpoint(self, run_id: str, blob: bytes) -> None:
        """Tamper with the row in the SQLite file, as an attacker would."""
        conn = sqlite3.connect(self.db)
        try:
            conn.execute("UPDATE runs SET checkpoint = ? WHERE run_id = ?", (blob, run_id))
            conn.commit()
        finally:
            conn.close()


def app(jobs: ModuleType, tmp_path: Path) -> Path:
    """A folder of its own with the jobs module, compiled."""
    folder = tmp_path / "app"
    folder.mkdir()
    path = Path(jobs.__file__)
    (folder / path.name).write_text(path.read_text())
    result = compile_file(str(folder / path.name))
    assert not result.errors, result.errors
    return folder


@pytest.fixture
def process(jobs: ModuleType, tmp_path: Path) -> Process:
    """Processes on a SQLite file. The SIGKILL cases below vary the values
    the codec stores, not the store, and on PostgreSQL each would wait out
    its killed process's lease; the hostile rows tamper with the file."""
    return Process(app(jobs, tmp_path), tmp_path / "state.db")


@pytest.fixture
def any_process(jobs: ModuleType, tmp_path: Path, lasting_url: str) -> Process:
    """Processes on each store processes share (SQLite, PostgreSQL)."""
    return Process(app(jobs, tmp_path), tmp_path / "state.db", lasting_url)


def test_function_values_survive_a_sigkill_and_resume_in_a_new_process(
    jobs: ModuleType, any_process: Process
) -> None:
    process = any_process
    assert process.run("jobs.holds", [2, True], "crashed", crash_at="holds") is None
    row = process.row("crashed")
    assert row.status == "running" and row.seq == 1
    assert row.checkpoint is not None
    stored = orjson.loads(row.checkpoint)["locals"]
    assert stored["order"] == {"$function": f"{MODULE}:order_apples"}
    assert stored["by_name"] == {"$function": f"{MODULE}:fee"}
    assert stored["kind"] == {"$class": f"{MODULE}:Cart"}
    assert stored["size"] == {"$function": "builtins:len"}
    assert stored["total"]["$method"][1] == "total"
    assert stored["pay"]["$method"][1] == "checkout"
    assert stored["opener"] == {"$method": [{"$class": f"{MODULE}:Cart"}, "open_above"]}
    resumed = process.run("jobs.holds", [2, True], "crashed")
    assert resumed["result"] == repr(asyncio.run(jobs.holds(2, True)))
    # Resumed at the await of crash_point, which runs again; nothing before it does.
    assert resumed["log"] == ["holds", "apples", "checkout", "open_above"]


@pytest.mark.parametrize(
    ("target", "args", "crash_at", "expected", "log"),
    [
        ("jobs.Cart([1, 2]).checkout", [3], "checkout", "6", ["checkout"]),
        # killed between its two child runs: the first is not run again
        (
            "jobs.Cart([1]).checkout_twice", [1], "checkout_twice", "(2, 2, [1])",
            ["checkout_twice", "checkout"],
        ),
        ("jobs.Cart.open_above", [1, 2], "open_above", "Cart(items=[1, 2])", ["open_above"]),
        ("jobs.Cart([]).open_below", [4], "open_below", "Cart(items=[4])", ["open_below"]),
        ("jobs.Cart.tax_above", [50], "tax_above", "10", ["tax_above"]),
        ("jobs.Cart.tax_below", [40], "tax_below", "10", ["tax_below"]),
    ],
)  # fmt: skip
def test_methods_resume_after_a_sigkill(
    process: Process, target: str, args: list[Any], crash_at: str, expected: str, log: list[str]
) -> None:
    run_id = crash_at
    assert process.run(target, args, run_id, crash_at=crash_at) is None
    assert process.row(run_id).status == "running"
    assert process.run(target, args, run_id) == {"result": expected, "log": log}


# ------------------------------------------------------------------ hostile rows

#: What a tampered checkpoint puts in place of a stored callable; each would
#: do something visible if it were called (a file created, the process gone).
HOSTILE = {
    "os-system": ("by_name", {"$function": "os:system"}, "'os:system' as a function: refused"),
    "os-abort": ("by_name", {"$function": "os:abort"}, "'os:abort' as a function: refused"),
    "builtins-eval": ("size", {"$function": "builtins:eval"}, "'builtins:eval' as a function"),
    "builtins-open": ("size", {"$function": "builtins:open"}, "'builtins:open' as a function"),
    "popen-class": ("kind", {"$class": "subprocess:Popen"}, "'subprocess:Popen' as a class"),
    "path-touch": (
        "total",
        {"$method": [{"$path": ["PosixPath", "{marker}"]}, "touch"]},
        "the method 'touch' of a PosixPath: refused",
    ),
    "dunder-method": (
        "total",
        {"$method": [{"$class": f"{MODULE}:Cart"}, "__subclasses__"]},
        "'__subclasses__' of a type: refused",
    ),
    "function-dispatch": (
        "pay",
        {"$method": [{"$function": f"{MODULE}:order_apples"}, "dispatch"]},
        "the method 'dispatch' of a Function: refused",
    ),
    "method-of-popen": (
        "opener",
        {"$method": [{"$class": "subprocess:Popen"}, "open"]},
        "'subprocess:Popen' as a class: refused",
    ),
    "super-of-popen": (
        "kind",
        {"$super": [{"$class": "subprocess:Popen"}, 1]},
        "'subprocess:Popen' as a class: refused",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_row_naming_a_callable_outside_the_allowlist_is_refused(
    process: Process, case: str
) -> None:
    run_id = f"hostile-{case}"
    marker = process.folder / f"{case}.touched"
    assert process.run("jobs.holds", [2, True], run_id, crash_at="holds") is None
    variable, replacement, refusal = HOSTILE[case]
    blob = process.row(run_id).checkpoint
    assert blob is not None
    document = orjson.loads(blob[: blob.rindex(b',"seal":')] + b"}")
    text = json.dumps(replacement).replace("{marker}", str(marker))
    document["locals"][variable] = json.loads(text)
    process.set_checkpoint(run_id, seal(orjson.dumps(document)))

    outcome = process.run("jobs.holds", [2, True], run_id)
    assert outcome["error"] == "CheckpointError", outcome
    assert refusal in outcome["message"] and run_id in outcome["message"], outcome["message"]
    assert outcome["log"] == []  # nothing of the run ran
    assert not marker.exists()
    row = process.row(run_id)
    assert row.status == "blocked" and row.reason is not None and refusal in row.reason


def test_a_hostile_row_is_refused_in_process_too(jobs: ModuleType) -> None:
    """The same refusals by the codec alone, for a value inside a list."""
    for _, replacement, refusal in HOSTILE.values():
        tree = json.loads(json.dumps(replacement).replace("{marker}", os.devnull))
        document = seal(orjson.dumps({"v": 3, "plain": False, "value": [tree]}))
        with pytest.raises(CheckpointError, match=re.escape(refusal)):
            decode(document)
