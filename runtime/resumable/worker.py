"""The worker: drives the runs of a store, many at once, until stopped.

    resumable worker --store sqlite:///state.db --module shop.orders --concurrency 8
    resumable worker --store sqlite:///state.db --module shop.orders --drain

Each poll it asks the store which functions have runnable top-level runs
(pending, running with no live owner, waiting and due), keeps those it has
imported, and pages through their runs, oldest first, taking ownership of
each it can until its slots are full: runs of functions it does not import
never hide the rest. Child runs are driven by their parents. A run waiting
to try a step again is a row with a wake time, not a task: it holds no slot.

A BaseException raised by a step (KeyboardInterrupt, SystemExit,
GeneratorExit) blocks that run (StepAborted); the worker handles SIGINT and
SIGTERM itself, and goes on with its other runs. When the store refuses
reads or writes (disk full, read-only, locked), the worker backs off (0.5 s
doubling to 30 s, one log line each time), starts nothing until a probe
write succeeds, and then goes on; the delay starts again from 0.5 s only
once a run got its writes through, so a store that takes small writes but
not a run's checkpoint is tried less and less often. With `--drain` a
read-only store ends it (exit status 1). Log lines are printable: text from
exceptions or rows (control characters, lone surrogates) is escaped.

`--drain`: exit once nothing is left that this worker could drive now or
later (failed and blocked runs are not runnable; a run another process owns
is that process's). SIGTERM or SIGINT: stop taking runs, cancel the running
ones (each stays at its last checkpoint, resumable, and writes nothing more)
and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import schedules
from .errors import OwnershipLost, RunCancelled, StepAborted, StoreUnavailable
from .function import Function, forget_module, registered
from .ids import shown
from .lifecycle import BLOCKING, Finished, drive_owned
from .roots import in_project, project_roots
from .run import CURRENT, one_line
from .runtime import Runtime
from .source import display_path, module_name_for
from .store import RunSummary, describe
from .store.base import Schedule, owner_name
from .store.sqlite import DamagedText

__all__ = ["ModuleImportError", "WorkerReport", "import_modules", "work"]

PAGE = 100
#: Seconds between looks at the store; on a store that tells the worker of
#: changes (PostgreSQL's LISTEN/NOTIFY), only a fallback.
POLL, FALLBACK_POLL = 0.2, 2.0
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0


@dataclass
class WorkerReport:
    completed: int = 0
    failed: int = 0  # failed or blocked
    interrupted: int = 0
    waiting: int = 0  # parked to try a step again later
    lost: int = 0  # taken over by another driver
    cancelled: int = 0  # ended cancelled (Runtime.cancel)
    unknown: set[str] = field(default_factory=set)  # functions not imported here
    store_error: str | None = None  # why a draining worker gave up


class ModuleImportError(Exception):
    """A user's module named to the worker cannot be imported."""


