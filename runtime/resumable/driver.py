"""Drives a compiled state machine from a state to its end.

    state k (code)   -> returns the next state, DONE or THROW
    state k (await)  -> checkpoint first, then the state evaluates the operand,
                        the driver awaits it and stores the outcome in m.sent,
                        then goes on at the resume state; if the operand or the
                        await raised, the run may try the step again from the
                        checkpoint (its retry policy) before the exception is
                        raised at the await

An exception raised in state k (or by the awaitable of await state k) goes to
`on_error[k]`: the variable named there receives it and that state runs next;
with no entry, it leaves the function. Errors of resumable itself
(SerializationError, ...) are never routed into the user's handlers.

`sys.exception()`, bare `raise` and implicit `__context__` chaining are
CPython's own: while a state runs inside `except`/`finally` blocks (the
`handled` table), the driver re-enters those blocks by raising the exceptions
being handled and runs the state -- and awaits its awaitable -- inside.

A cancellation of the task driving the run (a worker stopping, Ctrl-C under
`asyncio.run`, an `asyncio.wait_for` giving up on a child run) is not the
function's own exception: it is never routed into its handlers, and leaves
the run where its last checkpoint put it, as a crash would. A cancellation
resumable delivers (`Runtime.cancel`, a timeout: cancel.py) is: the run gets
RunCancelled at its await.
"""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn, Protocol

from .errors import InternalError, ResumableError
from .machine import DONE, THROW, Locals, Machine

__all__ = ["Steps", "Unwind", "drive", "interrupted", "propagate"]

#: resumable's own errors (a value that cannot be stored, changed code, a
#: child run blocked, the store failing...) are never the function's to catch.
_NOT_ROUTED = ResumableError


class Unwind(BaseException):
    """Internal: leaves the driver at an await without being routed into the
    function's handlers (the run waits as a row: run.Park)."""


class Steps(Protocol):
    """What the driver asks of the run it drives (`m.run`)."""

    #: The awaitable of the await in flight.
    direct: Any
    #: Raised at the next await instead of evaluating its operand (cancel.py).
    cancel_pending: BaseException | None

    def cancelled_here(self, error: BaseException) -> Any:
        """The awaitable that delivers `error` at a resumed await."""

    def on_cancelled(self, exc: BaseException) -> BaseException:
        """The exception a CancelledError from the await is, for the run."""

    async def checkpoint(self, m: Machine, state: int, L: Locals) -> Locals:
        """Save the checkpoint of await `state`; the locals to go on with."""

    async def retry_await(self, exc: Exception) -> None:
        """The operand or the awaitable of the current await raised `exc`:
        raise Park to try the step again from its checkpoint, or return to
        raise `exc` at the await."""

    def owned(self) -> None:
        """Raise OwnershipLost when the run may have another owner now (the
        code after an await must not run here)."""


def interrupted(exc: BaseException) -> bool:
    """Is `exc` the cancellation of the task driving the run (not an
    exception of the function's own)?"""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def drive(m: Machine, L: Locals, state: int, *, resumed: bool = False) -> Any:
    """Run machine `m` from `state` until the function returns or raises.

    `resumed`: `L` was just decoded from the checkpoint of `state`, which is
    not written again."""
    cls = type(m)
    states, awaits, on_error, handled = cls.states, cls.awaits, cls.on_error, cls.handled
    plain = _code_states(cls)
    run: Steps = m.run
    while True:
        exc: BaseException | None = None
        if state in plain:  # the common case: no lookups
            active: tuple[BaseException, ...] = ()
            resume = None
        else:
            names = handled.get(state)
            active = _handled_exceptions(L, names) if names else ()
            resume = awaits.get(state)
        if resume is not None:
            if resumed:
                resumed = False
            else:
                L = await run.checkpoint(m, state, L)
            if run.cancel_pending is not None:  # resumed to be cancelled: not the operand
                awaitable, run.cancel_pending = run.cancelled_here(run.cancel_pending), None
            else:
                try:
                    if active:
                        awaitable = _call_in(states[state], m, L, active, 0)
                    else:
                        awaitable = states[state](m, L)
                except BaseException as e:
                    exc = e
            if exc is None:
                run.direct = awaitable
                try:
                    if active:
                        m.sent = await _await_in(awaitable, active, 0)
                    else:
                        m.sent = await awaitable
                except BaseException as e:
                    if isinstance(e, asyncio.CancelledError):
                        e = run.on_cancelled(e)
                    if interrupted(e) or isinstance(e, Unwind):
                        raise
                    run.owned()
                    exc = e
                else:
                    run.owned()
                    state = resume[0]
                    continue
                finally:
                    run.direct = None
            if isinstance(exc, Exception) and not isinstance(exc, _NOT_ROUTED):
                await run.retry_await(exc)  # raises Park to try the step again
        else:
            try:
                if active:
                    r = _call_in(states[state], m, L, active, 0)
                else:
                    r = states[state](m, L)
                    while r.__class__ is int and r in plain:  # no lookups on the way
                        state = r
                        r = states[r](m, L)
            except BaseException as e:
                exc = e
            if exc is None:
                if r.__class__ is int:
                    state = r
                    continue
                if r is DONE:
                    return m.result
                if r is not THROW:
                    raise InternalError(f"{cls.qualname}: state {state} returned {r!r}")
                exc, m.thrown = m.thrown, None
                assert exc is not None
        route = on_error.get(state)
        if route is None or isinstance(exc, _NOT_ROUTED):
            propagate(exc)
        state = route[0]
        L.__dict__[route[1]] = exc


#: machine class -> its code states outside except/finally blocks (neither
#: an await nor in `handled`): the driver runs one after another without
#: looking anything up.
_CODE_STATES: dict[type[Machine], frozenset[int]] = {}


def _code_states(cls: type[Machine]) -> frozenset[int]:
    try:
        return _CODE_STATES[cls]
    except KeyError:
        pass
    plain = frozenset(range(len(cls.states))) - cls.awaits.keys() - cls.handled.keys()
    if len(_CODE_STATES) >= 1024:  # machines compiled again and again (tests)
        _CODE_STATES.clear()
    _CODE_STATES[cls] = plain
    return plain


def _handled_exceptions(L: Locals, names: tuple[str, ...]) -> tuple[BaseException, ...]:
    values = L.__dict__
    return tuple(v for v in (values.get(name) for name in names) if isinstance(v, BaseException))


def _call_in(fn: Any, m: Machine, L: Locals, active: tuple[BaseException, ...], i: int) -> Any:
    h = active[i]
    context, traceback = h.__context__, h.__traceback__
    try:
        raise h
    except BaseException:
        h.__context__, h.__traceback__ = context, traceback
        if i + 1 < len(active):
            return _call_in(fn, m, L, active, i + 1)
        return fn(m, L)


async def _await_in(awaitable: Any, active: tuple[BaseException, ...], i: int) -> Any:
    h = active[i]
    context, traceback = h.__context__, h.__traceback__
    try:
        raise h
    except BaseException:
        h.__context__, h.__traceback__ = context, traceback
        if i + 1 < len(active):
            return await _await_in(awaitable, active, i + 1)
        return await awaitable


def propagate(exc: BaseException) -> NoReturn:
    """Raise `exc` out of the machine exactly as it is.

    A plain `raise exc` would set its __context__ to whatever the caller is
    handling; a bare re-raise does not touch it."""
    context = exc.__context__
    try:
        raise exc
    except BaseException:
        exc.__context__ = context
        raise
