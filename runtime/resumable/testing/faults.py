"""Run a compiled function under a fault schedule, and check it ends as
the original would under the same faults.

    faults = Faults(fail={2: 1}, crash_after={1, 3})
    report = check_faults(place_order, faults, "o1", 5)

`fail={2: 1}`: the 2nd awaited step call (counted as the original makes
them, a retry of a call being the same call) raises `InjectedFault` in its
first attempt; `crash_after={1, 3}`: the process dies right after the 1st and
the 3rd checkpoint of the run is committed, and a fresh `Runtime` on the same
SQLite store resumes it.

What is expected: the original coroutine run with the faults that the
retry policies cannot absorb -- call k raises `InjectedFault` in the
original when it fails in at least as many attempts as the policy of the
function awaiting it allows (`Retry.max_attempts`, 1 if InjectedFault is
not retryable for it). So with retries that absorb every fault, the result
is the fault-free original's. Checked: the same result or exception, and
the same calls once retries are collapsed (each call's last attempt).
Crashes change nothing that can be seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..function import Function
from ..retry import DEFAULT_RETRY, Retry
from ..run import CURRENT, CheckpointInfo
from ..runtime import Runtime
from .clock import FakeClock
from .core import (
    Call,
    Checkpoints,
    Outcome,
    Script,
    SimulatedCrash,
    _difference,
    equivalent,
    keys_recorded,
    recorded_call,
    run_traced,
    scripted,
)
from .trace import discover_functions, discover_steps, intercepted

__all__ = ["FaultRun", "Faults", "InjectedFault", "check_faults", "run_with_faults"]


class InjectedFault(Exception):
    """Raised by a step call the fault schedule makes fail: args (the
    step's name, the call's number)."""


@dataclass(frozen=True)
class Faults:
    """A fault schedule. `fail`: call number (1-based, in the order the
    original makes the step calls) -> how many of its attempts in a row
    raise InjectedFault; `crash_after`: checkpoint numbers (1-based, of the
    top-level run) after whose commit the process dies."""

    fail: Mapping[int, int] = field(default_factory=dict)
    crash_after: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fail", dict(self.fail))
        object.__setattr__(self, "crash_after", frozenset(self.crash_after))

    def __repr__(self) -> str:
        return f"Faults(fail={dict(self.fail)!r}, crash_after={set(self.crash_after) or '{}'})"


@dataclass
class FaultRun:
    """What `run_with_faults` saw."""

    faults: Faults
    #: The compiled run (calls: every attempt).
    compiled: Outcome
    #: The original under the faults no retry absorbs (the expectation).
    expected: Outcome
    #: The compiled run's calls, one per call (its last attempt).
    calls: list[Call]
    #: The await each of `calls` was made under.
    call_awaits: list[int]
    #: Attempts of each call, by call number.
    attempts: dict[int, int]
    #: How many processes the run took (1 + the crashes that happened).
    lives: int
    #: The clock of the compiled run (`clock.elapsed`: the retry delays
    #: and sleeps it waited, none of it real time).
    clock: FakeClock

    @property
    def ok(self) -> bool:
        folded = Outcome(self.compiled.value, self.compiled.error, self.calls)
        return equivalent(self.expected, folded)


def _policy(function: Function | None) -> Retry:
    return (function.retry if function is not None else None) or DEFAULT_RETRY


def _allowed(function: Function | None) -> int:
    """Attempts the policy of `function` gives a step that raises InjectedFault."""
    policy = _policy(function)
    return policy.max_attempts if policy.retryable(InjectedFault("probe", 0)) else 1


def _owner(codes: Mapping[Any, Function], default: Function) -> Function:
    """The decorated function whose original is awaiting (the innermost in
    the frames of the current coroutine chain)."""
    frame = sys._getframe(1)
    while frame is not None:
        found = codes.get(frame.f_code)
        if found is not None:
            return found
        frame = frame.f_back  # type: ignore[assignment]
    return default


def _codes(fn: Function) -> dict[Any, Function]:
    out = {}
    for f in discover_functions(fn):
        inner = getattr(f.__wrapped__, "__func__", f.__wrapped__)
        out[inner.__code__] = f
    return out


def _expected(
    fn: Function, faults: Faults, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Outcome:
    """The original, with the faults no retry absorbs."""
    script = Script()
    codes = _codes(fn)

    async def around(
        label: str, a: tuple[Any, ...], k: dict[str, Any], call: Callable[[], Any]
    ) -> Any:
        n = script.record(recorded_call(label, a, k))
        if faults.fail.get(n, 0) >= _allowed(_owner(codes, fn)):
            raise InjectedFault(label, n)
        return await call()

    return run_traced(fn, args, kwargs, script, around)


@contextlib.contextmanager
def _store(store: str | None) -> Iterator[str]:
    if store is not None:
        yield store
        return
    with tempfile.TemporaryDirectory(prefix="resumable-faults-") as folder:
        yield f"sqlite:///{os.path.join(folder, 'runs.db')}"


def run_with_faults(
    fn: Function,
    faults: Faults,
    /,
    *args: Any,
    **kwargs: Any,
) -> FaultRun:
    """Run the compiled `fn` under `faults` (a fresh SQLite store in a
    temporary folder, a FakeClock, a new Runtime after each crash), and the
    original under the faults no retry absorbs. See the module docstring."""
    expected = _expected(fn, faults, args, kwargs)
    script = Script()
    compiled = Outcome(calls=script.calls, call_awaits=script.call_awaits)
    clock = FakeClock()
    run_id = "fault-check"
    checkpoints = Checkpoints(fn, run_id, script)
    crashed: set[int] = set()
    #: (run id, step seq, n-th step call of that step) -> call number
    numbers: dict[tuple[str, int, int], int] = {}
    in_step: dict[int, list[Any]] = {}  # id(step) -> [step, calls so far]
    attempts: dict[int, int] = {}
    last: dict[int, Call] = {}
    last_at: dict[int, int] = {}

    def observe(info: CheckpointInfo) -> None:
        new = checkpoints(info)
        if new and info.run_id == run_id:
            index = len(checkpoints.records)
            if index in faults.crash_after and index not in crashed:
                crashed.add(index)
                raise SimulatedCrash(info.seq)

    async def around(
        label: str, a: tuple[Any, ...], k: dict[str, Any], call: Callable[[], Any]
    ) -> Any:
        step = CURRENT.get()
        if step is None:
            n = len(numbers) + 1
            numbers[("", -n, 0)] = n
        else:
            slot = in_step.setdefault(id(step), [step, 0])
            key = (step.run.run_id, step.seq, slot[1])
            slot[1] += 1
            n = numbers.setdefault(key, len(numbers) + 1)
        attempts[n] = attempts.get(n, 0) + 1
        recorded = recorded_call(label, a, k)
        script.record(recorded)
        last[n] = recorded
        last_at[n] = script.at
        if attempts[n] <= faults.fail.get(n, 0):
            raise InjectedFault(label, n)
        return await call()

    lives = 0
    with (
        _store(None) as url,
        scripted(script),
        intercepted(discover_steps(fn), around),
        keys_recorded(),
    ):
        for _ in range(len(faults.crash_after) + 2):
            lives += 1
            rt = Runtime(url, clock=clock, on_checkpoint=observe, seed=0)
            try:
                with asyncio.Runner() as runner:
                    compiled.value = runner.run(rt.call(fn, *args, run_id=run_id, **kwargs))
            except SimulatedCrash:
                continue
            except Exception as e:
                compiled.error = e
            finally:
                rt.close()
            break
    compiled.checkpoints = len(checkpoints.records)
    compiled.awaits = checkpoints.records
    calls = [last[n] for n in sorted(last)]
    at = [last_at[n] for n in sorted(last)]
    return FaultRun(faults, compiled, expected, calls, at, attempts, lives, clock)


def check_faults(fn: Function, faults: Faults, /, *args: Any, **kwargs: Any) -> FaultRun:
    """`run_with_faults`, and an AssertionError (naming the schedule and the
    first divergence) when the compiled run does not end as expected."""
    run = run_with_faults(fn, faults, *args, **kwargs)
    if not run.ok:
        folded = Outcome(
            run.compiled.value,
            run.compiled.error,
            run.calls,
            awaits=run.compiled.awaits,
            call_awaits=run.call_awaits,
        )
        raise AssertionError(
            f"under {faults!r} ({run.lives} processes, attempts by call {run.attempts}):\n"
            + _difference(fn, run.expected, folded)
        )
    return run