def import_modules(names: Iterable[str]) -> None:
    """Import the user's modules: dotted names (found from the working
    directory too) or paths of .py files. Raises ModuleImportError."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        if name.endswith(".py") or os.sep in name:
            path = os.path.abspath(name)
            dotted = module_name_for(path)
            root = path
            for _ in range(dotted.count(".") + 1):
                root = os.path.dirname(root)
            if root not in sys.path:
                sys.path.insert(0, root)
            name = dotted
        try:
            try:
                importlib.import_module(name)
            except BaseException:
                # Its decorated functions defined before the failure were
                # registered: a module that did not import drives nothing.
                forget_module(name)
                raise
        except ModuleNotFoundError as e:
            if e.name is None or not (name == e.name or name.startswith(e.name + ".")):
                raise  # the module itself imports something missing: its own traceback
            raise ModuleImportError(
                f"cannot import {name!r}: no such module from {os.getcwd()} "
                "(run the worker from the folder that holds your package, "
                "or pass the path of the .py file)"
            ) from None


class _Backoff:
    """After the store refused work: wait 0.5 s, doubling up to 30 s (one
    log line each time), then start nothing until a probe write succeeds.

    The delay goes back to 0.5 s only once a run got its writes through (it
    ended, or waits to try again): a store that takes the probe's small write
    but refuses a run's checkpoint (a nearly full disk, a size limit) is
    tried less and less often, not every 0.5 s."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.delay = 0.0
        self.until = 0.0
        self.waiting = False  # for the delay to pass and a probe to succeed

    @property
    def active(self) -> bool:
        return self.waiting

    def failed(self, error: BaseException) -> None:
        if self.waiting and time.monotonic() < self.until:
            return  # another run failed with the same store: already waiting
        self.delay = min(self.delay * 2, _BACKOFF_MAX) if self.delay else _BACKOFF_FIRST
        self.until = time.monotonic() + self.delay
        self.waiting = True
        self.log(f"store unavailable: {one_line(error, 400)}; trying again in {self.delay:g} s")

    def recovered(self) -> None:
        """The probe write succeeded: start runs again."""
        if self.waiting:
            self.log("store available again: going on")
        self.waiting = False

    def succeeded(self) -> None:
        """A run's writes went through: the next failure waits 0.5 s again."""
        if not self.waiting:
            self.delay = 0.0


