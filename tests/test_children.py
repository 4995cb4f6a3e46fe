"""Child runs, other awaitables and idempotency keys.

- awaiting a decorated function inside a run starts a child run with the id
  `<parent>/<seq>.<n>` (the same after a crash and resume), stored in the
  same store with its parent; once it completed its body never runs again
  and its stored result is returned;
- calls of decorated functions work inside `asyncio.gather` (also mixed
  with plain coroutines) and `asyncio.wait_for`;
- any other awaitable is one step, run again when the process dies before
  the next checkpoint commits (in-process and with SIGKILL);
- `resumable.idempotency_key()` is stable per run, await site and loop
  iteration (across a crash and a retry of the step), random natively;
- a task, future, coroutine or call created before a checkpoint and awaited
  after it is refused with a SerializationError that says what to do.

The functions under test are written to a temporary folder, compiled and
imported once per module. The oracle is the original coroutine under
asyncio (calling the function outside a run = native mode).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resumable
from resumable import CheckpointInfo, Runtime
from tests.compiled import compile_and_import
from tests.stores import KINDS, store_url

MODULE = "children_cases"

SOURCE = '''
"""Functions for tests/test_children.py."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import resumable

#: What ran, in order.
LOG: list[Any] = []
#: name -> how many more times `crash_point(name)` raises KeyboardInterrupt.
CRASH: dict[str, int] = {}
#: name -> how many more times `crash_point(name)` raises Flaky.
FAIL: dict[str, int] = {}
#: (tag, key) of every `charge` made.
KEYS: list[Any] = []

NO_WAIT = resumable.Retry(max_attempts=3, initial_delay=0.0, jitter=0.0)


class Flaky(Exception):
    pass


def crash_point(name: Any) -> None:
    """Stands for the process dying (KeyboardInterrupt) or a call failing (Flaky) here."""
    if CRASH.get(name):
        CRASH[name] -= 1
        raise KeyboardInterrupt(name)
    if FAIL.get(name):
        FAIL[name] -= 1
        raise Flaky(name)


def effect(tag: str) -> None:
    """A side effect written to $CHILDREN_EFFECTS (survives SIGKILL); the
    process is killed right after it, once, when $CHILDREN_KILL names it."""
    path = os.environ.get("CHILDREN_EFFECTS")
    if path is None:
        LOG.append(("effect", tag))
        return
    with open(path, "a") as f:
        f.write(tag + "\\n")
        f.flush()
        os.fsync(f.fileno())
    name = tag.split(":")[0]
    marker = f"{path}.killed-{name}"
    if name in os.environ.get("CHILDREN_KILL", "").split(",") and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


async def plain(value: Any) -> Any:
    LOG.append(("plain", value))
    await asyncio.sleep(0)
    return value


async def charge(tag: Any) -> str:
    """An external call made with an idempotency key."""
    key = resumable.idempotency_key()
    KEYS.append((tag, key))
    await asyncio.sleep(0)
    crash_point(tag)
    return key


@resumable.function
async def leaf(n: int) -> int:
    LOG.append(("leaf", n))
    got = await plain(n * 2)
    LOG.append(("leaf done", n))
    return got + 1


@resumable.function
async def slow_leaf(n: int) -> int:
    LOG.append(("slow_leaf", n))
    a = await plain(n)
    b = await plain(a + 1)
    c = await plain(b + 1)
    LOG.append(("slow_leaf done", n))
    return a + b + c


@resumable.function
async def parent(n: int) -> int:
    a = await leaf(n)
    crash_point("after-first-child")
    b = await leaf(a)
    return a + b


@resumable.function
async def looped(n: int) -> list[int]:
    out = []
    for i in range(n):
        out.append(await leaf(i))
        crash_point(("loop", i))
    return out


@resumable.function
async def gathered(n: int) -> list[Any]:
    got = await asyncio.gather(leaf(n), slower_leaf(n + 1))
    return list(got)


@resumable.function
async def slower_leaf(n: int) -> int:
    """Six checkpoints: a leaf started with it in a gather ends before its last."""
    LOG.append(("slower_leaf", n))
    total = 0
    for i in range(6):
        total += await plain(n + i)
    LOG.append(("slower_leaf done", n))
    return total


@resumable.function
async def mixed(n: int) -> list[Any]:
    got = await asyncio.gather(plain("a"), leaf(n), plain("b"), leaf(n + 1), slow_leaf(n))
    return list(got)


@resumable.function
async def gather_of_charge_and_child(n: int) -> list[Any]:
    got = await asyncio.gather(charge("gathered"), slow_leaf(n))
    return list(got)


