"""The SQLite store under the runtime: schema and settings, the run record,
atomic checkpoints, store I/O off the event loop, ownership across
processes, and corrupt checkpoints.

Everything runs on real SQLite files in tmp_path; crashes are either a
BaseException raised by the checkpoint observer (in-process) or a SIGKILLed
subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import linecache
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from resumable import (
    CheckpointError,
    CheckpointInfo,
    Retry,
    Runtime,
    StoreError,
    codec,
)
from resumable.run import decode_checkpoint
from resumable.store import Lease, RunRecord, RunSummary, Write, open_store
from resumable.store.base import Claim, checkpoint_write, owner_name
from resumable.store.sqlite import SCHEMA_VERSION, SQLiteStore
from resumable.worker import work
from tests.compiled import compile_and_import
from tests.stores import store_url

MODULE = '''\
"""Store test module."""

import asyncio
import os

import resumable

steps = []
GATES = {}
FLAKY = {"left": 0}


async def tick(label, value=None):
    steps.append(label)
    return value


async def flaky(value):
    if FLAKY["left"] > 0:
        FLAKY["left"] -= 1
        raise ConnectionError("flaky")
    return value


async def effect(label, value):
    """A side effect made durable before it returns: a line in an fsync'd file."""
    fd = os.open(os.environ["STORE_TEST_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{label} {os.getpid()}\\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    await asyncio.sleep(0.02)  # widen the window in which the other process tries
    return value


@resumable.function
async def three(a, b=2):
    x = await tick("one", a + b)
    y = await tick("two", x * 2)
    z = await tick("three", y - 3)
    return {"a": a, "sum": x + y + z}


@resumable.function
async def fails(a):
    await tick("fails", a)
    raise ValueError(f"bad {a}")


@resumable.function
async def parent(a):
    first = await three(a)
    second = await three(a + 1)
    return first["sum"] + second["sum"]


@resumable.function
async def retried(a):
    x = await flaky(a)
    y = await tick("after-flaky", x + 1)
    return y


@resumable.function
async def gated(name):
    value = await GATES[name]()
    return await tick(name, value)


@resumable.function
async def race(n):
    total = 0
    for i in range(n):
        total += await effect(f"step{i}", i)
    return total
'''


class Crash(BaseException):
    """Stands for the process dying right after a checkpoint was committed."""


class FakeClock:
    """A clock that does not sleep; `during_sleep` runs at each wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.during_sleep: Callable[[], None] = lambda: None

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.during_sleep()
        self.now += seconds


@pytest.fixture(scope="module")
def mod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("store_module")
    name = f"store_test_{uuid.uuid4().hex}"
    module = compile_and_import(folder / "smod.py", name, MODULE)
    yield module
    sys.modules.pop(name, None)
    linecache.checkcache()


@pytest.fixture
def url(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """SQLite (tests of its files, settings and commits), or the store a
    test is parametrized over with `ENGINES`."""
    return store_url(request, getattr(request, "param", "sqlite"), tmp_path, "state.db")


#: The same semantics, checked on every SQL store.
ENGINES = pytest.mark.parametrize("url", ["sqlite", "postgres"], indirect=True)


def on_store_thread(store: Any, fn: Callable[[], Any]) -> Any:
    """Call `fn` where the store's connection lives (its own thread)."""
    return asyncio.run(store.io(fn))


def rows(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run `sql` on the database with a connection of our own (committed)."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        return list(conn.execute(sql, args))


def crash_at(k: int) -> Callable[[CheckpointInfo], None]:
    def observer(info: CheckpointInfo) -> None:
        if info.seq == k:
            raise Crash

    return observer


# ----------------------------------------------------------------- schema and settings


def test_schema_is_created_on_first_use_with_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "state.db"
    assert not path.parent.exists()
    with Runtime(f"sqlite:///{path}") as rt:
        assert path.is_file()
        tables = {name for (name,) in rows(path, "SELECT name FROM sqlite_master")}
        assert {"runs", "resumable_meta"} <= tables
        assert rows(path, "SELECT value FROM resumable_meta WHERE key='schema_version'") == [
            (str(SCHEMA_VERSION),)
        ]
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]
        store = rt.store
        assert isinstance(store, SQLiteStore)
        assert (
            on_store_thread(store, lambda: store.conn.execute("PRAGMA synchronous").fetchone())[0]
            == 2
        )  # FULL
        assert store.timeout == 30.0
    # Opening it again keeps what is there.
    with Runtime(f"sqlite:///{path}") as rt:
        rt.store.create(RunRecord("kept", "m:f", "fp", b"{}"))
    with Runtime(f"sqlite:///{path}") as rt:
        assert rt.get("kept").function == "m:f"


OPENER = """
import os, sqlite3, sys, time
import resumable

# Each process connects once the other is ready to: both find the new file
# in rollback mode and switch it to WAL at the same moment.
here, folder = str(os.getpid()), sys.argv[2]
connect = sqlite3.connect


def connect_with_the_other(*args, **kwargs):
    if not os.path.exists(os.path.join(folder, here)):
        open(os.path.join(folder, here), "w").close()
        deadline = time.monotonic() + 5
        while len(os.listdir(folder)) < 2 and time.monotonic() < deadline:
            pass
    return connect(*args, **kwargs)


sqlite3.connect = connect_with_the_other
with resumable.Runtime(sys.argv[1]):
    print("opened", flush=True)
    sys.stdin.readline()  # held open while the other opens it
"""


def test_two_processes_opening_a_new_store_at_once_both_open_it(tmp_path: Path) -> None:
    # Both find the new file in rollback mode and switch it to WAL at once:
    # SQLite refuses one of the switches without waiting (database is
    # locked), and that process failed to open the store (in most rounds).
    for round_ in range(5):
        path = tmp_path / str(round_) / "state.db"
        barrier = tmp_path / f"barrier{round_}"
        barrier.mkdir()
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", OPENER, f"sqlite:///{path}?timeout=5", str(barrier)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            said = [p.stdout.readline() for p in openers if p.stdout is not None]
            errors = [p.communicate(input="done\n", timeout=30)[1] for p in openers]
        finally:
            for p in openers:
                p.kill()
                p.communicate()
        assert said == ["opened\n"] * 2, (round_, errors)
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.parametrize(
    ("option", "level"), [("NORMAL", 1), ("normal", 1), ("OFF", 0), ("EXTRA", 3)]
)
def test_synchronous_is_configurable_in_the_url(tmp_path: Path, option: str, level: int) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}?synchronous={option}&timeout=2.5")
    try:
        assert isinstance(store, SQLiteStore)
        assert (
            on_store_thread(store, lambda: store.conn.execute("PRAGMA synchronous").fetchone())[0]
            == level
        )
        assert store.timeout == 2.5
    finally:
        store.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "synchronous=SOMETIMES",
            "synchronous must be OFF, NORMAL, FULL or EXTRA, not 'SOMETIMES'",
        ),
        ("timeout=soon", "timeout must be seconds between 0 and 86400, not 'soon'"),
        ("timeout=-1", "timeout must be seconds between 0 and 86400, not '-1'"),
        ("timeout=nan", "timeout must be seconds between 0 and 86400, not 'nan'"),
        ("timeout=inf", "timeout must be seconds between 0 and 86400, not 'inf'"),
        ("journal=DELETE", "unknown option 'journal' (known: synchronous, timeout)"),
    ],
)
def test_bad_url_options_name_the_option(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises((StoreError, ValueError)) as info:
        open_store(f"sqlite:///{tmp_path / 'state.db'}?{query}")
    assert message in str(info.value)
    assert not (tmp_path / "state.db").exists()  # nothing was created


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the tables you are looking for" * 100)
    with pytest.raises(StoreError, match="is not a resumable store"):
        open_store(f"sqlite:///{path}")


def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    newer = SCHEMA_VERSION + 1
    rows(path, "UPDATE resumable_meta SET value = ? WHERE key = 'schema_version'", str(newer))
    threads = threading.active_count()
    with pytest.raises(StoreError) as info:
        Runtime(f"sqlite:///{path}")
    assert threading.active_count() == threads  # nothing left behind
    message = str(info.value)
    assert str(path) in message
    assert "newer resumable" in message and "upgrade resumable" in message
    assert f"schema version {newer}" in message and f"up to {SCHEMA_VERSION}" in message
    # The refusal changed nothing.
    assert rows(path, "SELECT value FROM resumable_meta") == [(str(newer),)]


# ----------------------------------------------------------------- the run record


@ENGINES
def test_run_record_holds_everything_about_a_run(mod: ModuleType, url: str) -> None:
    clock = FakeClock()
    snapshots: list[RunRecord] = []
    t0 = time.time()
    with Runtime(url, clock=clock, retry=Retry(max_attempts=3, initial_delay=5)) as rt:
        machine = mod.three.machine()
        # pending: dispatched, not started
        rt.dispatch(mod.three, 4, run_id="r")
        pending = rt.get("r")
        assert pending.status == "pending"
        assert (pending.function, pending.fingerprint) == ("smod:three", machine.run_fingerprint)
        assert codec.decode(pending.args) == {"a": 4, "b": 2}  # bound, default included
        assert (pending.checkpoint, pending.seq, pending.result, pending.error) == (
            None,
            0,
            None,
            None,
        )
        assert pending.parent is None
        assert pending.source == mod.__file__
        assert t0 <= pending.created_at == pending.updated_at <= time.time()

        rt.on_checkpoint = lambda info: snapshots.append(rt.get(info.run_id))
        expected = asyncio.run(mod.three.__wrapped__(4))
        assert rt.run(mod.three, run_id="r") == expected
        done = rt.get("r")
        # running at each checkpoint, with its number
        assert [(s.status, s.seq, s.owner) for s in snapshots] == [
            ("running", n, owner_name()) for n in (1, 2, 3)
        ]
        assert all(s.created_at == pending.created_at for s in [*snapshots, done])
        stamps = [pending.updated_at] + [s.updated_at for s in snapshots] + [done.updated_at]
        assert stamps == sorted(stamps)
        assert done.status == "completed"
        assert codec.decode(done.result) == expected
        assert (done.error, done.reason, done.seq) == (None, None, 3)
        assert done.line == snapshots[-1].line > snapshots[0].line > 0
        assert done.checkpoint == snapshots[-1].checkpoint  # the latest one stays

        # failed: the exception and a one-line reason
        with pytest.raises(ValueError, match="bad 3"):
            rt.run(mod.fails, 3, run_id="f")
        failed = rt.get("f")
        assert failed.status == "failed" and failed.result is None
        error = codec.decode(failed.error)
        assert type(error) is ValueError and error.args == ("bad 3",)
        assert failed.reason == "ValueError: bad 3"

        # attempts: waiting while a failed step waits for its next attempt
        waiting: list[tuple[RunRecord, float]] = []
        clock.during_sleep = lambda: waiting.append((rt.get("w"), clock.now))
        mod.FLAKY["left"] = 2
        snapshots.clear()
        assert rt.run(mod.retried, 1, run_id="w") == 2
        assert [(w.status, w.attempt, w.attempts) for w, _ in waiting] == [
            ("waiting", 1, 1),
            ("waiting", 2, 2),
        ]
        # wake_at: now + initial_delay * backoff**(attempt-1), with 10% jitter
        for (w, now), delay in zip(waiting, (5.0, 10.0), strict=True):
            assert w.wake_at is not None
            assert 0.9 * delay <= w.wake_at - now <= 1.1 * delay
            assert w.reason == f"attempt {w.attempt} failed: ConnectionError: flaky"
        retried = rt.get("w")
        # The next checkpoint resets the step's count; the run's total stays.
        assert (retried.status, retried.attempt, retried.attempts, retried.wake_at) == (
            "completed",
            0,
            2,
            None,
        )

        # children: ids from the parent's checkpoint number, and their parent
        assert rt.run(mod.parent, 1, run_id="p") == asyncio.run(mod.parent.__wrapped__(1))
        children = sorted(rt.store.list_runs(parent="p"), key=lambda r: r.run_id)
        assert [(c.run_id, c.parent, c.status, c.seq) for c in children] == [
            ("p/1.0", "p", "completed", 3),
            ("p/2.0", "p", "completed", 3),
        ]
        second = rt.get(children[1].run_id)
        assert codec.decode(second.args) == {"a": 2, "b": 2}
        assert [r.run_id for r in rt.store.list_runs(top_only=True)] == ["p", "w", "f", "r"]


# ----------------------------------------------------------------- checkpoints


def test_each_checkpoint_is_one_committed_write(mod: ModuleType, url: str, tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    committed: list[tuple[Any, ...]] = []

    def observe(info: CheckpointInfo) -> None:
        # What another connection sees once the checkpoint is saved: the row
        # has the new number, the new bytes and the new line, all together.
        [row] = rows(db, "SELECT seq, checkpoint, line, status, attempt FROM runs WHERE run_id='r'")
        committed.append(row)
        seq, blob, line, status, attempt = row
        assert (seq, line, status, attempt) == (info.seq, info.line, "running", 0)
        point = decode_checkpoint(blob, mod.three.machine(), run_id="r")
        assert (point["seq"], point["locals"]) == (info.seq, info.locals)

    with Runtime(url, on_checkpoint=observe) as rt:
        assert rt.run(mod.three, 5, run_id="r") == asyncio.run(mod.three.__wrapped__(5))
    assert [c[0] for c in committed] == [1, 2, 3]
    assert len({c[1] for c in committed}) == 3
    [(seq, blob)] = rows(db, "SELECT seq, checkpoint FROM runs WHERE run_id='r'")
    point = decode_checkpoint(blob, mod.three.machine(), run_id="r")
    assert seq == point["seq"] == 3
    assert point["state"] in mod.three.machine().awaits


@ENGINES
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_fresh_runtime_resumes_a_crashed_run(mod: ModuleType, url: str, k: int) -> None:
    expected = asyncio.run(mod.three.__wrapped__(10))
    mod.steps.clear()
    with Runtime(url, on_checkpoint=crash_at(k)) as rt, pytest.raises(Crash):
        rt.run(mod.three, 10, run_id="r")
    assert mod.steps == ["one", "two", "three"][: k - 1]
    with Runtime(url) as rt:
        record = rt.get("r")
        assert (record.status, record.seq) == ("running", k)
        mod.steps.clear()
        assert rt.run(mod.three, run_id="r") == expected
        assert mod.steps == ["one", "two", "three"][k - 1 :]
        assert (rt.status("r"), rt.get("r").seq) == ("completed", 3)


# ----------------------------------------------------------------- off the event loop


class RecordingStore(SQLiteStore):
    """Notes the thread of every store call, and whether an event loop was
    running on it (a blocking call there would stall every run)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str, bool]] = []
        self.guard = threading.Lock()

    def _note(self, name: str) -> None:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        with self.guard:
            self.calls.append((name, threading.current_thread().name, on_loop))

    def _insert(self, record: RunRecord) -> bool:  # create, grouped or not
        self._note("create")
        return super()._insert(record)

    def get(self, run_id: str) -> RunRecord | None:
        self._note("get")
        return super().get(run_id)

    def _update_statement(self, write: Write, owner: str | None = None) -> Any:
        self._note("write")  # each write, alone or sent with others (executemany)
        return super()._update_statement(write, owner)

    def _claim(self, claim: Claim) -> Lease | None:
        self._note("claim")
        return super()._claim(claim)

    def list_runs(self, **kwargs: Any) -> list[RunSummary]:
        self._note("list_runs")
        return super().list_runs(**kwargs)

    def runnable(self, *args: Any, **kwargs: Any) -> list[RunSummary]:
        self._note("runnable")
        return super().runnable(*args, **kwargs)


def test_store_io_never_runs_on_the_event_loop(mod: ModuleType, url: str, tmp_path: Path) -> None:
    clock = FakeClock()
    rt = Runtime("memory://", clock=clock)
    rt.store = store = RecordingStore(str(tmp_path / "state.db"), url=url)
    try:
        rt.dispatch(mod.three, 1, run_id="queued")
        store.calls.clear()  # dispatch is a synchronous API: no loop there

        async def main() -> list[Any]:
            mod.FLAKY["left"] = 1
            runs = await asyncio.gather(
                rt.call(mod.three, 2, run_id="a"),
                rt.call(mod.parent, 3, run_id="b"),
                rt.call(mod.retried, 4, run_id="c"),
                rt.call(mod.three, 2, run_id="a"),  # the same run again: waits, then reads
            )
            await work(rt, drain=True, log=lambda _: None)
            with pytest.raises(ValueError):
                await rt.call(mod.fails, 1, run_id="d")
            return runs

        a, b, c, again = asyncio.run(main())
        calls = list(store.calls)
        assert (a, b, c) == (
            asyncio.run(mod.three.__wrapped__(2)),
            asyncio.run(mod.parent.__wrapped__(3)),
            5,
        )
        assert again == a
        assert rt.result("queued") == asyncio.run(mod.three.__wrapped__(1))
    finally:
        rt.close()
    kinds = {name for name, _, _ in calls}
    assert {"create", "get", "claim", "write", "runnable"} <= kinds
    assert len([c for c in calls if c[0] == "write"]) >= 20
    on_loop = [c for c in calls if c[2]]
    assert on_loop == [], f"store calls made on the event loop thread: {on_loop[:5]}"
    # All of them on the store's own thread, where its connection lives.
    assert {thread for _, thread, _ in calls} == {"resumable-sqlite_0"}


def test_a_slow_commit_does_not_stop_other_runs(mod: ModuleType, url: str, tmp_path: Path) -> None:
    """While one run's checkpoint write hangs in the store, another run's
    awaited code goes on; that code is what lets the write finish."""
    started, release = threading.Event(), threading.Event()
    events: list[str] = []

    class SlowStore(SQLiteStore):
        def _apply(self, write: Write) -> bool:
            if write.run_id == "slow" and dict(write.sets).get("seq") == 2:
                events.append("slow write started")
                started.set()
                # Released by the other run's awaited code, on the event loop.
                if not release.wait(timeout=20):
                    events.append("slow write timed out: the event loop was blocked")
                events.append("slow write done")
            return super()._apply(write)

    waiting: list[asyncio.Event] = []

    async def other_run_step() -> str:
        waiting[0].set()
        while not started.is_set():
            await asyncio.sleep(0.001)
        events.append("other run's step ran")
        release.set()
        return "released"

    mod.GATES["other"] = other_run_step
    rt = Runtime("memory://")
    rt.store = SlowStore(str(tmp_path / "state.db"), url=url)
    try:

        async def main() -> tuple[Any, Any]:
            waiting.append(asyncio.Event())
            other = asyncio.create_task(rt.call(mod.gated, "other", run_id="other"))
            under_way = asyncio.create_task(waiting[0].wait())
            # Its checkpoint is saved and its step is under way (or it failed).
            await asyncio.wait([other, under_way], return_when=asyncio.FIRST_COMPLETED)
            if other.done():
                under_way.cancel()
                await other  # its error
            slow = await rt.call(mod.three, 1, run_id="slow")
            return slow, await other

        slow, other = asyncio.run(main())
    finally:
        rt.close()
    assert events == ["slow write started", "other run's step ran", "slow write done"]
    assert slow == asyncio.run(mod.three.__wrapped__(1))
    assert other == "released"


# ----------------------------------------------------------------- group commit


def _hold_store_thread(store: Any) -> threading.Event:
    """Keep the store's thread busy until the returned event is set."""
    release = threading.Event()
    store._executor.submit(release.wait, 20)
    return release


def test_concurrent_runs_share_commits_and_all_complete(mod: ModuleType, url: str) -> None:
    rt = Runtime(url)
    store: Any = rt.store
    batches: list[int] = []
    flush = store._flush

    def counted() -> None:
        batches.append(len(store._queue))
        flush()

    store._flush = counted
    try:

        async def main() -> list[Any]:
            return await asyncio.gather(*(rt.call(mod.three, i, run_id=f"g{i}") for i in range(30)))

        got = asyncio.run(main())
    finally:
        rt.close()
    assert got == [asyncio.run(mod.three.__wrapped__(i)) for i in range(30)]
    # 30 runs x (its row + 3 checkpoints + completed) writes, in fewer
    # commits (a new run is stored already claimed: no claim of its own).
    assert sum(batches) == 30 * 5
    assert max(batches) > 1 and len(batches) < 30 * 5
    with Runtime(url) as again:
        assert {again.get(f"g{i}").seq for i in range(30)} == {3}
        assert {again.status(f"g{i}") for i in range(30)} == {"completed"}


def test_a_bad_write_in_a_shared_commit_fails_only_its_caller(
    mod: ModuleType, url: str, tmp_path: Path
) -> None:
    store = open_store(url)
    try:
        for run_id in ("a", "b"):
            store.create(RunRecord(run_id, "m:f", "sha256:0", b"{}", status="pending"))

        async def main() -> list[Any]:
            release = _hold_store_thread(store)
            pending = ("pending",)
            writes = asyncio.gather(
                store.commit(Write("test", "a", (("status", "running"),), None, pending)),
                store.commit(Write("test", "b", (("no_such_field", 1),), None, pending)),
                store.commit(Write("test", "missing", (("status", "running"),), None, pending)),
                return_exceptions=True,
            )
            await asyncio.sleep(0.01)  # all three queued behind the held thread
            release.set()
            return await writes

        ok, bad, missing = asyncio.run(main())
        assert ok is True and missing is False
        assert isinstance(bad, StoreError) and "no_such_field" in str(bad)
        a, b = store.get("a"), store.get("b")
        assert a is not None and a.status == "running"
        assert b is not None and b.status == "pending"
    finally:
        store.close()


@pytest.mark.parametrize("url", ["sqlite", "postgres"], indirect=True)
def test_a_fenced_out_checkpoint_in_a_shared_commit_fails_only_its_caller(url: str) -> None:
    """The checkpoints of concurrent runs go to the database as one
    statement (executemany): one whose run was taken over must be refused
    alone, the others applied, each caller told its own outcome."""
    store: Any = open_store(url)
    try:
        leases = {}
        for run_id in ("a", "b", "c", "d"):
            store.create(RunRecord(run_id, "m:f", "sha256:0", b"{}", status="pending"))
            assert store.lock(run_id)  # PostgreSQL: its lease
            leases[run_id] = store.claim(run_id, owner_name(), "sha256:0")
        taken = store.claim("c", "someone-else", "sha256:0")  # c's first lease is stale now
        assert taken is not None and taken.generation == 2

        async def main() -> list[Any]:
            store._flushing = True  # as if a commit were under way: the writes queue up
            writes = asyncio.gather(
                *(
                    store.commit(checkpoint_write(leases[r], f"cp {r}".encode(), 1, 7, "fp"))
                    for r in ("a", "b", "c", "d")
                )
            )
            await asyncio.sleep(0.01)
            assert len(store._queue) == 4  # one batch of four like writes
            store._executor.submit(store._flush)
            return await writes

        assert asyncio.run(main()) == [True, True, False, True]
        for run_id in ("a", "b", "d"):
            record = store.get(run_id)
            assert (record.checkpoint, record.seq) == (f"cp {run_id}".encode(), 1)
        c = store.get("c")
        assert (c.checkpoint, c.seq, c.generation) == (None, 0, 2)
    finally:
        store.close()


# ----------------------------------------------------------------- ownership


LOCK_HOLDER = """
import sys
from resumable.store import open_store

store = open_store(sys.argv[1])
assert store.lock(sys.argv[2])
print("locked", flush=True)
sys.stdin.readline()  # hold it until killed
"""


def test_lock_is_exclusive_across_processes_and_dies_with_its_owner(url: str) -> None:
    store = open_store(url)
    with subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, url, "owned"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        assert store.lock("owned") is False
        assert store.lock("owned") is False  # still, however often we ask
        assert store.lock("another run") is True  # only that run is taken
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
        assert store.lock("owned") is True  # at once: no lease to expire
        # One driver per run inside a process too.
        assert store.lock("owned") is False
        store.unlock("owned")
        assert store.lock("owned") is True
        holder.kill()  # (if an assertion failed before the SIGKILL)
    store.close()


@ENGINES
def test_two_calls_of_the_same_run_drive_it_once(mod: ModuleType, url: str) -> None:
    mod.steps.clear()
    expected = asyncio.run(mod.three.__wrapped__(6))
    mod.steps.clear()
    with Runtime(url) as rt, Runtime(url) as other:

        async def main() -> list[Any]:
            return await asyncio.gather(
                rt.call(mod.three, 6, run_id="same"),
                other.call(mod.three, 6, run_id="same"),
                rt.call(mod.three, 6, run_id="same"),
            )

        assert asyncio.run(main()) == [expected] * 3
        assert mod.steps == ["one", "two", "three"]
        assert rt.get("same").seq == 3


RACER = """
import importlib, json, sys
import resumable

sys.path.insert(0, sys.argv[2])
mod = importlib.import_module("smod")
rt = resumable.Runtime(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps(rt.run(mod.race, 5, run_id="race")), flush=True)
"""


def test_two_processes_racing_for_a_run_make_each_step_once(
    mod: ModuleType, url: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.log"
    env = {**os.environ, "STORE_TEST_EFFECTS": str(effects)}
    folder = str(Path(mod.__file__).parent)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, folder],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for p in racers:
            assert p.stdout is not None and p.stderr is not None
            if p.stdout.readline() != "ready\n":
                p.kill()
                pytest.fail(f"a racer did not start: {p.stderr.read()}")
        for p in racers:  # both go at once
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=60) for p in racers]
    finally:
        for p in racers:
            p.kill()
            p.communicate()  # and close its pipes
    assert [p.returncode for p in racers] == [0, 0], [err for _, err in outputs]
    assert [json.loads(out) for out, _ in outputs] == [0 + 1 + 2 + 3 + 4] * 2
    lines = effects.read_text().splitlines()
    assert [line.split()[0] for line in lines] == [f"step{i}" for i in range(5)]
    assert len({line.split()[1] for line in lines}) == 1  # one driver did them all
    with Runtime(url) as rt:
        assert (rt.status("race"), rt.get("race").seq) == ("completed", 5)


# ----------------------------------------------------------------- corrupt checkpoints


def _flip(blob: bytes) -> bytes:
    middle = len(blob) // 2
    return blob[:middle] + bytes([blob[middle] ^ 0x01]) + blob[middle + 1 :]


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_flip, id="flipped-bit"),
        pytest.param(
            lambda b: b[:40] + bytes(x ^ 0xFF for x in b[40:60]) + b[60:], id="flipped-bytes"
        ),
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"", id="empty"),
    ],
)
def test_corrupt_checkpoint_blocks_the_run_and_runs_nothing(
    mod: ModuleType, url: str, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    with Runtime(url, on_checkpoint=crash_at(2)) as rt, pytest.raises(Crash):
        rt.run(mod.three, 7, run_id="bad")
    db = tmp_path / "state.db"
    [(good,)] = rows(db, "SELECT checkpoint FROM runs WHERE run_id='bad'")
    broken = damage(good)
    assert broken != good
    rows(db, "UPDATE runs SET checkpoint = ? WHERE run_id = 'bad'", broken)
    mod.steps.clear()
    with Runtime(url) as rt:
        with pytest.raises(CheckpointError) as info:
            rt.run(mod.three, run_id="bad")
        assert str(info.value).startswith("run 'bad': ")
        record = rt.get("bad")
        assert mod.steps == []  # nothing ran from a wrong state
        assert record.status == "blocked"
        assert record.reason is not None and record.reason.startswith(
            "CheckpointError: run 'bad': "
        )
        assert (record.seq, record.checkpoint) == (2, broken)  # left as it was, for a look
        with pytest.raises(CheckpointError, match="run 'bad'"):
            rt.result("bad")
        # Retrying does not make it decode either.
        with pytest.raises(CheckpointError):
            rt.retry("bad")
        assert rt.status("bad") == "blocked" and mod.steps == []


def test_no_damaged_checkpoint_decodes_into_another_state(mod: ModuleType, url: str) -> None:
    """Every single-byte change and every truncation of a real checkpoint is
    refused with CheckpointError: none decodes into different locals."""
    machine = mod.three.machine()
    blobs: list[bytes] = []
    with Runtime(
        url, on_checkpoint=lambda info: blobs.append(rt.get(info.run_id).checkpoint)
    ) as rt:
        rt.run(mod.three, 123456789, b=-98765, run_id="r")
    assert len(blobs) == 3
    for blob in blobs:
        damaged = [blob[:n] for n in range(len(blob))]
        for i in range(len(blob)):
            for mask in (0x01, 0x20, 0x80, 0xFF):
                damaged.append(blob[:i] + bytes([blob[i] ^ mask]) + blob[i + 1 :])
        intact = decode_checkpoint(blob, machine, run_id="r")
        refused = 0
        for bad in damaged:
            try:
                point = decode_checkpoint(bad, machine, run_id="r")
            except CheckpointError as e:
                assert str(e).startswith("run 'r': ")
                refused += 1
            else:  # only a change that means the same (hex digits of the checksum in capitals)
                assert point == intact, bad
                assert bad.lower() == blob.lower()
        assert refused >= len(damaged) - 8


def test_checkpoint_of_another_function_is_refused(
    mod: ModuleType, url: str, tmp_path: Path
) -> None:
    with Runtime(url, on_checkpoint=crash_at(1)) as rt:
        with pytest.raises(Crash):
            rt.run(mod.retried, 1, run_id="other")
        with pytest.raises(Crash):
            rt.run(mod.three, 1, run_id="mine")
    db = tmp_path / "state.db"
    [(foreign,)] = rows(db, "SELECT checkpoint FROM runs WHERE run_id='other'")
    rows(db, "UPDATE runs SET checkpoint = ? WHERE run_id = 'mine'", foreign)
    mod.steps.clear()
    with Runtime(url) as rt:
        with pytest.raises(CheckpointError) as info:
            rt.run(mod.three, run_id="mine")
        assert str(info.value) == (
            "run 'mine': the checkpoint is one of 'smod:retried', not of smod:three"
        )
        assert rt.status("mine") == "blocked"
    assert mod.steps == []
