"""`with`, `async with` and `async for` at run time: what cannot be stored,
the retry rule inside a block, the codecs of contextlib's managers, and the
implicit awaits' ordinals and fingerprints.

Equivalence with the originals (crash and resume at every checkpoint,
failures injected at every awaited call) is checked by the cases of
tests/lowering/contexts.test; kills of real processes inside an `async
with` by tests/test_crash.py (`session`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import libcst as cst
import pytest

from resumable import CheckpointError, Runtime, SerializationError, VersionMismatch
from resumable.codec import decode, encode, seal
from resumable.testing import run_compiled, run_original
from resumable_compiler.analyze import analyze
from resumable_compiler.check import check
from resumable_compiler.fingerprint import site_fingerprints
from resumable_compiler.ir import ImplicitAwait
from resumable_compiler.liveness import liveness
from resumable_compiler.lower import lower
from resumable_compiler.parse import parse
from tests.compiled import compile_and_import
from tests.test_versioning import Deployment

MODULE = "contexts_cases"

SOURCE = '''
"""Functions for tests/test_contexts.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

import resumable

CALLS: list[str] = []
FAIL: dict[str, int] = {}
THREE = resumable.Retry(max_attempts=3, initial_delay=0, jitter=0)


class Flaky(Exception):
    """A transient failure: retryable."""


async def op(name: str) -> str:
    CALLS.append(name)
    if FAIL.get(name, 0) > 0:
        FAIL[name] -= 1
        raise Flaky(name)
    await asyncio.sleep(0)
    return name


class Client:
    """A plain class (not a dataclass): it cannot be stored."""

    async def __aenter__(self) -> Client:
        CALLS.append("client enter")
        return self

    async def __aexit__(self, *exc: object) -> None:
        CALLS.append("client exit")

    async def get(self, url: str) -> str:
        return url


@resumable.function
async def unstorable_manager(url: str) -> str:
    async with Client() as c:
        return await c.get(url)


class Plain:
    def __enter__(self) -> Plain:
        CALLS.append("plain enter")
        return self

    def __exit__(self, *exc: object) -> None:
        CALLS.append("plain exit")


@resumable.function
async def unstorable_sync_manager() -> None:
    with Plain():
        await op("inside")


@resumable.function
async def suppress_unstorable_class() -> None:
    with contextlib.suppress(json.JSONDecodeError):
        await op("inside")


async def agen(n: int):
    for i in range(n):
        CALLS.append(f"agen {i}")
        yield i


@resumable.function
async def over_async_generator(n: int) -> list[str]:
    out = []
    async for x in agen(n):
        out.append(await op(f"item {x}"))
    return out


@dataclass
class Holder:
    lock: object

    def __aiter__(self) -> Holder:
        return self

    async def __anext__(self) -> int:
        CALLS.append("holder anext")
        raise StopAsyncIteration


@resumable.function
async def over_unstorable_iterator() -> None:
    async for x in Holder(asyncio.Lock()):
        pass


@dataclass
class Count:
    n: int

    def __aiter__(self) -> Count:
        return self

    async def __anext__(self) -> int:
        CALLS.append(f"anext {self.n}")
        if self.n == 0:
            raise StopAsyncIteration
        self.n -= 1
        return self.n


@resumable.function(retry=THREE)
async def count_down(n: int) -> list[int]:
    out = []
    async for x in Count(n):
        out.append(x)
    return out


@dataclass
class Session:
    async def __aenter__(self) -> Session:
        await op("aenter")
        return self

    async def __aexit__(self, typ: type | None, exc: object, tb: object) -> bool:
        CALLS.append(f"aexit {typ and typ.__name__} traceback={tb is not None}")
        return False


@resumable.function(retry=THREE)
async def retried_in_block() -> str:
    async with Session():
        return await op("body")


@dataclass
class SyncSession:
    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, typ: type | None, exc: object, tb: object) -> None:
        CALLS.append(f"exit {typ and typ.__name__} traceback={tb is not None}")


@resumable.function(retry=THREE)
async def retried_in_sync_block() -> str:
    with SyncSession():
        return await op("body")


@dataclass
class Reraise:
    async def __aenter__(self) -> Reraise:
        return self

    async def __aexit__(self, typ: type | None, exc: BaseException | None, tb: object) -> None:
        CALLS.append("aexit")
        if exc is not None:
            raise exc


@resumable.function(retry=THREE)
async def reraised_by_aexit() -> None:
    async with Reraise():
        await op("body")


@resumable.function
async def raises_in_block() -> None:
    async with Session():
        raise KeyError("body")


@resumable.function
async def with_contextlib(x: int) -> int:
    with contextlib.suppress(KeyError):
        await op("a")
        raise KeyError(x)
    with contextlib.nullcontext(x) as y:
        return y + len(await op("b"))


