"""The retry rule (docs/durability.md): retries cover the function they are
attached to, leaves and children included.

One attempt counter per checkpoint k, stored in the run's row. A retryable
exception that (a) comes from await k's operand or its awaitable, or (b) was
first raised after checkpoint k and leaves the function, parks the run (a row
with a wake time) while attempts are left, and the run goes on again from
checkpoint k: await k's operand runs again (a completed child returns its
stored result), with the same idempotency keys. Out of attempts, (a) is
raised at await k, where the function's own handlers see it, and (b) fails
the run. Never retried: exceptions the function catches, exceptions carried
across a checkpoint (pending in a `finally` that awaited, re-raised by a
handler that awaited), a child's final failure (alone or inside an
ExceptionGroup), anything not an `Exception`, programming errors and
resumable's own errors.

The functions are compiled into a temporary folder once per module, driven
in this process on each store (memory, SQLite, PostgreSQL; no delays:
`initial_delay=0`), and in worker subprocesses on the stores processes share
(SQLite, PostgreSQL); the crash test SIGKILLs a process whose run is parked.
Where a run succeeds, its result is the original coroutine's.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import resumable
from resumable import Runtime
from resumable.store import RunRecord
from tests.compiled import import_file
from tests.procs import (
    clean_env,
    compile_module,
    lines,
    python,
    resumable_cmd,
    spawn,
    stop,
    wait_until,
)
from tests.stores import KINDS, LASTING, store_url

MODULE = "retry_rule_cases"

SOURCE = '''
"""Functions for tests/test_retry_rule.py. `step(name)` records that it ran
and fails while FAIL[name] > 0, or on the calls numbered in FAIL_ON[name]
(with RAISES[name], default Flaky)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import resumable

CALLS: list[str] = []
FAIL: dict[str, int] = {}
RAISES: dict[str, type[BaseException]] = {}
KEYS: list[str] = []
#: Call numbers (1-based, counted in CALLS) on which `step(name)` fails.
FAIL_ON: dict[str, set[int]] = {}

FIVE = resumable.Retry(max_attempts=5, initial_delay=0, jitter=0)
THREE = resumable.Retry(max_attempts=3, initial_delay=0, jitter=0)
TWO = resumable.Retry(max_attempts=2, initial_delay=0, jitter=0)


class Flaky(Exception):
    """A transient failure: retryable."""


class Halt(BaseException):
    """Not an Exception."""


class Opaque:
    """Not storable."""


def step(name: str) -> None:
    CALLS.append(name)
    if CALLS.count(name) in FAIL_ON.get(name, ()):
        raise RAISES.get(name, Flaky)(f"{name} failed")
    if FAIL.get(name, 0) > 0:
        FAIL[name] -= 1
        raise RAISES.get(name, Flaky)(f"{name} failed")


async def op(name: str) -> str:
    step(name)
    await asyncio.sleep(0)
    return name


# -- leaves ----------------------------------------------------------------------


@resumable.function(retry=FIVE)
async def leaf(x: int) -> int:
    step("leaf")
    return x * 2


@resumable.function(retry=FIVE)
async def parent_of_leaf(x: int) -> int:
    y = await leaf(x)
    return y + 1


# -- r = await client.get(url); r.raise_for_status() ----------------------------------


class Response:
    def __init__(self, url: str) -> None:
        self.url = url

    def raise_for_status(self) -> None:
        step("raise_for_status")


class Client:
    async def get(self, url: str) -> Response:
        CALLS.append(f"get {url}")
        await asyncio.sleep(0)
        return Response(url)


client = Client()


@resumable.function(retry=FIVE)
async def fetch(url: str) -> str:
    r = await client.get(url)
    r.raise_for_status()
    return r.url


@resumable.function(retry=FIVE)
async def get_status(url: str) -> int:
    CALLS.append(f"child get {url}")
    return 200


@resumable.function(retry=FIVE)
async def fetch_via_child(url: str) -> int:
    status = await get_status(url)
    step("check")
    return status


# -- one counter for (a) and (b) --------------------------------------------------------


@resumable.function(retry=THREE)
async def shared(x: int) -> str:
    v = await op("op")
    step("after")
    return v


@resumable.function(retry=FIVE)
async def keyed(x: int) -> str:
    v = await op("op")
    KEYS.append(resumable.idempotency_key())
    KEYS.append(resumable.idempotency_key())
    step("after")
    return v


@resumable.function(retry=FIVE)
async def keyed_leaf(x: int) -> int:
    KEYS.append(resumable.idempotency_key())
    step("leaf")
    return x