class _Worker:
    def __init__(
        self, rt: Runtime, log: Callable[[str], None], discover: bool, concurrency: int
    ) -> None:
        self.rt = rt
        self.store = rt.store
        self.log = log
        self.discover = discover
        self.concurrency = concurrency
        self.report = WorkerReport()
        self.tasks: dict[asyncio.Task[Any], str] = {}
        self.backoff = _Backoff(log)
        self.refused: set[str] = set()  # functions whose source is outside the project
        self.unscheduled: set[str] = set()  # functions of schedules not imported here
        self.noted: set[str] = set()  # schedules whose failure to fire was logged
        self.next_firing: float | None = None  # the next firing time after the last look
        #: Set when the store says runs became runnable (LISTEN/NOTIFY), if it can.
        self.changed: asyncio.Event | None = None
        #: When runs a queue's limits held back at the last look may start (None: none were).
        self.held_back: float | None = None
        #: The functions of the last look that filled every free slot, and
        #: until when (time.monotonic) the next look may reuse them (start_runs).
        self.backlog: tuple[list[str], float] | None = None

    # -- what to drive --------------------------------------------------------------

    def function(self, function_id: str, sample: RunSummary | None) -> Function | None:
        fn = registered(function_id)
        if fn is None and self.discover and sample and function_id not in self.report.unknown:
            fn = self._discover(sample.function, sample.source, f"run {shown(sample.run_id)}")
        if fn is None and function_id not in self.report.unknown:
            self.report.unknown.add(function_id)
            if function_id not in self.refused:
                run = shown(sample.run_id) if sample else "-"
                self.log(f"run {run}: {shown(function_id)} is not imported here; skipped")
        return fn

    def _discover(self, function_id: str, source: str, what: str) -> Function | None:
        """Import the module of a run's (or a schedule's: `what`) function
        from the source file the run recorded when it started, if that file
        is in the project and still names the same module."""
        module = function_id.split(":", 1)[0]
        if not source or not os.path.isfile(source) or module_name_for(source) != module:
            return None
        if not in_project(source):
            self.refused.add(function_id)
            roots = ", ".join(project_roots()) or "none"
            self.log(
                f"{what}: not importing {shown(source)}: it is outside the "
                f"project (roots: {roots}); left for a worker that has {shown(module)} "
                "(pass --module, or add its folder to [tool.resumable] roots)"
            )
            return None
        try:
            import_modules([source])
        except Exception as e:
            self.log(f"{what}: importing {module} from {source} failed: {e!r:.300}")
            return None
        fn = registered(function_id)
        if fn is not None:
            self.log(f"imported {module} from {display_path(source)}")
        return fn

    async def ours(self, now: float) -> list[str]:
        """The functions with runnable runs that this worker drives; rows of
        damaged function names are blocked on the way."""
        store = self.store
        functions = await store.io(store.runnable_functions, now)
        out = []
        for function_id in sorted(functions):
            if isinstance(function_id, DamagedText):
                for row in await store.io(store.runnable, now, [function_id], queued=True):
                    await self.block(row)
                continue
            if registered(function_id) is not None:
                out.append(function_id)
                continue
            if function_id in self.report.unknown:
                continue
            sample = await store.io(store.runnable, now, [function_id], limit=1, queued=True)
            if self.function(function_id, sample[0] if sample else None) is not None:
                out.append(function_id)
        return out

    async def block(self, row: RunSummary) -> None:
        reason = f"damaged: {row.damaged or 'its function name is not valid UTF-8'}"
        if await self.store.io(self.store.block_damaged, row.rowid, reason):
            self.report.failed += 1
            self.log(f"run {shown(row.run_id)}: blocked: {reason}")

    # -- firing schedules -----------------------------------------------------------

    async def fire_schedules(self, now: float) -> None:
        """Create the run of the latest due firing of each due schedule whose
        function this worker drives (missed earlier firings are skipped);
        the run is then an ordinary pending run. The store advances the
        schedule and creates the run in one transaction, only if no other
        worker fired it meanwhile."""
        store = self.store
        for schedule in await store.io(store.due_schedules, now):
            fn = self.scheduled(schedule)
            if fn is None:
                continue
            what = f"schedule {shown(schedule.schedule_id)}"
            try:
                fire = schedules.firing(schedule, fn, now)
            except Exception as e:  # its compiled code cannot be loaded: fired once it can
                self.note(schedule.schedule_id, f"{what}: not fired: {one_line(e, 400)}")
                continue
            if fire is None:
                continue
            fired_at, next_at, record = fire
            if await store.io(store.fire_schedule, schedule, fired_at, next_at, record):
                self.noted.discard(schedule.schedule_id)
                self.log(f"{what}: fired run {shown(record.run_id)}")
        self.next_firing = await store.io(store.next_schedule, now)

    def _until_next_firing(self, poll: float) -> float:
        """Seconds to wait for the next poll: at most `poll`, and no later
        than the next firing of a schedule (none is due now: the wait is
        never 0)."""
        if self.next_firing is None:
            return poll
        return max(0.0, min(poll, self.next_firing - self.rt.clock.time()))

    def scheduled(self, schedule: Schedule) -> Function | None:
        """The function of a due schedule, if this worker drives it."""
        what = f"schedule {shown(schedule.schedule_id)}"
        if schedule.damaged is not None:
            self.note(schedule.schedule_id, f"{what}: not fired: damaged: {schedule.damaged}")
            return None
        function_id = schedule.function
        fn = registered(function_id)
        if fn is None and self.discover and function_id not in self.unscheduled:
            fn = self._discover(function_id, schedule.source, what)
        if fn is None and function_id not in self.unscheduled:
            self.unscheduled.add(function_id)
            if function_id not in self.refused:
                self.log(f"{what}: {shown(function_id)} is not imported here; not fired")
        return fn

    def note(self, key: str, line: str) -> None:
        """Log `line` once until `key` is fired again (polls repeat it)."""
        if key not in self.noted:
            self.noted.add(key)
            self.log(line)

    # -- starting runs --------------------------------------------------------------

    async def start_runs(self) -> int:
        """Start runs in the free slots; how many were started."""
        self.held_back = None
        free = self.concurrency - len(self.tasks)
        if free <= 0:
            return 0
        store = self.store
        now = self.rt.clock.time()
        # With more runnable runs than slots, the loop comes back here each
        # time a run ends: the functions the last look found (a scan of
        # every runnable row, O(backlog) on the server) are reused for one
        # poll interval. A function whose runs became runnable meanwhile is
        # found at the next full look, at most POLL seconds later.
        if self.backlog is not None and time.monotonic() < self.backlog[1]:
            functions = self.backlog[0]
        else:
            functions = await self.ours(now)
        self.backlog = None
        started = await self.start_queued(now, functions, free)
        running = set(self.tasks.values())
        after = (-1.0, -1)
        while started < free and functions:
            # A page a little longer than the free slots (a run another
            # worker locks meanwhile is skipped), not PAGE rows each time a
            # run ends: each row is a lease probe on the server and a
            # summary decoded here.
            limit = min(PAGE, 2 * (free - started) + 2)
            page = await store.io(store.runnable, now, functions, after=after, limit=limit)
            for row in page:
                after = (row.created_at, row.rowid)
                if row.damaged is not None:
                    await self.block(row)
                    continue
                fn = registered(row.function)
                if fn is None or row.run_id in running or not await store.lock_async(row.run_id):
                    continue  # another process (or task) drives it
                self.log(f"run {shown(row.run_id)}: {row.status} -> driving {row.function}")
                self._start(fn, row.run_id)
                started += 1
                if started >= free:
                    self.backlog = (functions, time.monotonic() + POLL)
                    break
            if len(page) < limit:
                break
        return started

    async def start_queued(self, now: float, functions: list[str], free: int) -> int:
        """Start runs of queues (queues.py) in up to `free` slots: the store
        counts each queue's runs driven now and its starts in the rate
        window, and owns and marks running those within its limits, in one
        transaction. Runs held back by a limit set `held_back`."""
        store = self.store
        started = 0
        for queue in sorted(await store.io(store.runnable_queues, now, functions)):
            if started >= free:
                break
            claim = await store.io(
                store.claim_queued, queue, now, functions, owner_name(), free - started
            )
            for row in claim.damaged:
                await self.block(row)
            if claim.retry_at is not None:
                held = self.held_back
                self.held_back = claim.retry_at if held is None else min(held, claim.retry_at)
            for run_id, function_id in claim.taken:
                fn = registered(function_id)
                if fn is None:  # not one of ours after all: left for another worker
                    store.unlock(run_id)
                    continue
                self.log(f"run {shown(run_id)}: queue {shown(queue)} -> driving {function_id}")
                self._start(fn, run_id)
                started += 1
        return started

    def _start(self, fn: Function, run_id: str) -> None:
        task = asyncio.create_task(self._drive(fn, run_id))
        self.tasks[task] = run_id
        task.add_done_callback(self.finished)

    def _held_delay(self, poll: float) -> float:
        """Seconds until runs a queue's limits held back are looked at again:
        when its rate window lets one start (at most `poll`); a full queue
        at the next poll (or when one of this worker's runs ends), never in
        a busy loop."""
        if self.held_back is None:
            return poll
        poll = min(poll, POLL)  # a slot frees when a run ends: nothing notifies that
        delay = self.held_back - self.rt.clock.time()
        return poll if delay <= 0 else min(poll, max(0.02, delay))

    async def _drive(self, fn: Function, run_id: str) -> Any:
        try:
            return await drive_owned(self.rt, fn, run_id, contain=True)
        except RunCancelled as e:
            if e.run_id != run_id:
                raise
            return e  # it ended cancelled (not this worker's task)
        finally:
            # Off the event loop: on PostgreSQL the release is a round trip
            # and a commit, which would hold up every other run's step.
            # Shielded: a cancellation while it waits its turn must not drop
            # it (the run would stay owned by this worker, driven by none).
            await asyncio.shield(self.store.io(self.store.unlock, run_id))

    def finished(self, task: asyncio.Task[Any]) -> None:
        run_id = shown(self.tasks.pop(task))
        report = self.report
        if task.cancelled():
            report.interrupted += 1
            return
        error = task.exception()
        if error is None or not isinstance(error, (StoreUnavailable, OwnershipLost)):
            self.backoff.succeeded()  # its end (or wait) was written
        if error is None:
            result = task.result()
            if isinstance(result, Finished):
                report.completed += 1
                self.log(f"run {run_id}: completed")
            elif isinstance(result, RunCancelled):
                report.cancelled += 1
                self.log(f"run {run_id}: cancelled")
            else:
                report.waiting += 1
                if result.wake_at is None:
                    self.log(f"run {run_id}: {result.reason or 'waiting for an event'}")
                else:
                    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.wake_at))
                    reason = result.reason or "waiting"
                    # (a sleep's reason names its time already)
                    due = "" if reason.startswith("sleeping until") else f" (due {when})"
                    self.log(f"run {run_id}: {reason}{due}")
        elif isinstance(error, OwnershipLost):
            report.lost += 1
            self.log(str(error))
        elif isinstance(error, StoreUnavailable):
            report.interrupted += 1
            self.backoff.failed(error)
        elif isinstance(error, Exception):
            report.failed += 1
            status = "blocked" if isinstance(error, BLOCKING) else "failed"
            self.log(f"run {run_id}: {status}: {one_line(error, 1000)}")
        else:
            report.interrupted += 1

    # -- the loop -------------------------------------------------------------------

    async def loop(self, stop: asyncio.Event, drain: bool, poll: float | None) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        listener = self._listen()
        if poll is None:  # a store that tells of changes is looked at rarely
            poll = FALLBACK_POLL if listener is not None else POLL
        try:
            while not stop.is_set():
                if self.backoff.active and not await self._recovered(stop, stopping, drain):
                    if self.report.store_error is not None:
                        return
                    continue
                try:
                    await self.fire_schedules(self.rt.clock.time())
                    started = await self.start_runs()
                    if drain and not self.tasks and not started:
                        wake = await self._next_wake()
                        if self.held_back is not None:  # a queue's runs wait for its limits
                            await _sleep_or_stop(stop, self._held_delay(poll))
                            continue
                        if wake is None:
                            return
                        await _sleep_or_stop(stop, max(0.0, min(wake - self.rt.clock.time(), poll)))
                        continue
                except StoreUnavailable as e:
                    if drain and e.permanent:
                        self.report.store_error = str(e)
                        return
                    self.backoff.failed(e)
                    continue
                await self._wait(
                    stopping, await self._until_due(self._held_delay(poll), listener is not None)
                )
        finally:
            if listener is not None:
                await asyncio.to_thread(listener.close)
            stopping.cancel()
            for task in list(self.tasks):
                task.cancel()
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _recovered(self, stop: asyncio.Event, stopping: Any, drain: bool) -> bool:
        """After the backoff delay, whether the store takes writes again."""
        await self._wait(stopping, max(0.0, self.backoff.until - time.monotonic()))
        if stop.is_set() or time.monotonic() < self.backoff.until:
            return False
        probe = getattr(self.store, "probe", None)
        try:
            if probe is not None:
                await self.store.io(probe)
        except StoreUnavailable as e:
            if drain and e.permanent:
                self.report.store_error = str(e)
            else:
                self.backoff.failed(e)
            return False
        self.backoff.recovered()
        return True

    def _listen(self) -> Any:
        """Have the store tell of changes (PostgreSQL's LISTEN), if it can."""
        listen = getattr(self.store, "listen", None)
        if listen is None:
            return None
        loop = asyncio.get_running_loop()
        changed = self.changed = asyncio.Event()
        return listen(lambda: loop.call_soon_threadsafe(changed.set))

    async def _until_due(self, poll: float, told: bool) -> float:
        """Seconds to wait before looking again: at most `poll`, no later
        than the next firing; on a store that tells of changes, also no
        later than the next wake time of a waiting run (nothing else would
        wake the worker for it)."""
        wait = self._until_next_firing(poll)
        # Every slot busy: nothing can start before a run ends, which ends
        # the wait anyway (_wait), so the next wake time is not looked up.
        if told and len(self.tasks) < self.concurrency:
            wake = await self._next_wake()
            if wake is not None:
                wait = max(0.0, min(wait, wake - self.rt.clock.time()))
        return wait

    async def _wait(self, stopping: Any, seconds: float) -> None:
        waits = [*self.tasks, stopping]
        changed = None
        if self.changed is not None:
            changed = asyncio.ensure_future(self.changed.wait())
            waits.append(changed)
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if changed is not None:
                changed.cancel()
                assert self.changed is not None
                self.changed.clear()

    async def _next_wake(self) -> float | None:
        """When a waiting run this worker could take is due; None if there is
        none. Its function may not be imported yet: then it is imported now
        (without --module), as it would be when the run is due."""
        store = self.store
        functions = await self.ours(math.inf)
        return await store.io(store.next_wake, functions)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def work(
    rt: Runtime,
    *,
    concurrency: int = 1,
    drain: bool = False,
    poll: float | None = None,
    log: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    discover: bool = False,
) -> WorkerReport:
    """Drive runs until `stop` is set (or, with `drain`, nothing is left).
    `poll`: seconds between looks at the store (None: POLL, or
    FALLBACK_POLL on a store that tells of changes: PostgreSQL).
    `discover`: import the module of a run's function, when it is not
    imported yet, from the source file the run recorded (in the project only)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    log = _printable(log)
    worker = _Worker(rt, log, discover, concurrency)
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()
    loop.set_task_factory(_containing(factory))
    try:
        await worker.loop(stop if stop is not None else asyncio.Event(), drain, poll)
    finally:
        loop.set_task_factory(factory)
    report = worker.report
    if report.unknown:
        log(
            "not driven here (their modules are not imported; pass --module): "
            + ", ".join(shown(f) for f in sorted(report.unknown))
        )
    return report


def _printable(log: Callable[[str], None]) -> Callable[[str], None]:
    """`log`, handed each line with what a terminal should not get raw
    (control and bidirectional characters, lone surrogates from an exception
    message) escaped: a line always prints, on one line."""

    def write(line: str) -> None:
        log(shown(line))

    return write


def _containing(factory: Any) -> Any:
    """A task factory (over `factory`, the loop's own, if any) for tasks
    created by steps: a KeyboardInterrupt or SystemExit they raise would stop
    the event loop (asyncio re-raises those), and a GeneratorExit would reach
    the step that awaits the task as `throw(GeneratorExit)`, which closes the
    worker's coroutines: each becomes a StepAborted of the task instead."""

    def create(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Future[Any]:
        if CURRENT.get() is not None and asyncio.iscoroutine(coro):
            coro = _contain(coro)
        if factory is not None:
            return factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    return create


async def _contain(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        return await coro
    except (KeyboardInterrupt, SystemExit, GeneratorExit) as e:
        raise StepAborted(f"a task created by a step raised {one_line(e)}") from e


def run_worker(
    store: str,
    modules: list[str],
    *,
    concurrency: int,
    drain: bool,
    poll: float | None,
    origin: str = "the argument",
) -> int:
    """The `resumable worker` command. Without `modules`, each run's module
    is imported from the source file it recorded (in the project only)."""
    import_modules(modules)
    rt = Runtime(store)

    async def main() -> WorkerReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        mode = "until nothing is left" if drain else "until stopped"
        print(
            f"resumable worker: store {describe(rt.url)} (from {origin}), "
            f"concurrency {concurrency}, {mode}",
            flush=True,
        )
        if not modules:
            print(
                "resumable worker: no --module given: importing each run's module from the "
                "source file it was started from, if it is in the project "
                f"({', '.join(project_roots()) or 'no roots'})",
                flush=True,
            )
        return await work(
            rt,
            concurrency=concurrency,
            drain=drain,
            poll=poll,
            stop=stop,
            log=lambda line: print(line, flush=True),
            discover=not modules,
        )

    try:
        report = asyncio.run(main())
    finally:
        rt.close()
    print(
        f"resumable worker: {report.completed} completed, {report.failed} failed or blocked, "
        f"{report.cancelled} cancelled, {report.waiting} waiting, "
        f"{report.interrupted} left to resume",
        flush=True,
    )
    if report.store_error is not None:
        print(f"resumable worker: gave up: {report.store_error}", file=sys.stderr, flush=True)
        return 1
    return 0