@resumable.function
async def sites() -> str:
    a = await op("a")
    async with Session() as s, Session():
        b = await op("b")
    async for x in Count(2):
        await op("c")
    return a + b
'''


def line_of(snippet: str) -> int:
    """The line of SOURCE (as written to the module) holding `snippet` (once)."""
    hits = [i for i, text in enumerate(SOURCE.splitlines(), 1) if snippet in text]
    assert len(hits) == 1, (snippet, hits)
    return hits[0]


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("contexts")
    yield compile_and_import(folder / f"{MODULE}.py", MODULE, SOURCE)
    sys.modules.pop(MODULE, None)


@pytest.fixture
def rt(cases: ModuleType) -> Iterator[Runtime]:
    cases.CALLS.clear()
    cases.FAIL.clear()
    runtime = Runtime("memory://")
    yield runtime
    runtime.close()


# -- what cannot be stored ------------------------------------------------------------


def test_an_unstorable_manager_names_the_with_and_the_fix(cases: ModuleType, rt: Runtime) -> None:
    line = line_of("async with Client() as c:")
    with pytest.raises(SerializationError) as info:
        rt.run(cases.unstorable_manager, "https://example.com")
    message = str(info.value)
    assert f"the manager of the `with` on line {line} holds a `{MODULE}.Client`" in message
    assert f"{MODULE}.py:{line}" in message  # the checkpoint of its __aenter__
    assert "helper coroutine" in message and "dataclass" in message
    # Refused at the checkpoint before __aenter__: nothing of the manager ran.
    assert cases.CALLS == []


def test_an_unstorable_manager_of_a_with_is_refused_inside_the_block(
    cases: ModuleType, rt: Runtime
) -> None:
    line = line_of("with Plain():")
    with pytest.raises(SerializationError) as info:
        rt.run(cases.unstorable_sync_manager)
    message = str(info.value)
    assert f"the manager of the `with` on line {line}" in message
    assert f"at the await on line {line + 1}" in message
    # __enter__ ran, the block stopped at its first checkpoint, __exit__ never runs.
    assert cases.CALLS == ["plain enter"]


def test_suppress_keeps_the_allowlist_of_stored_classes(cases: ModuleType, rt: Runtime) -> None:
    with pytest.raises(SerializationError) as info:
        rt.run(cases.suppress_unstorable_class)
    message = str(info.value)
    assert "the manager of the `with`" in message and "contextlib.suppress" in message
    assert "JSONDecodeError" in message


def test_an_async_generator_is_refused_at_loop_entry(cases: ModuleType, rt: Runtime) -> None:
    line = line_of("async for x in agen(n):")
    assert run_original(cases.over_async_generator, 2).value == ["item 0", "item 1"]
    cases.CALLS.clear()
    with pytest.raises(SerializationError) as info:
        rt.run(cases.over_async_generator, 2)
    message = str(info.value)
    assert "the async for-loop at " in message
    assert f"{MODULE}.py:{line} iterates a `async_generator`" in message
    assert "collect the items in one step" in message
    assert cases.CALLS == []  # before any iteration


def test_an_iterator_holding_something_unstorable_is_refused_at_loop_entry(
    cases: ModuleType, rt: Runtime
) -> None:
    with pytest.raises(SerializationError) as info:
        rt.run(cases.over_unstorable_iterator)
    message = str(info.value)
    assert f"iterates a `{MODULE}.Holder`" in message
    assert "asyncio.locks.Lock" in message and "`.lock`" in message
    assert cases.CALLS == []


# -- the retry rule ---------------------------------------------------------------------


def test_the_stop_async_iteration_that_ends_a_loop_is_never_retried(
    cases: ModuleType, rt: Runtime
) -> None:
    assert rt.run(cases.count_down, 3, run_id="count") == [2, 1, 0]
    assert cases.CALLS == ["anext 3", "anext 2", "anext 1", "anext 0"]
    assert rt.store.get("count").attempts == 0


def test_retries_inside_a_block_finish_before_aexit_sees_the_exception(
    cases: ModuleType, rt: Runtime
) -> None:
    cases.FAIL["body"] = 2  # two failed attempts, then the step succeeds
    assert rt.run(cases.retried_in_block) == "body"
    assert cases.CALLS == ["aenter", "body", "body", "body", "aexit None traceback=False"]
    cases.CALLS.clear()
    cases.FAIL["body"] = 5  # every attempt fails: __aexit__ sees the last failure, once
    with pytest.raises(cases.Flaky):
        rt.run(cases.retried_in_block)
    assert cases.CALLS == ["aenter", "body", "body", "body", "aexit Flaky traceback=False"]


def test_an_exception_aexit_raises_again_is_not_retried(cases: ModuleType, rt: Runtime) -> None:
    # The body's failure was retried already; __aexit__ raising it again
    # (rather than returning False) does not make its own step retried.
    cases.FAIL["body"] = 5
    with pytest.raises(cases.Flaky):
        rt.run(cases.reraised_by_aexit)
    assert cases.CALLS == ["body", "body", "body", "aexit"]


def test_retries_inside_a_with_finish_before_exit_sees_the_exception(
    cases: ModuleType, rt: Runtime
) -> None:
    cases.FAIL["body"] = 5
    with pytest.raises(cases.Flaky):
        rt.run(cases.retried_in_sync_block)
    # __exit__ runs in the step that raised, with the live traceback.
    assert cases.CALLS == ["body", "body", "body", "exit Flaky traceback=True"]


def test_the_traceback_given_to_aexit_does_not_cross_its_checkpoint(cases: ModuleType) -> None:
    # The exception reaches __aexit__ through the checkpoint of that await:
    # its traceback object is not stored (its text is), so `tb` is None.
    cases.CALLS.clear()
    assert isinstance(run_original(cases.raises_in_block).error, KeyError)
    assert cases.CALLS[-1] == "aexit KeyError traceback=True"
    cases.CALLS.clear()
    error = run_compiled(cases.raises_in_block).error
    assert isinstance(error, KeyError) and error.args == ("body",)
    assert cases.CALLS[-1] == "aexit KeyError traceback=False"


def test_contextlib_managers_work_across_checkpoints(cases: ModuleType, rt: Runtime) -> None:
    assert rt.run(cases.with_contextlib, 4) == 4 + len("b")
    assert run_compiled(cases.with_contextlib, 5).value == 5 + len("b")


# -- the codecs of contextlib's managers -------------------------------------------------


def test_suppress_and_nullcontext_round_trip() -> None:
    suppressed = decode(encode(contextlib.suppress(KeyError, (OSError, ValueError))))
    assert type(suppressed) is contextlib.suppress
    with suppressed:
        raise OSError("suppressed")
    with pytest.raises(TypeError), suppressed:
        raise TypeError("not suppressed")
    value = [1, 2]
    null = decode(encode(contextlib.nullcontext(value)))
    assert type(null) is contextlib.nullcontext
    with null as got:
        assert got == value


def test_stored_managers_share_identity_within_a_checkpoint() -> None:
    manager = contextlib.nullcontext([1])
    first, second = decode(encode([manager, manager]))
    assert first is second


@pytest.mark.parametrize(
    "body",
    [
        '{"$contextlib.suppress": [1]}',
        '{"$contextlib.suppress": [{"$class": "os:system"}]}',
        '{"$contextlib.suppress": [{"$class": "subprocess:Popen"}]}',
        '{"$contextlib.nullcontext": []}',
        '{"$contextlib.nullcontext": [1, 2]}',
        '{"$contextlib.nullcontext": {"enter_result": 1}}',
    ],
)
def test_hostile_manager_documents_are_refused(body: str) -> None:
    document = f'{{"v":3,"plain":false,"value":{body}}}'.encode()
    with pytest.raises(CheckpointError):
        decode(seal(document))


# -- implicit awaits: ordinals and fingerprints ----------------------------------------


def _lowered(source: str) -> object:
    parsed = parse(f"{MODULE}.py", source)
    [fn] = [f for f in parsed.functions if f.qualname == "sites"]
    return check(liveness(lower(analyze(parsed, fn))))


def _operands(lowered: object) -> list[str]:
    """The operand of each site's await state, in ordinal order."""
    empty = cst.Module([])
    by_site = {}
    for state in lowered.states:  # type: ignore[attr-defined]
        if state.is_await:
            [line] = state.body
            by_site[state.site] = empty.code_for_node(line.body[0].value)
    return [by_site[k] for k in sorted(by_site)]


def test_implicit_awaits_are_numbered_in_source_order() -> None:
    lowered = _lowered(SOURCE)
    assert _operands(lowered) == [
        'op("a")',
        "m.aenter(L._w1)",  # Session() as s
        "m.aenter(L._w2)",  # Session()
        'op("b")',
        "m.aexit(L._w2, L._f2)",  # the inner item exits first
        "m.aexit(L._w1, L._f1)",
        "m.anext(L._i1)",
        'op("c")',
    ]
    awaits = lowered.analysis.awaits  # type: ignore[attr-defined]
    assert [a.method if isinstance(a, ImplicitAwait) else "await" for a in awaits] == [
        "await", "__aenter__", "__aenter__", "await", "__aexit__", "__aexit__", "__anext__",
        "await",
    ]  # fmt: skip


def _prints(source: str) -> list[str]:
    lowered = _lowered(source)
    fn = lowered.analysis.function.node  # type: ignore[attr-defined]
    awaits = lowered.analysis.awaits  # type: ignore[attr-defined]
    return site_fingerprints(fn, [(a, ()) for a in awaits])


def test_a_change_in_the_block_changes_its_exits_not_its_entries() -> None:
    before = _prints(SOURCE)
    after = _prints(SOURCE.replace('b = await op("b")', 'b = await op("B")'))
    assert len(set(before)) == len(before)  # every site its own fingerprint
    assert before[:3] == after[:3]  # up to the entries
    assert all(x != y for x, y in zip(before[3:], after[3:], strict=True))


def test_an_implicit_await_differs_from_an_explicit_one_ending_at_the_same_place() -> None:
    source = SOURCE.replace("async with Session() as s, Session():", "async with await op('m'):")
    lowered = _lowered(source)
    assert _operands(lowered)[1:3] == ["op('m')", "m.aenter(L._w1)"]
    prints = _prints(source)
    assert prints[1] != prints[2]


def test_the_iterator_is_checked_before_the_first_checkpoint(cases: ModuleType) -> None:
    # Nothing but the checkpoint of __anext__ comes between loop entry and the
    # first item: the refusal is before any iteration and any await.
    outcome = run_compiled(cases.over_async_generator, 1)
    assert isinstance(outcome.error, SerializationError)
    assert outcome.checkpoints == 0


def test_the_docs_name_every_manager_codec() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "checkpoints.md").read_text()
    for tag in ("$contextlib.suppress", "$contextlib.nullcontext"):
        assert tag in docs


def test_an_async_comprehension_has_its_anext_site_for_its_lowering() -> None:
    # The analysis numbers an async comprehension's `__anext__` after its
    # iterable (contexts.start_async_loop / next_item lower it).
    source = SOURCE.replace(
        '    async for x in Count(2):\n        await op("c")\n',
        '    ys = [y async for y in Count(await op("n"))]\n',
    )
    parsed = parse(f"{MODULE}.py", source)
    [fn] = [f for f in parsed.functions if f.qualname == "sites"]
    analysis = analyze(parsed, fn)
    assert analysis.errors == ()
    kinds = [a.method if isinstance(a, ImplicitAwait) else "await" for a in analysis.awaits]
    assert kinds[-2:] == ["await", "__anext__"]
    last = analysis.awaits[-1]
    assert isinstance(last, ImplicitAwait) and isinstance(last.node, cst.CompFor)


# -- versioning: runs standing at an implicit await ----------------------------------------

FLOW = '''\
"""Versioning of async with (edited by tests/test_contexts.py)."""