# -- never retried ------------------------------------------------------------------


@resumable.function(retry=FIVE)
async def caught(x: int) -> int:
    await op("op")
    try:
        step("parse")
        v = x
    except Flaky:
        v = -1
    return v


@resumable.function(retry=FIVE)
async def caught_at_await(x: int) -> int:
    try:
        await op("op")
        v = x
    except Flaky:
        v = -1
    return v


@resumable.function(retry=FIVE)
async def pending_in_finally(x: int) -> int:
    try:
        step("body")
    finally:
        await op("cleanup")
    return x


@resumable.function(retry=FIVE)
async def handler_awaited(x: int) -> int:
    try:
        step("body")
    except Flaky:
        await op("log")
        raise
    return x


@resumable.function(retry=FIVE)
async def await_then_handler_awaited(x: int) -> int:
    try:
        await op("op")
    except Flaky:
        await op("log")
        raise
    return x


@resumable.function(retry=TWO)
async def failing_child(x: int) -> int:
    step("child")
    return x


@resumable.function(retry=FIVE)
async def ok_child(x: int) -> int:
    CALLS.append("ok child")
    return x


@resumable.function(retry=FIVE)
async def parent_of_failing(x: int) -> int:
    v = await failing_child(x)
    return v


async def both(x: int) -> None:
    async with asyncio.TaskGroup() as tg:
        tg.create_task(ok_child(x))
        tg.create_task(failing_child(x))


@resumable.function(retry=FIVE)
async def parent_group(x: int) -> int:
    await both(x)
    return x


@resumable.function(retry=FIVE)
async def regroup(x: int) -> int:
    try:
        v = await failing_child(x)
    except Flaky as e:
        raise ExceptionGroup("wrapped", [e])
    return v


@resumable.function(retry=FIVE)
async def halts(x: int) -> str:
    v = await op("op")
    return v


@resumable.function(retry=FIVE)
async def programming_error_at_await(x: int) -> str:
    v = await op("op")
    return v


@resumable.function(retry=FIVE)
async def programming_error_after(x: int) -> str:
    v = await op("op")
    step("after")
    return v


@resumable.function(retry=FIVE)
async def unstorable(x: int) -> int:
    await op("op")
    held = Opaque()
    await op("next")
    return 1 if held else 0


@resumable.function(retry=FIVE)
async def raises_resumable_error(x: int) -> int:
    await op("op")
    step("after")
    return x


# -- in other processes: attempts counted in a file ($RULE_LOG) ----------------------


def attempt(tag: str) -> int:
    """Append `tag` to $RULE_LOG; how many times it is there now."""
    path = os.environ["RULE_LOG"]
    with open(path, "a", encoding="utf-8") as f:
        f.write(tag + "\\n")
        f.flush()
        os.fsync(f.fileno())
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines().count(tag)


@resumable.function(retry=resumable.Retry(max_attempts=5, initial_delay=0.05, jitter=0))
async def leaf_in_worker(x: int) -> int:
    if attempt(f"leaf {x}") < 3:
        raise ConnectionError(f"attempt failed for {x}")
    return x * 2


@resumable.function(
    retry=resumable.Retry(max_attempts=3, initial_delay=1.0, backoff=1, jitter=0)
)
async def always_fails(x: int) -> int:
    n = attempt(f"always {x}")
    raise ConnectionError(f"attempt {n} failed")
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("retry_rule")
    compile_module(folder, MODULE, SOURCE)
    return folder


@pytest.fixture(scope="module")
def cases(folder: Path) -> Iterator[ModuleType]:
    yield import_file(folder / f"{MODULE}.py", MODULE)
    sys.modules.pop(MODULE, None)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


@pytest.fixture
def rt(cases: ModuleType, url: str) -> Iterator[Runtime]:
    cases.CALLS.clear()
    cases.FAIL.clear()
    cases.RAISES.clear()
    cases.KEYS.clear()
    cases.FAIL_ON.clear()
    with Runtime(url) as rt:
        yield rt


def stored(url: str, run_id: str) -> RunRecord | None:
    """The run as the store at `url` holds it now."""
    with Runtime(url) as rt:
        return rt.store.get(run_id)


def native(cases: ModuleType, fn: Any, *args: Any) -> Any:
    """What the original coroutine returns, with nothing failing."""
    saved = list(cases.CALLS)
    try:
        return asyncio.run(fn.__wrapped__(*args))
    finally:
        cases.CALLS[:] = saved


