"""resumable: async functions that pick up where they left off.

Every `await` in a function decorated with `@resumable.function` is a
checkpoint. `resumable compile` turns each decorated function into a state
machine (in `__resumable__/` beside its module); at run time a `Runtime`
drives that machine and saves `(state, live locals)` as JSON at every await.

Layout of this package (the runtime; the compiler is `resumable_compiler`):

    function.py  the decorator, native mode, calls between compiled functions
    runtime.py   Runtime: start, resume and end runs; dispatch; the default runtime
    run.py       one run being driven: checkpoints, child runs, retries, keys
    driver.py    runs a machine's states, routes exceptions, awaits
    retry.py     retry policies and the clock
    waits.py     durable waits: sleep, sleep_until, wait_event
    fanout.py    gather, race, any: concurrent children, decisions committed
    cancel.py    Runtime.cancel and timeouts: RunCancelled at a run's await
    queues.py    Queue: concurrency, rate and priority of dispatched runs; dedup keys
    store/       where runs live: memory://, sqlite:///; ownership locks
    worker.py    the worker: drives dispatched runs
    config.py    store URL and modules from the environment or pyproject.toml
    machine.py   what generated code is made of (Machine, Locals, helpers)
    loops.py     checkpointable for-loop cursors
    codec/       exact, safe JSON encoding of checkpoints
    loader.py    finds and loads generated modules; staleness
    compile_on_load.py  autocompile(): the development loop compiles stale modules
    locations.py tracebacks of compiled code name the source lines
    errors.py    the exceptions
    cli.py       the `resumable` command (runs_report.py: `resumable runs` output,
                 stored_repr.py: stored values as reprs, await_place.py: the await
                 a run stands at after a deploy)
    fastapi.py   the FastAPI integration (runs_api.py: its optional HTTP endpoints)
    testing/     assert_equivalent, fault schedules, strategies, the pytest plugin

Importing this package never imports libcst or jinja2.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .codec import register_alias, register_codec
from .compile_on_load import autocompile
from .errors import (
    CheckpointError,
    CompileError,
    DuplicateRun,
    InternalError,
    NondeterminismError,
    ResumableError,
    RunCancelled,
    RunConflict,
    SerializationError,
    StaleCodeError,
    StepAborted,
    StoreError,
    StoreUnavailable,
    VersionMismatch,
)
from .fanout import any_ as any
from .fanout import gather, race
from .function import Function, function
from .queues import Queue
from .retry import Retry
from .run import CheckpointInfo, idempotency_key
from .runtime import Runtime, configure
from .waits import sleep, sleep_until, wait_event

__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "CompileError",
    "DuplicateRun",
    "Function",
    "InternalError",
    "NondeterminismError",
    "Queue",
    "ResumableError",
    "Retry",
    "RunCancelled",
    "RunConflict",
    "Runtime",
    "SerializationError",
    "StaleCodeError",
    "StepAborted",
    "StoreError",
    "StoreUnavailable",
    "VersionMismatch",
    "__version__",
    "any",
    "autocompile",
    "configure",
    "function",
    "gather",
    "idempotency_key",
    "race",
    "register_alias",
    "register_codec",
    "sleep",
    "sleep_until",
    "wait_event",
]
