"""Check compiled functions against their originals.

    from resumable.testing import assert_equivalent
    assert_equivalent(checkout, "u1", "o1")

runs the original coroutine under asyncio (the oracle) and the compiled
machine with a crash injected right after every checkpoint -- each resume
starts from the JSON in the store, in a fresh machine -- and compares the
outcomes: the same result, or the same exception (type, args, attributes,
`__context__`/`__cause__` chain, `__suppress_context__`).

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .function import Function
from .retry import NO_RETRY
from .run import CheckpointInfo
from .runtime import Runtime

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
    """Raised by `step` at the calls a Script names."""


class SimulatedCrash(BaseException):
    """Stands for the process dying right after a checkpoint was saved."""


@dataclass
class Script:
    """Which calls of `step` raise (1-based call numbers), and the calls made."""

    fail_at: frozenset[int] | set[int] = frozenset()
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)


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
    script.calls.append((label, args))
    n = len(script.calls)
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


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    checkpoints: int = 0

    def signature(self) -> tuple[Any, ...]:
        return (_value_signature(self.value), exception_signature(self.error), self.calls)


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


def run_original(
    fn: Function, /, *args: Any, script: Script | None = None, **kwargs: Any
) -> Outcome:
    """Run the original (undecorated) coroutine under asyncio."""
    script = script if script is not None else Script()
    outcome = Outcome(calls=script.calls)
    with scripted(script):
        try:
            outcome.value = asyncio.run(fn.__wrapped__(*args, **kwargs))
        except Exception as e:
            outcome.error = e
    return outcome


class _CrashingRuntime(Runtime):
    def __init__(self, run_id: str, crash: bool) -> None:
        super().__init__("memory://", on_checkpoint=self._saved, retry=NO_RETRY)
        self.top = run_id
        self.crash = crash
        self.count = 0

    def _saved(self, info: CheckpointInfo) -> None:
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
    outcome = Outcome(calls=script.calls)
    run_id = "equivalence-check"
    rt = _CrashingRuntime(run_id, crash_after_every_checkpoint)
    with scripted(script), asyncio.Runner() as runner:
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
    outcome.checkpoints = rt.count
    return outcome


def assert_equivalent(
    fn: Function, /, *args: Any, script: Script | None = None, **kwargs: Any
) -> Outcome:
    """Assert the compiled `fn` behaves like the original for these arguments.

    With a `script`, its `fail_at` applies to both runs. Returns the compiled
    run's outcome."""
    fail_at = frozenset(script.fail_at) if script is not None else frozenset()
    native = run_original(fn, *args, script=Script(fail_at), **kwargs)
    compiled = run_compiled(fn, *args, script=Script(fail_at), **kwargs)
    if native.signature() != compiled.signature():
        raise AssertionError(_difference(fn, native, compiled))
    return compiled


def _difference(fn: Function, native: Outcome, compiled: Outcome) -> str:
    lines = [f"compiled {fn.__qualname__} differs from the original:"]
    for what, a, b in (
        ("result", _value_signature(native.value), _value_signature(compiled.value)),
        ("exception", exception_signature(native.error), exception_signature(compiled.error)),
        ("awaited calls", native.calls, compiled.calls),
    ):
        if a != b:
            lines.append(f"  {what}:\n    original: {a!r}\n    compiled: {b!r}")
    if compiled.error is not None and not isinstance(compiled.error, type(native.error)):
        import traceback

        lines.append("".join(traceback.format_exception(compiled.error)))
    return "\n".join(lines)
