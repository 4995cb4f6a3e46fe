"""The state listing the lowering writes into, and the region stack.

States are appended in order; `mark(label)` closes the current state (with a
jump to `label` if it did not end) and starts the state `label` names. Jump
targets are labels, written as placeholder integers and fixed once every
state has its final number:

    before, after = em.new_label(), em.new_label()
    em.mark(before)
    em.jump_if(test, after, when=False)     # if not test: return <after>
    ...
    em.jump(before)
    em.mark(after)

The region stack says where control goes when it leaves a construct, like
regenerator's leap manager, and also where exceptions go:

    Loop(break, continue)        break/continue targets
    Try(dispatch, var)           body of a try with except clauses
    Dispatch(var)                evaluating the except clauses
    Handler(var, name, cleanup)  inside `except ... [as name]`
    Finally(entry, record)       protected by a finally block
    FinallyBody(record)          inside the finally block

Every push or pop that changes where exceptions go starts a new state, so a
state's `on_error` and `handled` are a property of the whole state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from resumable.errors import InternalError

from .ir import Analysis, State
from .rewrite import attr, call

__all__ = ["RETURN", "Builder", "Emitter", "Label", "Region", "routes", "routing"]

#: The finally record meaning "a return is pending" (jumps are state numbers).
RETURN = -1


class Label:
    """A jump target; its state number is known once marked (and renumbered)."""

    __slots__ = ("builder", "id")

    def __init__(self, id: int) -> None:
        self.id = id
        self.builder: Builder | None = None

    def __repr__(self) -> str:
        return f"Label({self.id})"


@dataclass(eq=False)
class Region:
    kind: str  # loop | try | dispatch | handler | finally | finally_body
    var: str = ""
    target: Label | None = None  # loop: break; try: dispatch; handler: cleanup; finally: entry
    resume: Label | None = None  # loop: continue
    name: str | None = None  # handler: the `as` name
    #: finally: the jumps that went through it, re-issued at its end.
    pending: list[tuple[str, Label | None]] = field(default_factory=list)


@dataclass(eq=False)
class Builder:
    label: Label
    regions: tuple[Region, ...]
    line: int
    body: list[cst.BaseStatement] = field(default_factory=list)
    successors: list[Label] = field(default_factory=list)
    closed: bool = False
    is_await: bool = False
    resume: Label | None = None
    #: For an await state: the source await it evaluates.
    source: cst.Await | None = None


class Emitter:
    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.L = analysis.reserved.frame
        self.m = analysis.reserved.machine
        self.prefix = analysis.reserved.hidden
        self.regions: tuple[Region, ...] = ()
        self.builders: list[Builder] = []
        self.labels = 0
        self.counters: dict[str, int] = {}
        self.hidden: dict[str, str] = {}
        self.placeholders: dict[int, tuple[cst.Integer, Label]] = {}
        self.line = analysis.function.def_line
        self.comment: str | None = None
        self.sent_nodes: list[cst.Attribute] = []
        start = self.new_label()
        self._start(start)

    # -- labels and states ---------------------------------------------------

    def new_label(self) -> Label:
        self.labels += 1
        return Label(self.labels)

    def _start(self, label: Label) -> None:
        builder = Builder(label=label, regions=self.regions, line=self.line)
        label.builder = builder
        self.builders.append(builder)

    @property
    def current(self) -> Builder:
        return self.builders[-1]

    def mark(self, label: Label) -> None:
        """Start the state `label` names (falling through to it)."""
        self._fall_into(label)
        self._begin(label)

    def _fall_into(self, label: Label) -> None:
        if not self.current.closed:
            self.jump(label)

    def _begin(self, label: Label) -> None:
        if label.builder is not None:
            raise InternalError(f"{label} marked twice")
        self._start(label)

    def ref(self, label: Label, *, successor: bool = True) -> cst.Integer:
        """A placeholder for `label`'s state number; `successor` when the
        current state may continue there (for liveness)."""
        if successor:
            self.ensure_open()  # the successor belongs to the state the code goes into
        node = cst.Integer("0")
        self.placeholders[id(node)] = (node, label)
        if successor:
            self.current.successors.append(label)
        return node

    # -- emitting ------------------------------------------------------------------

    def note(self, node: cst.CSTNode) -> None:
        """The next statement emitted comes from source `node` (for the comment)."""
        parsed = self.analysis.parsed
        line = parsed.line_of(node)
        if line:
            self.line = line
            text = parsed.lines[line - 1].strip()
            if len(text) > 72:
                text = text[:69] + "..."
            self.comment = f"line {line}: {text}"

    def ensure_open(self) -> None:
        """Code after a jump (statements after `return`) is unreachable, but
        still gets a state of its own, which nothing jumps to."""
        if self.current.closed:
            self._start(self.new_label())

    def emit(self, stmt: cst.BaseStatement) -> None:
        self.ensure_open()
        b = self.current
        if routing(b.regions) != routing(self.regions):
            raise InternalError("statement emitted into a state of another region")
        if not b.body:
            b.line = self.line
        if self.comment is not None:
            comment = cst.EmptyLine(comment=cst.Comment("# " + self.comment))
            assert isinstance(stmt, cst.SimpleStatementLine | cst.BaseCompoundStatement)
            stmt = stmt.with_changes(leading_lines=[*stmt.leading_lines, comment])
            self.comment = None
        b.body.append(stmt)
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(
            stmt.body[-1], cst.Return | cst.Raise
        ):
            b.closed = True

    def emit_small(self, *smalls: cst.BaseSmallStatement) -> None:
        self.emit(cst.SimpleStatementLine(list(smalls)))

    def close(self) -> None:
        self.current.closed = True

    def jump(self, label: Label) -> None:
        if self.current.closed:
            return  # unreachable: the state already ended
        # A bare jump keeps the pending source comment for the next statement.
        comment, self.comment = self.comment, None
        self.emit_small(cst.Return(self.ref(label)))
        self.comment = comment
        self.close()

    def jump_if(self, test: cst.BaseExpression, label: Label, *, when: bool) -> None:
        """`if test: return <label>` (when=True) or `if not test: ...`."""
        from .rewrite import parenthesize

        if not when:
            test = cst.UnaryOperation(cst.Not(), parenthesize(test))
        self.emit(cst.If(test=test, body=cst.SimpleStatementSuite([cst.Return(self.ref(label))])))

    def finish_with(self, value: cst.BaseExpression) -> cst.Return:
        return cst.Return(call(attr(self.m, "done"), value))

    # -- awaits ---------------------------------------------------------------------

    def sent(self) -> cst.Attribute:
        """The value of the await that just finished (a fresh node, so that
        uses of it can be found by identity)."""
        node = attr(self.m, "sent")
        self.sent_nodes.append(node)
        return node

    def await_(self, source: cst.Await, operand: cst.BaseExpression) -> cst.Attribute:
        """An await state evaluating `operand`, the lowered operand of `source`;
        returns the awaited value."""
        await_label, resume = self.new_label(), self.new_label()
        self.mark(await_label)
        b = self.current
        b.is_await = True
        b.resume = resume
        b.source = source
        b.successors.append(resume)
        self.emit_small(cst.Return(operand))
        self.close()
        self.mark(resume)
        return self.sent()

    # -- hidden variables -----------------------------------------------------------

    def hidden_var(self, kind: str, description: str) -> str:
        n = self.counters.get(kind, 0) + 1
        self.counters[kind] = n
        name = f"{self.prefix}{kind}{n}"
        self.hidden[name] = description
        return name

    def local(self, name: str) -> cst.Attribute:
        return attr(self.L, name)

    def assign(self, name: str, value: cst.BaseExpression) -> None:
        self.emit_small(cst.Assign([cst.AssignTarget(self.local(name))], value))

    # -- regions ----------------------------------------------------------------------

    def push(self, region: Region) -> None:
        self.regions = (*self.regions, region)

    def pop(self, region: Region) -> None:
        if not self.regions or self.regions[-1] is not region:
            raise InternalError("region stack out of order")
        if region.kind != "loop" and not self.current.closed:
            raise InternalError(f"left a {region.kind} region from an open state")
        self.regions = self.regions[:-1]

    def enter(self, region: Region, label: Label | None = None) -> None:
        """Push a region that changes where exceptions go; it starts in a new
        state (`label`, or a fresh one)."""
        label = label or self.new_label()
        self._fall_into(label)
        self.push(region)
        self._begin(label)

    def leave(self, region: Region, label: Label | None = None) -> None:
        """Pop `region`; what follows starts in a new state."""
        label = label or self.new_label()
        self._fall_into(label)
        self.pop(region)
        self._begin(label)

    # -- leaving constructs: break, continue, return -------------------------------------

    def jump_code(
        self, kind: str, value: cst.BaseExpression | None
    ) -> list[cst.BaseSmallStatement]:
        """Small statements that perform `break`, `continue` or `return value` here."""
        target: Label | None = None
        if kind != "return":
            loop = next((r for r in reversed(self.regions) if r.kind == "loop"), None)
            if loop is None:
                raise InternalError(f"`{kind}` outside a lowered loop")
            target = loop.target if kind == "break" else loop.resume
        return self.jump_to(kind, target, value)

    def jump_to(
        self, kind: str, target: Label | None, value: cst.BaseExpression | None
    ) -> list[cst.BaseSmallStatement]:
        code: list[cst.BaseSmallStatement] = []
        rv = f"{self.prefix}rv"
        if kind == "return" and value is not None and self._crosses_cleanup():
            self.hidden.setdefault(rv, "the value being returned")
            code.append(cst.Assign([cst.AssignTarget(self.local(rv))], value))
            value = self.local(rv)
        for region in reversed(self.regions):
            if (
                region.kind == "loop"
                and target is not None
                and target in (region.target, region.resume)
            ):
                code.append(cst.Return(self.ref(target)))
                return code
            if region.kind == "handler" and region.name is not None:
                local = self.local(region.name)
                code += [cst.Assign([cst.AssignTarget(local)], cst.Name("None")), cst.Del(local)]
            elif region.kind == "finally":
                assert region.target is not None
                record: cst.BaseExpression = (
                    cst.UnaryOperation(cst.Minus(), cst.Integer("1"))
                    if target is None
                    else self.ref(target, successor=False)
                )
                code.append(cst.Assign([cst.AssignTarget(self.local(region.var))], record))
                if (kind, target) not in region.pending:
                    region.pending.append((kind, target))
                code.append(cst.Return(self.ref(region.target)))
                return code
        if kind != "return":
            raise InternalError(f"`{kind}` target not found")
        code.append(self.finish_with(value if value is not None else self.local(rv)))
        return code

    def _crosses_cleanup(self) -> bool:
        return any(
            (r.kind == "handler" and r.name is not None) or r.kind == "finally"
            for r in self.regions
        )

    # -- finishing ----------------------------------------------------------------------

    def finish(self) -> tuple[State, ...]:
        """The numbered states (see listing.py)."""
        from .listing import number_states

        if not self.current.closed:
            self.emit_small(self.finish_with(cst.Name("None")))
            self.close()
        return number_states(self.builders, self.placeholders, self.analysis.awaits)


def routing(regions: tuple[Region, ...]) -> tuple[Region, ...]:
    """The regions that decide where exceptions go (loops do not)."""
    return tuple(r for r in regions if r.kind != "loop")


def routes(regions: tuple[Region, ...]) -> tuple[tuple[Label, str] | None, tuple[str, ...]]:
    """(on_error target and variable, handled variables) of a state in `regions`."""
    on_error: tuple[Label, str] | None = None
    for r in reversed(regions):
        if r.kind == "try" or r.kind == "finally" or (r.kind == "handler" and r.name is not None):
            assert r.target is not None
            on_error = (r.target, r.var)
            break
    handled = tuple(r.var for r in regions if r.kind in ("dispatch", "handler", "finally_body"))
    return on_error, handled