from dataclasses import dataclass

import resumable
from tests.test_contexts import VERSIONING_STEPS as steps


async def tick(label, value=None):
    steps.append(label)
    return value


@dataclass
class Res:
    name: str

    async def __aenter__(self):
        await tick("enter " + self.name)
        return self.name

    async def __aexit__(self, *exc):
        await tick("exit " + self.name)


@resumable.function
async def flow(a):
    async with Res("r") as r:
        x = await tick("body", a + 1)
    return [r, x]
'''

#: What the deployments of FLOW did, whichever deployment's class a decoded
#: manager belongs to (it names the module that stored it).
VERSIONING_STEPS: list[str] = []


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path)
    yield d
    for name in d.names:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("k", "effects"),
    [(1, ["enter r", "body", "exit r"]), (2, ["body", "exit r"]), (3, ["exit r"])],
    ids=["at-aenter", "in-the-block", "at-aexit"],
)
def test_a_run_at_an_implicit_await_resumes_under_code_changed_after_it(
    deployment: Deployment, k: int, effects: list[str]
) -> None:
    old = deployment.deploy(FLOW)
    deployment.crashed_run(old, "flow", k, 4, run_id="r")
    new = deployment.deploy(FLOW.replace("return [r, x]", "return [r, x, 'new']"))
    VERSIONING_STEPS.clear()
    with deployment.runtime() as rt:
        assert rt.run(new.flow, run_id="r") == ["r", 5, "new"]
    assert effects == VERSIONING_STEPS


@pytest.mark.parametrize("k", [2, 3], ids=["in-the-block", "at-aexit"])
def test_a_run_inside_the_block_is_blocked_when_the_block_changed_before_it(
    deployment: Deployment, k: int
) -> None:
    old = deployment.deploy(FLOW)
    deployment.crashed_run(old, "flow", k, 4, run_id="r")
    new = deployment.deploy(FLOW.replace('async with Res("r")', 'async with Res("s")'))
    with deployment.runtime() as rt, pytest.raises(VersionMismatch):
        rt.run(new.flow, run_id="r")
