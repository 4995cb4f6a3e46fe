"""The worker: drives the runs of a store, many at once, until stopped.

    resumable worker --store sqlite:///state.db --module shop.orders --concurrency 8
    resumable worker --store sqlite:///state.db --module shop.orders --drain

It picks top-level runs that are pending, running with no live owner (their
process died), or waiting and due, takes ownership of each (store locks, so
no two drivers ever drive the same run), and drives it in a task of its event
loop. Child runs are driven by their parents. Runs of functions whose module
was not imported here are left for another worker.

`--drain`: exit once nothing is left that this worker could drive now or
later (failed and blocked runs are not runnable; a run another process owns
is that process's). SIGTERM or SIGINT: stop taking runs, cancel the running
ones (each stays at its last checkpoint, resumable) and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .function import Function, registered
from .runtime import BLOCKING, Runtime
from .source import display_path, module_name_for
from .store import RunRecord

__all__ = ["ModuleImportError", "WorkerReport", "import_modules", "work"]


@dataclass
class WorkerReport:
    completed: int = 0
    failed: int = 0  # failed or blocked
    interrupted: int = 0
    unknown: set[str] = field(default_factory=set)  # functions not imported here


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
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is None or not (name == e.name or name.startswith(e.name + ".")):
                raise  # the module itself imports something missing: its own traceback
            raise ModuleImportError(
                f"cannot import {name!r}: no such module from {os.getcwd()} "
                "(run the worker from the folder that holds your package, "
                "or pass the path of the .py file)"
            ) from None


async def work(
    rt: Runtime,
    *,
    concurrency: int = 1,
    drain: bool = False,
    poll: float = 0.2,
    log: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    discover: bool = False,
) -> WorkerReport:
    """Drive runs until `stop` is set (or, with `drain`, nothing is left).
    `discover`: import the module of a run's function, when it is not
    imported yet, from the source file the run recorded (see `_discover`)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    stop = stop if stop is not None else asyncio.Event()
    report = WorkerReport()
    tasks: dict[asyncio.Task[object], str] = {}
    stopping = asyncio.ensure_future(stop.wait())

    def finished(task: asyncio.Task[object]) -> None:
        run_id = tasks.pop(task)
        if task.cancelled():
            report.interrupted += 1
            return
        error = task.exception()
        if error is None:
            report.completed += 1
            log(f"run {run_id}: completed")
        elif isinstance(error, Exception):
            report.failed += 1
            status = "blocked" if isinstance(error, BLOCKING) else "failed"
            log(f"run {run_id}: {status}: {type(error).__name__}: {error}".splitlines()[0])
        else:
            report.interrupted += 1

    while not stop.is_set():
        started = await _start_runs(rt, concurrency - len(tasks), tasks, report, log, discover)
        for task in started:
            task.add_done_callback(finished)
        if drain and not tasks and not started:
            wake = await _next_wake_of_ours(rt, report, log, discover)
            if wake is None:
                break
            await _sleep_or_stop(stop, max(0.0, min(wake - rt.clock.time(), poll)))
            continue
        if tasks:
            await asyncio.wait(
                [*tasks, stopping],
                timeout=poll,
                return_when=asyncio.FIRST_COMPLETED,
            )
        else:
            await _sleep_or_stop(stop, poll)
    stopping.cancel()
    for task in list(tasks):
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    if report.unknown:
        log(
            "not driven here (their modules are not imported; pass --module): "
            + ", ".join(sorted(report.unknown))
        )
    return report


async def _start_runs(
    rt: Runtime,
    free: int,
    tasks: dict[asyncio.Task[object], str],
    report: WorkerReport,
    log: Callable[[str], None],
    discover: bool,
) -> list[asyncio.Task[object]]:
    if free <= 0:
        return []
    store = rt.store
    running = set(tasks.values())
    candidates = await store.io(store.runnable, rt.clock.time(), free + len(running) + 100)
    started: list[asyncio.Task[object]] = []
    for record in candidates:
        if len(started) >= free:
            break
        if record.run_id in running:
            continue
        fn = _function_of(record, report, log, discover)
        if fn is None:
            if record.function not in report.unknown:
                report.unknown.add(record.function)
                log(f"run {record.run_id}: {record.function} is not imported here; skipped")
            continue
        if not store.lock(record.run_id):
            continue  # another process (or task) drives it
        log(f"run {record.run_id}: {record.status} -> driving {record.function}")
        task: asyncio.Task[object] = asyncio.create_task(rt._drive_locked(fn, record.run_id))
        tasks[task] = record.run_id
        started.append(task)
    return started


def _function_of(
    record: RunRecord, report: WorkerReport, log: Callable[[str], None], discover: bool
) -> Function | None:
    fn = registered(record.function)
    if fn is None and discover and record.function not in report.unknown:
        fn = _discover(record, log)
    return fn


def _discover(record: RunRecord, log: Callable[[str], None]) -> Function | None:
    """Import the module of a run's function from the source file the run
    recorded when it started, if that file still names the same module."""
    module = record.function.split(":", 1)[0]
    source = record.source
    if not source or not os.path.isfile(source) or module_name_for(source) != module:
        return None
    try:
        import_modules([source])
    except Exception as e:
        log(f"run {record.run_id}: importing {module} from {source} failed: {e!r:.300}")
        return None
    fn = registered(record.function)
    if fn is not None:
        log(f"imported {module} from {display_path(source)}")
    return fn


async def _next_wake_of_ours(
    rt: Runtime, report: WorkerReport, log: Callable[[str], None], discover: bool
) -> float | None:
    """When a waiting run this worker could take is due; None if there is none."""
    store = rt.store
    waiting = await store.io(store.list_runs, statuses=("waiting",), top_only=True)
    wakes = []
    for record in waiting:
        if _function_of(record, report, log, discover) is None or not store.lock(record.run_id):
            continue
        store.unlock(record.run_id)
        wakes.append(record.wake_at if record.wake_at is not None else rt.clock.time())
    return min(wakes, default=None)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def run_worker(
    store: str, modules: list[str], *, concurrency: int, drain: bool, poll: float
) -> int:
    """The `resumable worker` command. Without `modules`, each run's module
    is imported from the source file it recorded."""
    import_modules(modules)
    rt = Runtime(store)

    async def main() -> WorkerReport:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        mode = "until nothing is left" if drain else "until stopped"
        print(f"resumable worker: {store}, concurrency {concurrency}, {mode}", flush=True)
        if not modules:
            print(
                "resumable worker: no --module given: importing each run's module from the "
                "source file it was started from",
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
        f"{report.interrupted} left to resume",
        flush=True,
    )
    return 0