def fail(cases: ModuleType, **counts: int) -> None:
    cases.FAIL.clear()
    cases.FAIL.update(counts)


# ------------------------------------------------------------------ leaves


def test_a_leaf_that_fails_twice_succeeds_on_its_third_attempt(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, leaf=2)
    assert rt.run(cases.leaf, 21, run_id="leaf-1") == native(cases, cases.leaf, 21) == 42
    assert cases.CALLS == ["leaf"] * 3
    record = rt.get("leaf-1")
    assert (record.status, record.attempts) == ("completed", 2)


def test_a_leaf_child_retries_under_its_own_policy(cases: ModuleType, rt: Runtime) -> None:
    fail(cases, leaf=2)
    got = rt.run(cases.parent_of_leaf, 5, run_id="parent-1")
    assert got == native(cases, cases.parent_of_leaf, 5) == 11
    assert cases.CALLS == ["leaf"] * 3
    child = rt.get("parent-1/1.0")
    assert (child.function, child.status, child.attempts) == (
        f"{MODULE}:leaf",
        "completed",
        2,
    )
    assert rt.get("parent-1").attempts == 0  # the child retried, not its parent


def test_a_leaf_out_of_attempts_fails_with_its_exception(cases: ModuleType, rt: Runtime) -> None:
    fail(cases, leaf=9)
    with pytest.raises(cases.Flaky, match="leaf failed"):
        rt.run(cases.leaf, 1, run_id="leaf-2")
    assert cases.CALLS == ["leaf"] * 5
    assert rt.get("leaf-2").status == "failed"


# ------------------------------------------------------------------ after an await


def test_raise_for_status_after_an_await_is_retried_from_its_checkpoint(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, raise_for_status=2)
    got = rt.run(cases.fetch, "https://example.test/a", run_id="fetch-1")
    assert got == native(cases, cases.fetch, "https://example.test/a")
    # The await's operand (a plain coroutine) runs again on every attempt.
    assert cases.CALLS == ["get https://example.test/a", "raise_for_status"] * 3
    assert rt.get("fetch-1").attempts == 2


def test_a_completed_child_at_the_retried_await_returns_its_stored_result(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, check=2)
    assert rt.run(cases.fetch_via_child, "u", run_id="via-1") == 200
    assert cases.CALLS == ["child get u", "check", "check", "check"]  # the child ran once
    assert [r.run_id for r in rt.store.list_runs()] == ["via-1/1.0", "via-1"]
    assert rt.get("via-1").attempts == 2


def test_await_and_the_code_after_it_share_one_attempt_counter(
    cases: ModuleType, rt: Runtime
) -> None:
    # The operand fails twice (attempts 1 and 2), then the code after it
    # fails on attempt 3 of 3: the run fails; attempts never multiply.
    fail(cases, op=2, after=9)
    with pytest.raises(cases.Flaky, match="after failed"):
        rt.run(cases.shared, 1, run_id="shared-1")
    assert cases.CALLS == ["op", "op", "op", "after"]
    record = rt.get("shared-1")
    assert (record.status, record.attempts) == ("failed", 2)
    # The other way round: the code after the await fails twice (b), then
    # the operand fails on attempt 3 (a): raised at the await, the run fails.
    cases.CALLS.clear()
    fail(cases, after=2)
    cases.FAIL_ON["op"] = {3}
    with pytest.raises(cases.Flaky, match="op failed"):
        rt.run(cases.shared, 2, run_id="shared-2")
    assert cases.CALLS == ["op", "after", "op", "after", "op"]
    record = rt.get("shared-2")
    assert (record.status, record.attempts) == ("failed", 2)


def test_a_retried_step_uses_the_same_idempotency_keys(cases: ModuleType, rt: Runtime) -> None:
    fail(cases, after=2)
    assert rt.run(cases.keyed, 1, run_id="keys-1") == "op"
    assert cases.KEYS == ["keys-1:1", "keys-1:1.1"] * 3
    cases.KEYS.clear()
    fail(cases, leaf=2)
    assert rt.run(cases.keyed_leaf, 7, run_id="keys-2") == 7
    assert cases.KEYS == ["keys-2:0"] * 3


def test_an_await_out_of_attempts_raises_where_the_handler_sees_it(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, op=9)
    assert rt.run(cases.caught_at_await, 3, run_id="handled-1") == -1
    assert cases.CALLS == ["op"] * 5
    fail(cases, op=1)
    assert rt.run(cases.caught_at_await, 3, run_id="handled-2") == 3
    assert rt.get("handled-2").attempts == 1


