"""Pass 5, check: invariants of a Lowered machine. A failure is a bug in
resumable (InternalError), never the user's fault:

- states are numbered 0..n-1 in order, and every state is non-empty;
- every state ends in a terminator (`return ...` or `raise ...`);
- an await state is exactly `return <operand>`, and resumes at a valid state;
- each await of the function (Analysis.awaits: its `await` expressions and
  the implicit awaits of `async with` and `async for`) is the site of exactly
  one await state, and every await state has a site (the runtime finds a
  checkpoint's await in changed code by its ordinal). An `__aexit__` reached
  on every way out of its block (the end of the body, an exception, a
  return, break or continue) is still one await state: it stands in the
  block's finally, whose record says which way it left;
- every jump, resume and exception target exists;
- every live variable is a local of the function or a hidden variable.
"""

from __future__ import annotations

import libcst as cst

from resumable.errors import InternalError

from .ir import AwaitSite, Lowered

__all__ = ["check"]


def check(lowered: Lowered) -> Lowered:
    name = lowered.analysis.function.qualname
    states = lowered.states
    n = len(states)

    def fail(index: int, why: str) -> InternalError:
        return InternalError(
            f"compiling {name}: state {index} {why} (this is a bug in resumable, please report it)"
        )

    if n == 0:
        raise fail(0, "is missing")
    known = lowered.analysis.locals | set(lowered.hidden)
    sites: dict[int, int] = {}
    for i, state in enumerate(states):
        if state.index != i:
            raise fail(i, f"is numbered {state.index}")
        if not state.body:
            raise fail(i, "is empty")
        last = state.body[-1]
        if not (
            isinstance(last, cst.SimpleStatementLine)
            and isinstance(last.body[-1], cst.Return | cst.Raise)
        ):
            raise fail(i, "does not end in a return or raise")
        for target in state.successors:
            if not 0 <= target < n:
                raise fail(i, f"jumps to missing state {target}")
        if state.on_error is not None and not 0 <= state.on_error[0] < n:
            raise fail(i, f"routes exceptions to missing state {state.on_error[0]}")
        if state.is_await:
            if state.resume is None or not 0 <= state.resume < n:
                raise fail(i, "is an await without a valid resume state")
            if len(state.body) != 1 or len(last.body) != 1:
                raise fail(i, "is an await state with more than its operand")
            if state.site is None:
                raise fail(i, "is an await state without a source await")
            if state.site in sites:
                raise fail(i, f"evaluates the await of state {sites[state.site]} again")
            sites[state.site] = i
            unknown = set(lowered.live.get(i, ())) - known
            if unknown:
                raise fail(i, f"stores unknown variables {sorted(unknown)}")
        elif i in lowered.live:
            raise fail(i, "has live variables but is not an await")
        elif state.site is not None:
            raise fail(i, "has a source await but is not an await")
    missing = set(range(len(lowered.analysis.awaits))) - set(sites)
    if missing:
        raise InternalError(
            f"compiling {name}: no state evaluates await {min(missing)} of the source "
            f"({_describe(lowered.analysis.awaits[min(missing)])}; this is a bug in resumable, "
            "please report it)"
        )
    return lowered


def _describe(site: AwaitSite) -> str:
    if isinstance(site, cst.Await):
        return "an `await`"
    return f"the implicit await of `{site.method}`"
