"""`try/except*` in compiled functions: matching one clause at a time, and
the exception that leaves the statement, computed by CPython itself.

The handlers of a lowered `except*` run as states (they may await), so the
interpreter's own bookkeeping cannot follow them. `match` replays what
CPython does at each clause (`_PyEval_ExceptionGroupMatch`); once every
clause has run, `outcome` runs an await-free skeleton of the statement,

    try:
        raise group
    except* T1:
        <what clause 1's handler did: nothing, re-raise, or raise X>
    except* T2:
        ...

so that CPython splits the group and combines what the handlers raised,
keeping the identity of the leaf exceptions and the structure of re-raised
parts. The skeleton's text is fixed (only the number of clauses varies); it
never comes from stored data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["RERAISED", "match", "outcome"]


class _Reraised:
    __slots__ = ()

    def __repr__(self) -> str:
        return "RERAISED"


#: A handler's outcome when it re-raised the exceptions its clause matched.
RERAISED = _Reraised()

_SKELETONS: dict[int, Callable[..., BaseException | None]] = {}


def _check(spec: Any) -> None:
    for cls in spec if isinstance(spec, tuple) else (spec,):
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(
                "catching classes that do not inherit from BaseException is not allowed"
            )
    for cls in spec if isinstance(spec, tuple) else (spec,):
        if issubclass(cls, BaseExceptionGroup):
            raise TypeError(
                "catching ExceptionGroup with except* is not allowed. Use except instead."
            )


def match(rest: BaseException | None, spec: Any) -> tuple[BaseException | None, Any]:
    """(the part of `rest` clause `except* spec` handles or None, what is left)."""
    _check(spec)
    if rest is None:
        return None, None
    if isinstance(rest, spec):
        if isinstance(rest, BaseExceptionGroup):
            return rest, None
        wrapped = BaseExceptionGroup("", (rest,))  # a naked exception is wrapped
        wrapped.__traceback__ = rest.__traceback__
        return wrapped, None
    if isinstance(rest, BaseExceptionGroup):
        return rest.split(spec)
    return None, rest


def _skeleton(n: int) -> Callable[..., BaseException | None]:
    if n not in _SKELETONS:
        lines = ["def skeleton(group, specs, actions):", "    try:", "        try:"]
        lines.append("            raise group")
        for i in range(n):
            lines += [
                f"        except* specs[{i}]:",
                f"            if actions[{i}] is RERAISED:",
                "                raise",
                f"            if actions[{i}] is not None:",
                f"                raise actions[{i}]",
            ]
        lines += ["    except BaseException as result:", "        return result", "    return None"]
        namespace: dict[str, Any] = {"RERAISED": RERAISED}
        exec(compile("\n".join(lines), "<resumable except*>", "exec", dont_inherit=True), namespace)
        _SKELETONS[n] = namespace["skeleton"]
    return _SKELETONS[n]


def outcome(
    group: BaseException,
    specs: Sequence[Any],
    matches: Sequence[BaseException | None],
    raised: Sequence[BaseException | None],
) -> BaseException | None:
    """The exception leaving the statement (None: it completes normally).
    `raised[i]` is what left clause i's handler (None: it completed, or the
    clause matched nothing); raising its own match is a re-raise."""
    actions: list[Any] = [
        RERAISED if r is not None and r is g else r for g, r in zip(matches, raised, strict=True)
    ]
    saved = [(e, e.__context__) for e in actions if isinstance(e, BaseException)]
    context, traceback = group.__context__, group.__traceback__
    result = _skeleton(len(specs))(group, tuple(specs), actions)
    group.__context__, group.__traceback__ = context, traceback
    for e, c in saved:  # the skeleton's raise set them to its own copies of the matches
        e.__context__ = c
    return result