# ------------------------------------------------------------------ never retried


def test_an_exception_the_function_catches_is_not_retried(cases: ModuleType, rt: Runtime) -> None:
    fail(cases, parse=1)
    assert rt.run(cases.caught, 4, run_id="caught-1") == -1
    assert cases.CALLS == ["op", "parse"]
    assert rt.get("caught-1").attempts == 0
    fail(cases, parse=1)
    cases.CALLS.clear()
    assert asyncio.run(cases.caught.__wrapped__(4)) == -1  # the original coroutine
    assert cases.CALLS == ["op", "parse"]


@pytest.mark.parametrize("function", ["pending_in_finally", "handler_awaited"])
def test_an_exception_carried_across_a_checkpoint_is_not_retried(
    cases: ModuleType, rt: Runtime, function: str
) -> None:
    # Raised before the await of the `finally` (or of the handler): the code
    # that raised it is behind a checkpoint and cannot run again.
    fn = getattr(cases, function)
    fail(cases, body=9)
    with pytest.raises(cases.Flaky, match="body failed"):
        rt.run(fn, 1, run_id=function)
    after = "cleanup" if function == "pending_in_finally" else "log"
    assert ["body", after] == cases.CALLS
    record = rt.get(function)
    assert (record.status, record.attempts) == ("failed", 0)
    fail(cases, body=9)
    cases.CALLS.clear()
    with pytest.raises(cases.Flaky, match="body failed"):
        asyncio.run(fn.__wrapped__(1))
    assert ["body", after] == cases.CALLS


def test_an_await_retried_then_carried_through_a_handler_that_awaited(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, op=9)
    with pytest.raises(cases.Flaky, match="op failed"):
        rt.run(cases.await_then_handler_awaited, 1, run_id="carried")
    assert cases.CALLS == ["op"] * 5 + ["log"]
    assert rt.get("carried").attempts == 4


def test_a_childs_final_failure_is_not_retried_by_its_parent(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, child=9)
    with pytest.raises(cases.Flaky, match="child failed"):
        rt.run(cases.parent_of_failing, 1, run_id="pf")
    assert cases.CALLS == ["child"] * 2  # the child's own two attempts, once
    assert (rt.get("pf/1.0").status, rt.get("pf/1.0").attempts) == ("failed", 1)
    assert (rt.get("pf").status, rt.get("pf").attempts) == ("failed", 0)


def test_a_childs_final_failure_inside_a_task_group_is_not_retried(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, child=9)
    with pytest.raises(ExceptionGroup) as caught:
        rt.run(cases.parent_group, 1, run_id="pg")
    assert [type(e) for e in caught.value.exceptions] == [cases.Flaky]
    assert cases.CALLS.count("child") == 2  # the child's own attempts, once
    assert cases.CALLS.count("ok child") == 1
    assert (rt.get("pg").status, rt.get("pg").attempts) == ("failed", 0)
    children = {r.run_id: r.status for r in rt.store.list_runs(parent="pg")}
    assert children == {"pg/1.0": "completed", "pg/1.1": "failed"}


def test_a_childs_final_failure_raised_inside_an_exception_group_is_not_retried(
    cases: ModuleType, rt: Runtime
) -> None:
    fail(cases, child=9)
    with pytest.raises(ExceptionGroup, match="wrapped"):
        rt.run(cases.regroup, 1, run_id="rg")
    assert cases.CALLS == ["child"] * 2
    assert (rt.get("rg").status, rt.get("rg").attempts) == ("failed", 0)


def test_what_is_not_an_exception_is_not_retried(cases: ModuleType, rt: Runtime) -> None:
    fail(cases, op=1)
    cases.RAISES["op"] = cases.Halt
    with pytest.raises(cases.Halt):
        rt.run(cases.halts, 1, run_id="halt")
    assert cases.CALLS == ["op"]
    record = rt.get("halt")
    assert (record.status, record.attempts) == ("running", 0)  # resumable, not retried
    assert rt.run(cases.halts, 1, run_id="halt") == "op"  # run again: goes on
    assert cases.CALLS == ["op", "op"]


