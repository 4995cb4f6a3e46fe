"""Pass 4, liveness: Lowered -> Lowered with the locals live at each await.

Only variables that some path may read after a checkpoint are stored in it,
so a value used only between two awaits never needs to be serializable:

    f = open(path)            # state 1
    data = f.read()           #   f is dead after this line ...
    f.close()
    await upload(data)        # state 2 (await): live = {data}, not f

It runs on the lowered states rather than the source because temporaries,
loop cursors, handled exceptions and finally records exist only there. The
analysis is backward, statement by statement inside a state (a `return N`
midway sees only what is live at state N), with a fixpoint over the states.
Exception edges keep everything live at the handler (an exception may come
before any assignment of the state), minus the variable the driver fills.

A lambda, nested function or class reads the function's variables when it
runs, not where it is defined (`lambda: L.k`): so a variable it uses is live
at every await reachable from a state that defines it, as the closure may be
called after any of them.

Locals bound to classes and live at a checkpoint are reported here (E05): a
class defined in the function can never be stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeGuard

import libcst as cst

from resumable.errors import CompileError

from . import codes
from .ir import Lowered, State
from .tree import children

__all__ = ["liveness"]


class _Flow:
    """Backward liveness through the statements of one state."""

    def __init__(
        self, frame: str, machine: str, live_in: list[frozenset[str]], closures: bool = True
    ) -> None:
        self.L = frame
        #: Whether the function defines lambdas, functions or classes (else
        #: no statement of its states does, and `captured` is always empty).
        self.closures = closures
        self.m = machine
        self.live_in = live_in
        # (break live, continue live) of the native loops being walked
        self.loops: list[tuple[set[str], set[str]]] = []
        # What `uses` found for each node: the fixed point walks every state
        # again at each round, and a node's uses never change.
        self._uses: dict[cst.CSTNode, frozenset[str]] = {}

    # -- expressions ------------------------------------------------------------

    def uses(self, node: cst.CSTNode | None) -> set[str]:
        """Locals `node` reads where it runs, and those the lambdas, functions
        and classes it defines may read (they must exist when it runs; that a
        closure may also read them after a later await is `_closure_live`)."""
        if node is None:
            return set()
        found = self._uses.get(node)
        if found is None:
            out: set[str] = set()
            stack: list[cst.CSTNode] = [node]
            while stack:
                n = stack.pop()
                if _local(n, self.L):
                    out.add(n.attr.value)
                    continue
                stack.extend(_header(n))
            if self.closures:
                out |= captured(self.L, node)
            found = self._uses[node] = frozenset(out)
        return set(found)

    def target(self, node: cst.BaseExpression, live: set[str]) -> set[str]:
        """Live before storing into `node`, given live after."""
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value == self.L
        ):
            return live - {node.attr.value}
        if isinstance(node, cst.Tuple | cst.List):
            for el in reversed(node.elements):
                live = self.target(el.value, live)
            return live
        if isinstance(node, cst.StarredElement):
            return self.target(node.value, live)
        return live | self.uses(node)  # obj.attr / obj[i]: reads obj and i

    # -- statements -----------------------------------------------------------------

    def block(self, stmts: Sequence[cst.BaseStatement], live: set[str]) -> set[str]:
        for stmt in reversed(stmts):
            live = self.statement(stmt, live)
        return live

    def suite(self, suite: cst.BaseSuite | None, live: set[str]) -> set[str]:
        if suite is None:
            return live
        if isinstance(suite, cst.SimpleStatementSuite):
            return self.smalls(suite.body, live)
        assert isinstance(suite, cst.IndentedBlock)
        return self.block(suite.body, live)

    def smalls(self, smalls: Sequence[cst.BaseSmallStatement], live: set[str]) -> set[str]:
        for small in reversed(smalls):
            live = self.small(small, live)
        return live

    def small(self, s: cst.BaseSmallStatement, live: set[str]) -> set[str]:
        if isinstance(s, cst.Return):
            return self.returns(s.value)
        if isinstance(s, cst.Raise):
            return self.uses(s.exc) | self.uses(s.cause)
        if isinstance(s, cst.Break):
            return set(self.loops[-1][0]) if self.loops else set(live)
        if isinstance(s, cst.Continue):
            return set(self.loops[-1][1]) if self.loops else set(live)
        if isinstance(s, cst.Assign):
            for t in reversed(s.targets):
                live = self.target(t.target, live)
            return live | self.uses(s.value)
        if isinstance(s, cst.AnnAssign):
            if s.value is None:
                # `obj.attr: T` / `obj[i]: T` evaluate obj (and i), as CPython
                # does; `L.x: T` reads nothing. The annotation is never evaluated.
                return live | self.target(s.target, set())
            return self.target(s.target, live) | self.uses(s.value)
        if isinstance(s, cst.AugAssign):
            return live | self.uses(s.target) | self.uses(s.value)
        if isinstance(s, cst.Del):
            return live | self.uses(s.target)
        return live | self.uses(s)

    def returns(self, value: cst.BaseExpression | None) -> set[str]:
        if isinstance(value, cst.Integer):
            return set(self.live_in[int(value.value)])
        return self.uses(value)

    def statement(self, stmt: cst.BaseStatement, live: set[str]) -> set[str]:
        if isinstance(stmt, cst.SimpleStatementLine):
            return self.smalls(stmt.body, live)
        if isinstance(stmt, cst.If):
            orelse = stmt.orelse
            after_else = (
                live
                if orelse is None
                else self.statement(orelse, live)
                if isinstance(orelse, cst.If)
                else self.suite(orelse.body, live)
            )
            return self.uses(stmt.test) | self.suite(stmt.body, live) | after_else
        if isinstance(stmt, cst.For | cst.While):
            return self.loop(stmt, live)
        if isinstance(stmt, cst.Try | cst.TryStar):
            return self.try_(stmt, live)
        if isinstance(stmt, cst.With):
            # An exception anywhere in the body may be suppressed by an
            # __exit__, which then goes on after the with: what is live there
            # is live throughout the body (even after a `raise`).
            inner = self.suite(stmt.body, live) | live
            for item in reversed(stmt.items):
                if item.asname is not None:
                    inner = self.target(item.asname.name, inner)
                inner |= self.uses(item.item)
            return inner
        if isinstance(stmt, cst.Match):
            out = set(live) | self.uses(stmt.subject)
            for case in stmt.cases:
                out |= self.uses(case.pattern) | self.uses(case.guard) | self.suite(case.body, live)
            return out
        if isinstance(stmt, cst.FunctionDef | cst.ClassDef):
            # The body is a separate scope; its header is evaluated here.
            header: list[cst.CSTNode] = list(stmt.decorators)
            if isinstance(stmt, cst.FunctionDef):
                header.append(stmt.params)
            else:
                header += [*stmt.bases, *stmt.keywords]
            # What its body may read must exist from here on (it may run later).
            uses = set().union(*(self.uses(h) for h in header))
            return live | uses | captured(self.L, stmt)
        return live | self.uses(stmt)

    def loop(self, stmt: cst.For | cst.While, live: set[str]) -> set[str]:
        after_else = self.suite(stmt.orelse.body, live) if stmt.orelse is not None else set(live)
        head: set[str] = set()
        while True:
            if isinstance(stmt, cst.For):
                self.loops.append((set(live), head))
                body = self.suite(stmt.body, head)
                self.loops.pop()
                new_head = after_else | self.target(stmt.target, body)
            else:
                self.loops.append((set(live), head))
                body = self.suite(stmt.body, head)
                self.loops.pop()
                new_head = self.uses(stmt.test) | after_else | body
            if new_head == head:
                break
            head = new_head
        return head | (self.uses(stmt.iter) if isinstance(stmt, cst.For) else set())

    def try_(self, stmt: cst.Try | cst.TryStar, live: set[str]) -> set[str]:
        after = self.suite(stmt.finalbody.body, live) | live if stmt.finalbody is not None else live
        handlers: set[str] = set()
        for h in stmt.handlers:
            handlers |= self.uses(h.type) | self.suite(h.body, after)
        orelse = self.suite(stmt.orelse.body, after) if stmt.orelse is not None else after
        body = self.suite(stmt.body, orelse)
        return body | handlers | after


def _local(n: cst.CSTNode, frame: str) -> TypeGuard[cst.Attribute]:
    """Is `n` a local variable, `L.x` (not a helper of the locals, `L.__let__`)?"""
    return (
        isinstance(n, cst.Attribute)
        and isinstance(n.value, cst.Name)
        and n.value.value == frame
        and not (n.attr.value.startswith("__") and n.attr.value.endswith("__"))
    )


def _header(n: cst.CSTNode) -> Sequence[cst.CSTNode]:
    """The parts of `n` that run where it is: all of it, except the body of
    a lambda, function or class."""
    if isinstance(n, cst.Lambda):
        return [n.params]
    if isinstance(n, cst.FunctionDef):
        return [*n.decorators, n.params, *([n.returns] if n.returns else [])]
    if isinstance(n, cst.ClassDef):
        return [*n.decorators, *n.bases, *n.keywords]
    return children(n)


def captured(frame: str, node: cst.CSTNode) -> set[str]:
    """Locals read or written inside the bodies of the lambdas, functions and
    classes `node` defines (`L.k` there)."""
    out: set[str] = set()
    stack: list[tuple[cst.CSTNode, bool]] = [(node, False)]
    while stack:
        n, inside = stack.pop()
        if inside and _local(n, frame):
            out.add(n.attr.value)
            continue
        if isinstance(n, cst.Lambda | cst.FunctionDef | cst.ClassDef):
            stack.append((n.body, True))
        stack.extend((c, inside) for c in _header(n))
    return out


def _defines(body: cst.CSTNode) -> bool:
    """Whether the function's body defines a lambda, function or class: the
    lowering adds none, so the states hold one only if the source does."""
    stack = [body]
    while stack:
        n = stack.pop()
        if isinstance(n, cst.Lambda | cst.FunctionDef | cst.ClassDef):
            return True
        stack.extend(children(n))
    return False


def _closure_live(states: Sequence[State], frame: str) -> dict[int, set[str]]:
    """Await state -> the locals closures defined before it, or in its own
    operand, may use: those of every state it can be reached from."""
    out: dict[int, set[str]] = {}
    for state in states:
        names: set[str] = set()
        for stmt in state.body:
            names |= captured(frame, stmt)
        if not names:
            continue
        if state.is_await:  # defined in the operand: it may run during the await
            out.setdefault(state.index, set()).update(names)
        seen: set[int] = set()
        todo = list(_edges(state))
        while todo:
            i = todo.pop()
            if i in seen:
                continue
            seen.add(i)
            if states[i].is_await:
                out.setdefault(i, set()).update(names)
            todo.extend(_edges(states[i]))
    return out


def _edges(state: State) -> list[int]:
    edges = list(state.successors)
    if state.resume is not None:
        edges.append(state.resume)
    if state.on_error is not None:
        edges.append(state.on_error[0])
    return edges


def _state_live(flow: _Flow, state: State, live_in: list[frozenset[str]]) -> frozenset[str]:
    if state.is_await:
        assert state.resume is not None
        live = set(live_in[state.resume])
        [line] = state.body
        assert isinstance(line, cst.SimpleStatementLine)
        [ret] = line.body
        assert isinstance(ret, cst.Return)
        live |= flow.uses(ret.value)
    else:
        live = flow.block(state.body, set())
    if state.on_error is not None:
        target, var = state.on_error
        live |= live_in[target] - {var}
    live |= set(state.handled)
    return frozenset(live)


def liveness(lowered: Lowered) -> Lowered:
    analysis = lowered.analysis
    states = lowered.states
    live_in: list[frozenset[str]] = [frozenset()] * len(states)
    closures = _defines(analysis.function.node.body)
    flow = _Flow(analysis.reserved.frame, analysis.reserved.machine, live_in, closures)
    changed = True
    while changed:
        changed = False
        for state in reversed(states):
            new = _state_live(flow, state, live_in)
            if new != live_in[state.index]:
                live_in[state.index] = new
                changed = True
    order = {name: i for i, name in enumerate(analysis.params)}
    live: dict[int, tuple[str, ...]] = {}
    closure_live = _closure_live(states, analysis.reserved.frame) if closures else {}
    for state in states:
        if state.is_await:
            names = live_in[state.index] | closure_live.get(state.index, set())
            live[state.index] = tuple(
                sorted(names, key=lambda n: (n in lowered.hidden, order.get(n, len(order)), n))
            )
    errors = list(lowered.errors) + _function_values(lowered, live)
    return Lowered(analysis, states, lowered.hidden, live, tuple(errors))


def _function_values(lowered: Lowered, live: dict[int, tuple[str, ...]]) -> list[CompileError]:
    analysis = lowered.analysis
    parsed = analysis.parsed
    errors: list[CompileError] = []
    reported: set[str] = set()
    for index, names in live.items():
        for name in _ordered(names, analysis.function_values):
            if name in reported:
                continue
            reported.add(name)
            line, column = analysis.function_values[name]
            text = parsed.lines[line - 1] if 0 < line <= len(parsed.lines) else ""
            await_line = lowered.states[index].line
            errors.append(
                CompileError(
                    f"`{name}` holds a class defined in the function and is used after the "
                    f"await on line {await_line}; a class defined in a function cannot be "
                    "stored in a checkpoint (its body would have to run again)",
                    path=parsed.display_path,
                    line=line,
                    column=column,
                    code=codes.FUNCTION_VALUE.code,
                    construct=codes.FUNCTION_VALUE.construct,
                    fix=f"define `{name}` at module level (it can take the values it needs "
                    "as arguments), or define it again after the await",
                    source_line=text,
                )
            )
    return errors


def _ordered(names: Iterable[str], values: object) -> list[str]:
    assert isinstance(values, dict)
    return [n for n in names if n in values]