@resumable.function
async def waited_for(n: int) -> list[Any]:
    a = await asyncio.wait_for(leaf(n), timeout=60)
    b = await asyncio.wait_for(plain(a), 60)
    c = await asyncio.wait_for(asyncio.gather(leaf(b), plain("x")), timeout=60)
    return [a, b, list(c)]


@resumable.function
async def stuck(n: int) -> int:
    LOG.append(("stuck", n))
    await asyncio.sleep(60)
    LOG.append(("stuck done", n))
    return n


@resumable.function(retry=resumable.Retry(max_attempts=2, initial_delay=0.0, jitter=0.0))
async def gives_up_waiting(n: int) -> str:
    try:
        await asyncio.wait_for(stuck(n), timeout=0.3)  # time for the child to reach its checkpoint
    except TimeoutError:
        pass
    return await plain("went on")


@resumable.function
async def nested(n: int) -> int:
    got = await parent(n)
    return got * 10


@resumable.function(retry=NO_WAIT)
async def keyed(n: int) -> list[Any]:
    a = await charge("a")
    b = await charge("b")
    several = [resumable.idempotency_key(), resumable.idempotency_key()]
    crash_point("several")
    loop = []
    for i in range(n):
        loop.append(await charge(("loop", i)))
    return [a, b, several, loop]


@resumable.function
async def keyed_parent() -> list[Any]:
    mine = await charge("parent")
    theirs = await keyed_child()
    return [mine, theirs]


@resumable.function
async def keyed_child() -> str:
    return await charge("child")


@resumable.function
async def charges(n: int) -> Any:
    receipt = await charge("charge")
    LOG.append("after charge")
    done = await plain(receipt)
    return done


@resumable.function
async def task_across(n: int) -> int:
    t = asyncio.create_task(plain(n))
    a = await plain(1)
    b = await t
    return a + b


@resumable.function
async def task_awaited(n: int) -> int:
    t = asyncio.create_task(plain(n))
    return await t


@resumable.function
async def future_across(n: int) -> int:
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(n)
    a = await plain(1)
    return a + await fut


@resumable.function
async def coroutine_across(n: int) -> int:
    coro = plain(n)
    a = await plain(1)
    return a + await coro


@resumable.function
async def call_across(n: int) -> int:
    call = leaf(n)
    a = await plain(1)
    return a + await call


@resumable.function
async def task_in_operand(n: int) -> list[int]:
    a = await asyncio.create_task(plain(n))
    b = await asyncio.create_task(leaf(n))
    return [a, b]


@resumable.function
async def task_done_before_the_next_await(n: int) -> int:
    t = asyncio.create_task(plain(n))
    got = await asyncio.gather(t, plain(1))
    return sum(got)


@resumable.function
async def shop(n: int) -> list[Any]:
    receipt = await charge_card(n)
    shipped = await ship(receipt)
    effect("after-ship")
    note = await plain(shipped)
    return [receipt, note]


async def charge_card(n: int) -> str:
    key = resumable.idempotency_key()
    effect(f"charge:{key}")
    await asyncio.sleep(0)
    return f"receipt-{n}"


@resumable.function
async def ship(receipt: str) -> str:
    effect("ship-body")
    await asyncio.sleep(0)
    return f"shipped {receipt}"
