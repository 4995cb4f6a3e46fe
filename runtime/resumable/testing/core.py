"""Check compiled functions against their originals.

    from resumable.testing import assert_equivalent
    assert_equivalent(checkout, "u1", "o1")

runs the original coroutine under asyncio (the oracle) and the compiled
machine with a crash injected right after every checkpoint -- each resume
starts from the JSON in the store, in a fresh machine -- and compares the
outcomes: the same result, or the same exception (type, args, attributes,
`__context__`/`__cause__` chain, `__suppress_context__`), and the same
awaited calls with equal arguments. On a difference the AssertionError
starts with the first divergence: the await (source line and text) at which
a local or an awaited call first differs, and both values.

Awaited calls are those of `step` (below) and of the function's *steps*:
the plain coroutine functions (not decorated, not resumable's or asyncio's)
that it, or a decorated function it names, names as a global; for the time
of a check each is replaced in its module by a recording wrapper (the
original and the compiled machine share the module's globals).

Time does not pass: the compiled run has a `FakeClock` (retry delays,
`resumable.sleep`, timeouts take no time) and the original runs on an event
loop whose time jumps to its next timer.

For tests of the compiler itself, `step` is an awaitable whose calls are
recorded and whose outcome is scripted:

    async def f(x):
        y = await step("fetch", x)       # returns a deterministic int, or raises
                                         # StepError at the calls the Script names
    outcome = run_original(f, 1, script=Script(fail_at={2}))
    outcome.calls                        # [("fetch", (1,)), ...]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..function import Function
from ..retry import NO_RETRY
from ..run import CheckpointInfo
from ..runtime import Runtime
from .clock import FakeClock, virtual_time_loop
from .trace import (
    AwaitRecord,
    AwaitTracer,
    discover_functions,
    discover_steps,
    intercepted,
    same,
    snapshot,
)

__all__ = [
    "Outcome",
    "Script",
    "SimulatedCrash",
    "StepError",
    "assert_equivalent",
    "exception_signature",
    "run_compiled",
    "run_original",
    "step",
]


class StepError(Exception):
    """Raised by `step` (and by recorded steps) at the calls a Script names."""


class SimulatedCrash(BaseException):
    """Stands for the process dying right after a checkpoint was saved."""


#: One awaited call: (label, args), or (label, args, kwargs) with keywords.
Call = tuple[Any, ...]


@dataclass
class Script:
    """Which awaited calls raise (1-based call numbers, over `step` and the
    recorded steps), and the calls made."""

    fail_at: frozenset[int] | set[int] = frozenset()
    calls: list[Call] = field(default_factory=list)
    #: For each call, the number of the await of the function's own body it
    #: was made under (0: before the first).
    call_awaits: list[int] = field(default_factory=list)
    #: The awaits of the function's own body reached so far.
    at: int = 0

    def record(self, call: Call) -> int:
        """Note a call; its number (1-based)."""
        self.calls.append(call)
        self.call_awaits.append(self.at)
        return len(self.calls)


_script: Script | None = None


def step_value(label: str, args: tuple[Any, ...]) -> int:
    """The deterministic result of `step(label, *args)`."""
    total = len(label) * 7
    for a in args:
        total += a if type(a) is int else len(repr(a))
    return total % 97


async def step(label: str, *args: Any) -> int:
    """A recorded, scripted awaited call (see the module docstring)."""
    script = _script if _script is not None else Script()
    n = script.record((label, args))
    if n in script.fail_at:
        raise StepError(label, n)
    return step_value(label, args)


@contextlib.contextmanager
def scripted(script: Script) -> Iterator[Script]:
    global _script
    previous, _script = _script, script
    try:
        yield script
    finally:
        _script = previous


class IdempotencyKey(str):
    """Stands, in a recorded call, for the n-th distinct key that
    `resumable.idempotency_key()` gave in the run (random natively, stable
    in a durable run: equivalence compares their order, not their text)."""

    def __repr__(self) -> str:
        return f"<idempotency key {self}>"


#: The keys `resumable.idempotency_key()` gave in the run being checked.
_keys: dict[str, int] | None = None


@contextlib.contextmanager
def keys_recorded() -> Iterator[None]:
    """Note each key `resumable.idempotency_key()` (called through the
    `resumable` module) gives, for the time of the block."""
    global _keys
    import resumable

    real = resumable.idempotency_key
    previous, _keys = _keys, {}
    keys = _keys

    def idempotency_key() -> str:
        key = real()
        keys.setdefault(key, len(keys) + 1)
        return key

    idempotency_key.__doc__ = real.__doc__
    resumable.idempotency_key = idempotency_key
    try:
        yield
    finally:
        resumable.idempotency_key = real
        _keys = previous


def _argument(value: Any) -> Any:
    if _keys and type(value) is str and value in _keys:
        return IdempotencyKey(_keys[value])
    return snapshot(value)


def recorded_call(label: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call:
    """How a call of a step is recorded: copies of its arguments as they
    are, an idempotency key as its number in the run."""
    args = tuple(_argument(a) for a in args)
    if kwargs:
        return (label, args, {k: _argument(v) for k, v in kwargs.items()})
    return (label, args)


async def _recording(
    label: str, args: tuple[Any, ...], kwargs: dict[str, Any], call: Callable[[], Any]
) -> Any:
    """Around each call of a step: record it, raise StepError where scripted."""
    script = _script if _script is not None else Script()
    n = script.record(recorded_call(label, args, kwargs))
    if n in script.fail_at:
        raise StepError(label, n)
    return await call()


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    calls: list[Call] = field(default_factory=list)
    checkpoints: int = 0
    #: The awaits of the function's own body, in the order reached.
    awaits: list[AwaitRecord] = field(default_factory=list)
    call_awaits: list[int] = field(default_factory=list)

    def signature(self) -> tuple[Any, ...]:
        return (_value_signature(self.value), exception_signature(self.error), self.calls)


def equivalent(a: Outcome, b: Outcome) -> bool:
    """Same result (type and repr), same exception, same calls (equal, or of
    equal repr for values without ==)."""
    return (
        _value_signature(a.value) == _value_signature(b.value)
        and exception_signature(a.error) == exception_signature(b.error)
        and len(a.calls) == len(b.calls)
        and all(_same_call(x, y) for x, y in zip(a.calls, b.calls, strict=True))
    )


def _same_call(a: Call, b: Call) -> bool:
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))


def _value_signature(value: Any) -> Any:
    return (type(value).__qualname__, repr(value))


def exception_signature(exc: BaseException | None, _seen: set[int] | None = None) -> Any:
    """What equivalence compares of an exception: type, args, attributes,
    the context and cause chain, and __suppress_context__ (not tracebacks)."""
    if exc is None:
        return None
    seen = set() if _seen is None else _seen
    if id(exc) in seen:
        return ("<seen>", type(exc).__qualname__)
    seen.add(id(exc))
    attrs = tuple(
        sorted(
            (k, repr(v))
            for k, v in getattr(exc, "__dict__", {}).items()
            if k != "__resumable_traceback__"  # the text of a traceback that crossed a checkpoint
        )
    )
    return (
        f"{type(exc).__module__}.{type(exc).__qualname__}",
        repr(exc.args),
        attrs,
        exc.__suppress_context__,
        exception_signature(exc.__context__, seen),
        exception_signature(exc.__cause__, seen),
    )


def _original_code_file(fn: Any) -> str:
    inner = getattr(fn.__wrapped__, "__func__", fn.__wrapped__)
    filename: str = inner.__code__.co_filename
    return filename


def run_original(
    fn: Function, /, *args: Any, script: Script | None = None, **kwargs: Any
) -> Outcome:
    """Run the original (undecorated) coroutine under asyncio, its time
    virtual (`asyncio.sleep` jumps ahead)."""
    script = script if script is not None else Script()
    return run_traced(fn, args, kwargs, script, _recording)


def run_traced(
    fn: Function, args: tuple[Any, ...], kwargs: dict[str, Any], script: Script, around: Any
) -> Outcome:
    """The original coroutine under asyncio with virtual time, its awaits
    traced and its steps' calls going through `around` (which records them,
    and may fail them)."""
    outcome = Outcome(calls=script.calls, call_awaits=script.call_awaits)

    def reached(record: AwaitRecord) -> None:
        script.at = record.index

    tracer = AwaitTracer(fn.__wrapped__, reached)
    with (
        scripted(script),
        intercepted(discover_steps(fn), around),
        keys_recorded(),
        asyncio.Runner(loop_factory=virtual_time_loop) as runner,
    ):
        try:
            with tracer.tracing():
                outcome.value = runner.run(fn.__wrapped__(*args, **kwargs))
        except Exception as e:
            outcome.error = e
    outcome.awaits = tracer.records
    return outcome


class Checkpoints:
    """`on_checkpoint` observer: the checkpoints of one (top-level) run as
    AwaitRecords, each counted once (a retried step's checkpoint again is
    the same await)."""

    def __init__(self, fn: Function, run_id: str, script: Script) -> None:
        self.filename = _original_code_file(fn)
        self.run_id = run_id
        self.script = script
        self.records: list[AwaitRecord] = []
        self.by_seq: dict[int, int] = {}

    def __call__(self, info: CheckpointInfo) -> bool:
        """Record `info`; whether it is new."""
        if info.run_id != self.run_id:
            return False
        index = self.by_seq.get(info.seq)
        new = index is None
        if index is None:
            index = self.by_seq[info.seq] = len(self.records) + 1
            values = {k: snapshot(v) for k, v in info.locals.items()}
            self.records.append(AwaitRecord(index, self.filename, info.line, values))
        self.script.at = index
        return new


@contextlib.contextmanager
def retries_off(fn: Function) -> Iterator[None]:
    """`fn` and the decorated functions it names run with one attempt for
    the time of the block (equivalence is defined with retries off)."""
    saved = [(f, f.retry) for f in discover_functions(fn)]
    try:
        for f, _ in saved:
            f.retry = None
        yield
    finally:
        for f, retry in saved:
            f.retry = retry


class _CrashingRuntime(Runtime):
    def __init__(self, run_id: str, crash: bool, checkpoints: Checkpoints) -> None:
        super().__init__("memory://", on_checkpoint=self._saved, retry=NO_RETRY, clock=FakeClock())
        self.top = run_id
        self.crash = crash
        self.count = 0
        self.checkpoints = checkpoints

    def _saved(self, info: CheckpointInfo) -> None:
        self.checkpoints(info)
        if info.run_id == self.top:
            self.count += 1
            if self.crash:
                raise SimulatedCrash(info.seq)


def run_compiled(
    fn: Function,
    /,
    *args: Any,
    script: Script | None = None,
    crash_after_every_checkpoint: bool = True,
    **kwargs: Any,
) -> Outcome:
    """Run the compiled machine, crashing after every checkpoint and resuming
    from the stored checkpoint each time (in a fresh machine and locals)."""
    script = script if script is not None else Script()
    outcome = Outcome(calls=script.calls, call_awaits=script.call_awaits)
    run_id = "equivalence-check"
    checkpoints = Checkpoints(fn, run_id, script)
    rt = _CrashingRuntime(run_id, crash_after_every_checkpoint, checkpoints)
    with (
        scripted(script),
        intercepted(discover_steps(fn), _recording),
        keys_recorded(),
        retries_off(fn),
        asyncio.Runner() as runner,
    ):
        for _ in range(100_000):
            try:
                outcome.value = runner.run(rt.call(fn, *args, run_id=run_id, **kwargs))
            except SimulatedCrash:
                continue
            except Exception as e:
                outcome.error = e
            break
        else:  # pragma: no cover
            raise AssertionError("the compiled run did not finish after 100000 resumes")
    rt.close()
    outcome.checkpoints = rt.count
    outcome.awaits = checkpoints.records
    return outcome


def assert_equivalent(
    fn: Function, /, *args: Any, script: Script | None = None, **kwargs: Any
) -> Outcome:
    """Assert the compiled `fn` behaves like the original for these arguments.

    With a `script`, its `fail_at` applies to both runs. Returns the compiled
    run's outcome. The AssertionError names the first divergence (see the
    module docstring)."""
    __tracebackhide__ = True  # pytest shows the report, not this function's source
    fail_at = frozenset(script.fail_at) if script is not None else frozenset()
    native = run_original(fn, *args, script=Script(fail_at), **kwargs)
    compiled = run_compiled(fn, *args, script=Script(fail_at), **kwargs)
    if not equivalent(native, compiled):
        raise AssertionError(_difference(fn, native, compiled))
    return compiled


# ------------------------------------------------------------------ the report


def format_call(call: Call) -> str:
    label, args = call[0], call[1]
    parts = [repr(a) for a in args]
    if len(call) > 2:
        parts += [f"{k}={v!r}" for k, v in call[2].items()]
    return f"{label}({', '.join(parts)})"


def _timeline(o: Outcome) -> list[tuple[str, Any, AwaitRecord | None]]:
    """The awaits reached and the calls made, in order: ("await", record,
    record) and ("call", call, the await it was made under)."""
    by_await: dict[int, list[Call]] = {}
    for call, at in zip(o.calls, o.call_awaits, strict=True):
        by_await.setdefault(at, []).append(call)
    events: list[tuple[str, Any, AwaitRecord | None]] = [
        ("call", c, None) for c in by_await.get(0, [])
    ]
    for record in o.awaits:
        events.append(("await", record, record))
        events += [("call", c, record) for c in by_await.get(record.index, [])]
    return events


def _at(record: AwaitRecord | None, qualname: str) -> str:
    if record is None:
        return f"before the first await of {qualname}"
    return f"at await {record.index} of {qualname} ({record.where()}):\n    {record.text}"


def _describe(kind: str, what: Any) -> str:
    if kind == "await":
        return f"await at {what.where()}: {what.text}"
    return f"call {format_call(what)}"


def first_divergence(qualname: str, native: Outcome, compiled: Outcome) -> str | None:
    """Where the two runs first differ, await by await: a local at an await,
    an awaited call, or which await comes next (control flow). None when
    they agree up to where either ended."""
    if len(native.calls) != len(native.call_awaits) or len(compiled.calls) != len(
        compiled.call_awaits
    ):
        return None
    a, b = _timeline(native), _timeline(compiled)
    for (ka, va, ra), (kb, vb, rb) in zip(a, b, strict=False):
        if ka == kb == "await":
            if va.line != vb.line:
                return (
                    f"first divergence {_at(ra, qualname)}\n"
                    f"  the original reached this await, the compiled machine another:\n"
                    f"    original: {_describe(ka, va)}\n    compiled: {_describe(kb, vb)}"
                )
            if va.locals is not None and vb.locals is not None:
                names = [
                    k for k in vb.locals if k in va.locals and not same(va.locals[k], vb.locals[k])
                ]
                if names:
                    lines = [f"first divergence {_at(ra, qualname)}"]
                    for k in names:
                        lines.append(
                            f"  local {k!r} differs:\n    original: {va.locals[k]!r}\n"
                            f"    compiled: {vb.locals[k]!r}"
                        )
                    return "\n".join(lines)
        elif ka == kb == "call":
            if not _same_call(va, vb):
                return (
                    f"first divergence {_at(ra, qualname)}\n  awaited call differs:\n"
                    f"    original: {format_call(va)}\n    compiled: {format_call(vb)}"
                )
        else:
            return (
                f"first divergence {_at(ra if ka == 'call' else rb, qualname)}\n"
                f"  what came next differs:\n"
                f"    original: {_describe(ka, va)}\n    compiled: {_describe(kb, vb)}"
            )
    if len(a) != len(b):
        longer, which = (a, "original") if len(a) > len(b) else (b, "compiled")
        kind, value, record = longer[min(len(a), len(b))]
        return (
            f"first divergence {_at(record, qualname)}\n"
            f"  only the {which} went on, with the {_describe(kind, value)}"
        )
    return None


def _difference(fn: Function, native: Outcome, compiled: Outcome) -> str:
    lines = [f"compiled {fn.__qualname__} differs from the original:"]
    first = first_divergence(fn.__qualname__, native, compiled)
    if first is not None:
        lines.append(first)
        lines.append("all differences:")
    for what, a, b in (
        ("result", _value_signature(native.value), _value_signature(compiled.value)),
        ("exception", exception_signature(native.error), exception_signature(compiled.error)),
    ):
        if a != b:
            lines.append(f"  {what}:\n    original: {a!r}\n    compiled: {b!r}")
    if len(native.calls) != len(compiled.calls) or not all(
        _same_call(x, y) for x, y in zip(native.calls, compiled.calls, strict=True)
    ):
        lines.append(
            f"  awaited calls:\n    original: {native.calls!r}\n    compiled: {compiled.calls!r}"
        )
    if compiled.error is not None and not isinstance(compiled.error, type(native.error)):
        import traceback

        lines.append("".join(traceback.format_exception(compiled.error)))
    return "\n".join(lines)
