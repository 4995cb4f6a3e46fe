"""Where control goes when it leaves a construct: labels, jumps, and the
typed control entries of the lowering (regenerator's leap manager, mypyc's
nonlocalcontrol).

The lowering keeps a stack of entries for the constructs it is inside.
Each entry answers for itself what a `break`, `continue` or `return` does
when it leaves the entry, and where an exception raised inside it goes:

    LoopEntry(brk, cont)        break/continue end here: `return <brk>`
    TryEntry(dispatch, var)     exceptions go to the except clauses' dispatch
    DispatchEntry(var)          matching the exception in `var`
    HandlerEntry(var, name, cleanup)
                                inside `except ... as name`: leaving unbinds
                                `name`; exceptions go to `cleanup` first
    StarHandlerEntry(var, outcome, cleanup, name)
                                inside `except* ...`: exceptions go to
                                `cleanup`, which records them and goes on
    FinallyEntry(entry, record) protected by a finally block: leaving stores
                                the jump in `record` and runs the block
    FinallyBodyEntry(record)    inside the finally block
    ScopeEntry(cleanup, var)    inside a comprehension's own scope: an exception
                                leaving it goes to `cleanup` first (which
                                deletes the scope's hidden variables)

A jump walks the stack from the innermost entry outwards, collecting the
code each entry adds, until one entry ends it; a `return` that no entry
ends finishes the function. Entries that change where exceptions go (all
but loops) start a new state when pushed or popped, so a state's exception
route is a property of the whole state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

import libcst as cst

from resumable.errors import InternalError

__all__ = [
    "RETURN",
    "DispatchEntry",
    "Entry",
    "FinallyBodyEntry",
    "FinallyEntry",
    "HandlerEntry",
    "Jump",
    "JumpKind",
    "Label",
    "LoopEntry",
    "ScopeEntry",
    "Site",
    "StarHandlerEntry",
    "TryEntry",
    "exception_route",
    "finally_record",
    "handled_vars",
    "routing",
]

#: The finally record meaning "a return is pending" (other jumps are state numbers).
RETURN = -1


class Label:
    """A jump target: the state writer marks it at the state it names, and
    numbering.py gives that state its number. Compared by identity."""

    __slots__ = ("id",)

    def __init__(self, id: int) -> None:
        self.id = id

    def __repr__(self) -> str:
        return f"Label({self.id})"


class JumpKind(enum.Enum):
    BREAK = "break"
    CONTINUE = "continue"
    RETURN = "return"


@dataclass(frozen=True)
class Jump:
    """A `break`, `continue` (to a loop's label) or `return` (target None)."""

    kind: JumpKind
    target: Label | None = None


class Site(Protocol):
    """What an entry needs from the state writer to emit its part of a jump."""

    def ref(self, label: Label, *, successor: bool = True) -> cst.Integer: ...

    def local(self, name: str) -> cst.Attribute: ...


def finally_record(site: Site, jump: Jump) -> cst.BaseExpression:
    """The finally record of `jump`: its target's state number, or RETURN."""
    if jump.target is None:
        return cst.UnaryOperation(cst.Minus(), cst.Integer("1"))
    return site.ref(jump.target, successor=False)


def _assign(target: cst.BaseAssignTargetExpression, value: cst.BaseExpression) -> cst.Assign:
    return cst.Assign([cst.AssignTarget(target)], value)


@dataclass(eq=False)
class Entry:
    """One construct the lowering is inside."""

    #: Does the entry decide where exceptions go, or which ones are handled?
    routes = True

    def exception_route(self) -> tuple[Label, str] | None:
        """(state receiving an exception raised under this entry, its
        variable), or None when exceptions go further out."""
        return None

    def handled(self) -> str | None:
        """The variable of an exception being handled inside this entry."""
        return None

    def exit(self, site: Site, jump: Jump, code: list[cst.BaseSmallStatement]) -> bool:
        """Append to `code` what leaving this entry by `jump` does; True when
        that ends the jump (nothing further out is left)."""
        return False

    def exit_runs_code(self) -> bool:
        """Does leaving the entry run code (so a returned value is saved first)?"""
        return False


@dataclass(eq=False)
class LoopEntry(Entry):
    """The body of a lowered loop: where its break and continue go."""

    brk: Label
    cont: Label
    routes = False

    def exit(self, site: Site, jump: Jump, code: list[cst.BaseSmallStatement]) -> bool:
        if jump.target is not None and jump.target in (self.brk, self.cont):
            code.append(cst.Return(site.ref(jump.target)))
            return True
        return False


@dataclass(eq=False)
class TryEntry(Entry):
    """The body of a try statement with except clauses."""

    dispatch: Label
    var: str

    def exception_route(self) -> tuple[Label, str]:
        return (self.dispatch, self.var)


@dataclass(eq=False)
class DispatchEntry(Entry):
    """The state matching the exception in `var` against the except clauses."""

    var: str

    def handled(self) -> str:
        return self.var


@dataclass(eq=False)
class HandlerEntry(Entry):
    """The body of an except clause; `name` is its `as` name."""

    var: str
    name: str | None = None
    #: Where an exception leaving the handler goes first (to unbind `name`).
    cleanup: Label | None = None
    #: `name` is a global of the module (declared `global`), not a local.
    global_name: bool = False

    def exception_route(self) -> tuple[Label, str] | None:
        if self.name is None:
            return None
        assert self.cleanup is not None
        return (self.cleanup, self.var)

    def handled(self) -> str:
        return self.var

    def exit_runs_code(self) -> bool:
        return self.name is not None

    def exit(self, site: Site, jump: Jump, code: list[cst.BaseSmallStatement]) -> bool:
        if self.name is not None:  # CPython's `name = None; del name`
            target = cst.Name(self.name) if self.global_name else site.local(self.name)
            code += [_assign(target, cst.Name("None")), cst.Del(target)]
        return False


@dataclass(eq=False)
class StarHandlerEntry(Entry):
    """The body of an `except*` clause: `var` holds the exceptions it
    matched; an exception leaving it goes to `cleanup` in `outcome`, and the
    next clause runs. `break`, `continue` and `return` cannot leave it (a
    SyntaxError in CPython)."""

    var: str
    outcome: str
    cleanup: Label
    name: str | None = None

    def exception_route(self) -> tuple[Label, str]:
        return (self.cleanup, self.outcome)

    def handled(self) -> str:
        return self.var

    def exit(self, site: Site, jump: Jump, code: list[cst.BaseSmallStatement]) -> bool:
        raise InternalError(f"`{jump.kind.value}` leaves an except* block")


@dataclass(eq=False)
class FinallyEntry(Entry):
    """What a finally block protects; `record` holds what happens after it."""

    entry: Label
    record: str
    #: The jumps that went through it, re-issued at the block's end.
    pending: list[Jump] = field(default_factory=list)

    def exception_route(self) -> tuple[Label, str]:
        return (self.entry, self.record)

    def exit_runs_code(self) -> bool:
        return True

    def exit(self, site: Site, jump: Jump, code: list[cst.BaseSmallStatement]) -> bool:
        code.append(_assign(site.local(self.record), finally_record(site, jump)))
        if jump not in self.pending:
            self.pending.append(jump)
        code.append(cst.Return(site.ref(self.entry)))
        return True


@dataclass(eq=False)
class FinallyBodyEntry(Entry):
    """The finally block itself; `record` may hold the exception in flight."""

    record: str

    def handled(self) -> str:
        return self.record


@dataclass(eq=False)
class ScopeEntry(Entry):
    """A comprehension being lowered: its own scope. An exception leaving it
    goes to `cleanup` in `var`; nothing else can leave it (it is an
    expression: no `break`, `continue` or `return` inside)."""

    cleanup: Label
    var: str

    def exception_route(self) -> tuple[Label, str]:
        return (self.cleanup, self.var)

    def exit(self, site: Site, jump: Jump, code: list[cst.BaseSmallStatement]) -> bool:
        raise InternalError(f"`{jump.kind.value}` leaves a comprehension")


def routing(entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
    """The entries that decide where exceptions go (loops do not)."""
    return tuple(e for e in entries if e.routes)


def exception_route(entries: tuple[Entry, ...]) -> tuple[Label, str] | None:
    """Where an exception raised in a state under `entries` goes."""
    for e in reversed(entries):
        route = e.exception_route()
        if route is not None:
            return route
    return None


def handled_vars(entries: tuple[Entry, ...]) -> tuple[str, ...]:
    """The exceptions being handled in a state under `entries`, outermost first."""
    return tuple(v for v in (e.handled() for e in entries) if v is not None)