'''


class Crash(BaseException):
    """Stands for the process dying right after a checkpoint was saved."""


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("children")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


@pytest.fixture
def m(cases: ModuleType) -> ModuleType:
    """The case module with its logs cleared."""
    cases.LOG.clear()
    cases.CRASH.clear()
    cases.FAIL.clear()
    cases.KEYS.clear()
    return cases


@pytest.fixture
def seen() -> list[CheckpointInfo]:
    return []


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture
def rt(url: str, seen: list[CheckpointInfo]) -> Iterator[Runtime]:
    runtime = Runtime(url, on_checkpoint=seen.append)
    yield runtime
    runtime.close()


def native(fn: Callable[..., Any], *args: Any) -> Any:
    """The oracle: calling the function outside a run, under asyncio."""
    return asyncio.run(fn(*args))


def runs_of(rt: Runtime, parent: str) -> dict[str, tuple[str, str | None, str]]:
    """Every run stored under `parent` (recursively): id -> (function, parent, status)."""
    out = {}
    for r in rt.store.list_runs(parent=parent):
        out[r.run_id] = (r.function.split(":")[-1], r.parent, r.status)
        out.update(runs_of(rt, r.run_id))
    return out


def bodies(m: ModuleType, name: str = "leaf") -> list[Any]:
    """The arguments of the runs of child `name` whose body started, in order
    (and checks each body that finished ran its last step once)."""
    started = [e[1] for e in m.LOG if isinstance(e, tuple) and e[0] == name]
    done = [e[1] for e in m.LOG if isinstance(e, tuple) and e[0] == f"{name} done"]
    assert len(done) == len(set(done)), f"the last step of a {name} ran again: {m.LOG}"
    return started


# ----------------------------------------------------------------- child ids


def test_child_ids_and_records(m: ModuleType, rt: Runtime, seen: list[CheckpointInfo]) -> None:
    assert rt.run(m.parent, 3, run_id="p") == 7 + 15
    assert runs_of(rt, "p") == {
        "p/1.0": ("leaf", "p", "completed"),
        "p/2.0": ("leaf", "p", "completed"),
    }
    assert [(c.run_id, c.seq) for c in seen] == [("p", 1), ("p/1.0", 1), ("p", 2), ("p/2.0", 1)]
    assert rt.result("p/1.0") == 7 and rt.result("p/2.0") == 15
    assert rt.get("p").parent is None
    # Nested: a child's children hang under the child.
    assert rt.run(m.nested, 3, run_id="n") == 220
    assert runs_of(rt, "n") == {
        "n/1.0": ("parent", "n", "completed"),
        "n/1.0/1.0": ("leaf", "n/1.0", "completed"),
        "n/1.0/2.0": ("leaf", "n/1.0", "completed"),
    }
    assert native(m.parent, 3) == 22 and native(m.nested, 3) == 220


def test_completed_child_is_not_run_again_after_a_crash(
    m: ModuleType, rt: Runtime, seen: list[CheckpointInfo]
) -> None:
    m.CRASH["after-first-child"] = 1  # dies after the child completed, before checkpoint 2
    with pytest.raises(KeyboardInterrupt):
        rt.run(m.parent, 3, run_id="p")
    assert rt.status("p") == "running" and rt.status("p/1.0") == "completed"
    assert bodies(m) == [3]
    before = [c.run_id for c in seen]
    assert rt.run(m.parent, run_id="p") == 22
    # The step ran again from checkpoint 1 and asked for child p/1.0 again: its
    # stored result came back, its body did not run (no ("leaf", 3) again, and
    # no checkpoint of p/1.0 after the resume).
    assert bodies(m) == [3, 7]
    assert [c.run_id for c in seen][len(before) :] == ["p", "p/2.0"]
    assert sorted(runs_of(rt, "p")) == ["p/1.0", "p/2.0"]


def test_children_in_a_loop_have_one_id_per_iteration(
    m: ModuleType, rt: Runtime, seen: list[CheckpointInfo]
) -> None:
    m.CRASH[("loop", 1)] = 1
    with pytest.raises(KeyboardInterrupt):
        rt.run(m.looped, 4, run_id="l")
    assert bodies(m) == [0, 1]
    assert rt.run(m.looped, 4, run_id="l") == [1, 3, 5, 7]
    assert bodies(m) == [0, 1, 2, 3]  # leaf(1) completed before the crash: not again
    assert runs_of(rt, "l") == {f"l/{i + 1}.0": ("leaf", "l", "completed") for i in range(4)}
    children = [c.run_id for c in seen if c.run_id != "l"]
    assert children == ["l/1.0", "l/2.0", "l/3.0", "l/4.0"]
    assert native(m.looped, 4) == [1, 3, 5, 7]


def test_child_ids_are_the_same_after_a_crash_inside_gather(
    m: ModuleType, url: str, seen: list[CheckpointInfo]
) -> None:
    crashed: list[str] = []
    rt = Runtime(url)

    def crash(info: CheckpointInfo) -> None:
        seen.append(info)
        # Crash in the second child once the first has completed (same step:
        # the two run at once; the first ends after two commits, the second
        # has six).
        if info.run_id == "g/1.1" and not crashed and rt.status("g/1.0") == "completed":
            crashed.append(info.run_id)
            raise Crash

    rt.on_checkpoint = crash
    try:
        with pytest.raises(Crash):
            rt.run(m.gathered, 2, run_id="g")
        assert crashed == ["g/1.1"]
        assert bodies(m) == [2] and bodies(m, "slower_leaf") == [3]
        assert runs_of(rt, "g") == {
            "g/1.0": ("leaf", "g", "completed"),
            "g/1.1": ("slower_leaf", "g", "running"),
        }
        assert rt.run(m.gathered, run_id="g") == [5, 3 + 4 + 5 + 6 + 7 + 8]
        # Neither body started again: g/1.0 returned its stored result, g/1.1
        # resumed from its own checkpoint.
        assert bodies(m) == [2] and bodies(m, "slower_leaf") == [3]
        assert runs_of(rt, "g") == {
            "g/1.0": ("leaf", "g", "completed"),
            "g/1.1": ("slower_leaf", "g", "completed"),
        }
    finally:
        rt.close()
    assert native(m.gathered, 2) == [5, 33]


# ----------------------------------------------------------------- gather, wait_for


def test_gather_mixes_children_and_plain_coroutines(
    m: ModuleType, rt: Runtime, seen: list[CheckpointInfo]
) -> None:
    got = rt.run(m.mixed, 4, run_id="x")
    assert got == native(m.mixed, 4) == ["a", 9, "b", 11, 4 + 5 + 6]
    assert runs_of(rt, "x") == {
        "x/1.0": ("leaf", "x", "completed"),
        "x/1.1": ("leaf", "x", "completed"),
        "x/1.2": ("slow_leaf", "x", "completed"),
    }
    assert rt.result("x/1.1") == 11


def test_wait_for_a_child(m: ModuleType, rt: Runtime) -> None:
    got = rt.run(m.waited_for, 2, run_id="w")
    assert got == native(m.waited_for, 2) == [5, 5, [11, "x"]]
    assert runs_of(rt, "w") == {
        "w/1.0": ("leaf", "w", "completed"),
        "w/3.0": ("leaf", "w", "completed"),
    }


def test_a_child_the_parent_stopped_waiting_for_is_failed_as_cancelled(
    m: ModuleType, rt: Runtime
) -> None:
    assert rt.run(m.gives_up_waiting, 1, run_id="g") == native(m.gives_up_waiting, 1)
    # The timed-out step was retried once (the same child resumed at its
    # checkpoint, its body not started again), then the TimeoutError reached
    # the function, which went on without the child. (One body is native's.)
    assert bodies(m, "stuck") == [1, 1]
    child = rt.get("g/1.0")
    assert child.status == "failed"
    assert child.reason is not None and child.reason.startswith("cancelled: run 'g' went on")
    with pytest.raises(asyncio.CancelledError, match="went on without it"):
        rt.result("g/1.0")
    assert rt.get("g").attempts == 1  # the one retry of the timed-out step
    assert rt.get("g").reason is None


def test_a_task_created_in_the_operand_is_fine(m: ModuleType, rt: Runtime) -> None:
    assert rt.run(m.task_in_operand, 3, run_id="t") == native(m.task_in_operand, 3) == [3, 7]
    assert runs_of(rt, "t") == {"t/2.0": ("leaf", "t", "completed")}


# ----------------------------------------------------------------- idempotency keys


def test_idempotency_keys_per_step_site_and_iteration(m: ModuleType, rt: Runtime) -> None:
    got = rt.run(m.keyed, 3, run_id="k")
    assert got == ["k:1", "k:2", ["k:2.1", "k:2.2"], ["k:3", "k:4", "k:5"]]
    keys = [got[0], got[1], *got[2], *got[3]]
    assert len(set(keys)) == len(keys)


def test_idempotency_key_is_stable_across_a_crash_and_a_retry(m: ModuleType, rt: Runtime) -> None:
    m.FAIL["a"] = 2  # the step of await 1 is tried 3 times
    m.CRASH["b"] = 1  # the process dies in the step of await 2
    m.CRASH["several"] = 1  # and again, after the two keys of that step were taken
    m.CRASH[("loop", 1)] = 1
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            rt.run(m.keyed, 3, run_id="k")
    got = rt.run(m.keyed, run_id="k")
    assert got == ["k:1", "k:2", ["k:2.1", "k:2.2"], ["k:3", "k:4", "k:5"]]
    assert m.KEYS == [
        ("a", "k:1"),
        ("a", "k:1"),
        ("a", "k:1"),
        ("b", "k:2"),  # crashed
        ("b", "k:2"),  # crashed again later, at "several"
        ("b", "k:2"),
        (("loop", 0), "k:3"),
        (("loop", 1), "k:4"),  # crashed
        (("loop", 1), "k:4"),
        (("loop", 2), "k:5"),
    ]


def test_child_runs_have_their_own_keys(m: ModuleType, rt: Runtime) -> None:
    assert rt.run(m.keyed_parent, run_id="kp") == ["kp:1", "kp/2.0:1"]


def test_native_keys_are_random(m: ModuleType) -> None:
    first = native(m.keyed, 2)
    second = native(m.keyed, 2)
    keys = [first[0], first[1], *first[2], *first[3], second[0]]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)
    assert resumable.idempotency_key() != resumable.idempotency_key()


# ----------------------------------------------------------------- tasks and futures


@pytest.mark.parametrize(
    ("name", "variable", "kind", "oracle"),
    [
        ("task_across", "t", "Task", 6),
        ("task_awaited", "t", "Task", 5),
        ("future_across", "fut", "Future", 6),
        ("coroutine_across", "coro", "coroutine", 6),
        ("call_across", "call", "Call", 12),
    ],
)
def test_an_awaitable_created_before_the_checkpoint_is_refused(
    m: ModuleType, rt: Runtime, name: str, variable: str, kind: str, oracle: int
) -> None:
    fn = getattr(m, name)
    with pytest.raises(resumable.SerializationError) as info:
        rt.run(fn, 5, run_id="a")
    message = str(info.value)
    del info
    with warnings.catch_warnings():
        # The refused coroutine object was never awaited: Python warns when it goes.
        warnings.simplefilter("ignore", RuntimeWarning)
        gc.collect()
    assert f"variable `{variable}`" in message
    assert kind in message
    assert "task, future or coroutine started before the await" in message
    # The fix.
    assert "Create it inside the await instead" in message
    assert "await asyncio.gather(f(), g())" in message
    assert rt.status("a") == "blocked"
    assert rt.get("a").reason is not None
    # Natively it is fine.
    assert native(fn, 5) == oracle


# ----------------------------------------------------------------- other awaitables


def test_a_plain_awaitable_runs_again_when_the_process_dies_before_the_next_checkpoint(
    m: ModuleType, rt: Runtime
) -> None:
    m.CRASH["charge"] = 1  # dies after the charge was made, before checkpoint 2
    with pytest.raises(KeyboardInterrupt):
        rt.run(m.charges, 1, run_id="c")
    assert m.KEYS == [("charge", "c:1")]
    assert rt.get("c").seq == 1
    assert rt.run(m.charges, run_id="c") == "c:1"
    # At least once: made again, with the same key.
    assert m.KEYS == [("charge", "c:1"), ("charge", "c:1")]
    assert m.LOG.count("after charge") == 1


def test_a_plain_awaitable_runs_again_when_a_crash_hits_a_checkpoint_of_its_step(
    m: ModuleType, url: str
) -> None:
    crashed: list[int] = []

    def crash(info: CheckpointInfo) -> None:
        # A checkpoint of the child started in the same step as the charge: the
        # parent's next checkpoint is not committed yet.
        if info.run_id == "gc/1.0" and info.seq == 2 and not crashed:
            crashed.append(info.seq)
            raise Crash

    with Runtime(url, on_checkpoint=crash) as runtime:
        with pytest.raises(Crash):
            runtime.run(m.gather_of_charge_and_child, 1, run_id="gc")
        assert crashed == [2]
        assert m.KEYS == [("gathered", "gc:1")]
        assert runtime.run(m.gather_of_charge_and_child, run_id="gc") == ["gc:1", 1 + 2 + 3]
    assert m.KEYS == [("gathered", "gc:1"), ("gathered", "gc:1")]
    assert bodies(m, "slow_leaf") == [1]  # the child resumed from its own checkpoint


def _run_shop(url: str, effects: Path, kill: str, folder: Path) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(folder)!r})
        import {MODULE}, resumable
        rt = resumable.Runtime({url!r})
        print(rt.run({MODULE}.shop, 7, run_id="order"))
        """
    )
    env = dict(os.environ, CHILDREN_EFFECTS=str(effects), CHILDREN_KILL=kill)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )


def test_sigkill_repeats_only_the_step_in_flight(m: ModuleType, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    effects = tmp_path / "effects.log"
    folder = Path(str(m.__file__)).parent
    kill = "charge,after-ship"
    first = _run_shop(url, effects, kill, folder)
    assert first.returncode == -9, first.stderr
    second = _run_shop(url, effects, kill, folder)
    assert second.returncode == -9, second.stderr
    third = _run_shop(url, effects, kill, folder)
    assert third.returncode == 0, third.stderr
    assert third.stdout.strip() == "['receipt-7', 'shipped receipt-7']"
    assert effects.read_text().splitlines() == [
        "charge:order:1",  # killed after the charge ...
        "charge:order:1",  # ... so the step ran again, with the same key
        "ship-body",  # the child completed ...
        "after-ship",  # ... and the parent was killed before its next checkpoint
        "after-ship",  # the step ran again; the child's body did not
    ]
    with Runtime(url) as rt:
        assert runs_of(rt, "order") == {"order/2.0": ("ship", "order", "completed")}
        assert rt.result("order") == ["receipt-7", "shipped receipt-7"]