@pytest.mark.parametrize("error", [TypeError, AttributeError, NotImplementedError])
def test_programming_errors_are_not_retried(
    cases: ModuleType, rt: Runtime, error: type[Exception]
) -> None:
    fail(cases, op=1)
    cases.RAISES["op"] = error
    with pytest.raises(error):
        rt.run(cases.programming_error_at_await, 1, run_id="pe-a")
    assert cases.CALLS == ["op"]
    fail(cases, after=1)
    cases.RAISES["after"] = error
    with pytest.raises(error):
        rt.run(cases.programming_error_after, 1, run_id="pe-b")
    assert cases.CALLS == ["op", "op", "after"]
    fail(cases, leaf=1)
    cases.RAISES["leaf"] = error
    with pytest.raises(error):
        rt.run(cases.leaf, 1, run_id="pe-c")
    assert cases.CALLS == ["op", "op", "after", "leaf"]
    for run_id in ("pe-a", "pe-b", "pe-c"):
        assert (rt.get(run_id).status, rt.get(run_id).attempts) == ("failed", 0)


def test_resumables_own_errors_are_not_retried(cases: ModuleType, rt: Runtime) -> None:
    with pytest.raises(resumable.SerializationError, match="held"):
        rt.run(cases.unstorable, 1, run_id="own-1")
    assert cases.CALLS == ["op"]  # step 1 did not run again
    assert (rt.get("own-1").status, rt.get("own-1").attempts) == ("blocked", 0)
    fail(cases, after=1)
    cases.RAISES["after"] = resumable.CheckpointError
    with pytest.raises(resumable.CheckpointError):
        rt.run(cases.raises_resumable_error, 1, run_id="own-2")
    assert cases.CALLS == ["op", "op", "after"]
    assert rt.get("own-2").attempts == 0


# ------------------------------------------------------------------ other processes


def test_a_leaf_dispatched_to_a_worker_succeeds_on_its_third_attempt(
    folder: Path, tmp_path: Path, lasting_url: str
) -> None:
    log = tmp_path / "attempts.log"
    env = clean_env(RULE_LOG=str(log), RESUMABLE_STORE=lasting_url)
    dispatch = python(
        f"import {MODULE} as m; print(m.leaf_in_worker.dispatch(21, run_id='w-leaf'))",
        cwd=folder,
        env=env,
    )
    assert dispatch.returncode == 0, dispatch.stderr
    assert dispatch.stdout.strip() == "w-leaf"
    worker = resumable_cmd(
        "worker", "--module", str(folder / f"{MODULE}.py"), "--drain", cwd=tmp_path, env=env
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert lines(log) == ["leaf 21"] * 3
    with Runtime(lasting_url) as rt:
        (run,) = rt.store.list_runs()
        assert (run.run_id, run.status, run.attempts) == ("w-leaf", "completed", 2)
        assert rt.result("w-leaf") == 42


def test_a_run_killed_while_it_waits_is_resumed_by_a_worker_with_its_attempts(
    folder: Path, tmp_path: Path, lasting_url: str
) -> None:
    # A process runs `always_fails` (3 attempts, 1 s apart); it is killed
    # (SIGKILL) while the run waits after its first attempt. A worker then
    # takes the parked row when it is due, and makes only the two attempts
    # that are left: the counter lives in the row, not in the dead process.
    log = tmp_path / "attempts.log"
    url = lasting_url
    env = clean_env(RULE_LOG=str(log))
    proc = spawn(
        f"""
        import resumable, {MODULE} as m
        rt = resumable.Runtime({url!r})
        rt.run(m.always_fails, 1, run_id="parked")
        """,
        cwd=folder,
        env=env,
    )
    try:
        with Runtime(url) as watcher:

            def parked() -> RunRecord | None:
                found = watcher.store.get("parked")
                if found is not None and found.status == "failed":
                    raise AssertionError(f"the run failed instead of waiting: {found.reason}")
                return found if found is not None and found.status == "waiting" else None

            row = wait_until(
                parked, "the run to wait for its second attempt", proc=proc, timeout=20
            )
            proc.send_signal(signal.SIGKILL)
    finally:
        stop(proc, kill=True)
    assert proc.returncode == -signal.SIGKILL
    assert lines(log) == ["always 1"]
    assert row.attempt == 1 and row.attempts == 1 and row.wake_at is not None
    after = stored(url, "parked")
    assert after is not None and after.status == "waiting"

    worker = resumable_cmd(
        *("worker", "--store", url, "--module", str(folder / f"{MODULE}.py"), "--drain"),
        cwd=tmp_path,
        env=env,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert lines(log) == ["always 1"] * 3  # one attempt before the kill, two after
    with Runtime(url) as rt:
        (run,) = rt.store.list_runs()
    assert (run.run_id, run.status, run.attempts) == ("parked", "failed", 2)
    assert run.reason is not None and "attempt 3 failed" in run.reason
