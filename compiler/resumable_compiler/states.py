"""The state listing the lowering writes into.

States are appended in order; `mark(label)` closes the current state (with a
jump to `label` if it did not end) and starts the state `label` names. Jump
targets are labels, written as placeholder integers and fixed once every
state has its final number (numbering.py):

    before, after = w.new_label(), w.new_label()
    w.mark(before)
    w.jump_if(test, after, when=False)     # if not test: return <after>
    ...
    w.jump(before)
    w.mark(after)

The control entries (control.py) the lowering is inside are pushed and
popped with `with w.inside(entry):`, which checks that it pops its own entry.
An entry that changes where exceptions go starts a new state on the way in
and on the way out, so every state has one exception route.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import libcst as cst

from resumable.errors import InternalError

from .control import Entry, Jump, JumpKind, Label, LoopEntry, routing
from .ir import Analysis, AwaitSite
from .rewrite import attr, call, parenthesize

__all__ = ["Draft", "Placeholders", "StateWriter"]

#: id(placeholder node) -> (the node, the label whose state number it stands for).
Placeholders = dict[int, tuple[cst.Integer, Label]]


@dataclass(eq=False)
class Draft:
    """A state being written: its statements, and the entries it is inside."""

    label: Label
    entries: tuple[Entry, ...]
    line: int
    body: list[cst.BaseStatement] = field(default_factory=list)
    successors: list[Label] = field(default_factory=list)
    closed: bool = False
    is_await: bool = False
    resume: Label | None = None
    #: For an await state: the await of the source it evaluates (an `await`
    #: expression, or an implicit await of `async with` / `async for`).
    source: AwaitSite | None = None


class StateWriter:
    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.L = analysis.reserved.frame
        self.m = analysis.reserved.machine
        self.prefix = analysis.reserved.hidden
        self.entries: tuple[Entry, ...] = ()
        self.drafts: list[Draft] = []
        self.labels = 0
        self.counters: dict[str, int] = {}
        self.hidden: dict[str, str] = {}
        self.placeholders: Placeholders = {}
        #: The state each marked label names.
        self.marked: dict[Label, Draft] = {}
        self.line = analysis.function.def_line
        self.comment: str | None = None
        self.sent_nodes: list[cst.Attribute] = []
        self._start(self.new_label())

    # -- labels and states ---------------------------------------------------

    def new_label(self) -> Label:
        self.labels += 1
        return Label(self.labels)

    def _start(self, label: Label) -> None:
        draft = Draft(label=label, entries=self.entries, line=self.line)
        self.marked[label] = draft
        self.drafts.append(draft)

    @property
    def current(self) -> Draft:
        return self.drafts[-1]

    def mark(self, label: Label) -> None:
        """Start the state `label` names (falling through to it)."""
        self._fall_into(label)
        self._begin(label)

    def _fall_into(self, label: Label) -> None:
        if not self.current.closed:
            self.jump(label)

    def _begin(self, label: Label) -> None:
        if label in self.marked:
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
        if not line and isinstance(node, cst.SimpleStatementLine) and node.body:
            line = parsed.line_of(node.body[0])  # the line of a one-line suite (analyze made it)
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
        d = self.current
        if routing(d.entries) != routing(self.entries):
            raise InternalError("statement emitted into a state of another region")
        if not d.body:
            d.line = self.line
        if self.comment is not None:
            comment = cst.EmptyLine(comment=cst.Comment("# " + self.comment))
            assert isinstance(stmt, cst.SimpleStatementLine | cst.BaseCompoundStatement)
            stmt = stmt.with_changes(leading_lines=[*stmt.leading_lines, comment])
            self.comment = None
        d.body.append(stmt)
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(
            stmt.body[-1], cst.Return | cst.Raise
        ):
            d.closed = True

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
        if not when:
            test = cst.UnaryOperation(cst.Not(), parenthesize(test))
        self.emit(cst.If(test=test, body=cst.SimpleStatementSuite([cst.Return(self.ref(label))])))

    def if_then(self, test: cst.BaseExpression, code: list[cst.BaseSmallStatement]) -> None:
        """`if test: <code>` on one line."""
        self.emit(cst.If(test=test, body=cst.SimpleStatementSuite(code)))

    def finish_with(self, value: cst.BaseExpression) -> cst.Return:
        return cst.Return(call(attr(self.m, "done"), value))

    def throw(self, exc: cst.BaseExpression) -> cst.Return:
        """`return m.throw(exc)`: raise `exc` without touching its context."""
        return cst.Return(call(attr(self.m, "throw"), exc))

    # -- awaits ---------------------------------------------------------------------

    def sent(self) -> cst.Attribute:
        """The value of the await that just finished (a fresh node, so that
        uses of it can be found by identity)."""
        node = attr(self.m, "sent")
        self.sent_nodes.append(node)
        return node

    def await_(self, source: AwaitSite, operand: cst.BaseExpression) -> cst.Attribute:
        """An await state evaluating `operand`, the lowered operand of `source`
        (for an implicit await, the call that makes its awaitable); returns
        the awaited value."""
        await_label, resume = self.new_label(), self.new_label()
        self.mark(await_label)
        d = self.current
        d.is_await = True
        d.resume = resume
        d.source = source
        d.successors.append(resume)
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

    # -- control entries ---------------------------------------------------------------

    @contextmanager
    def inside(self, entry: Entry, start: Label | None = None) -> Iterator[Entry]:
        """Lower what the block emits inside `entry`. An entry that routes
        exceptions starts in a new state (`start`, or a fresh one), and what
        follows it starts in a new state too."""
        if entry.routes:
            label = start or self.new_label()
            self._fall_into(label)
            self.entries = (*self.entries, entry)
            self._begin(label)
        else:
            if start is not None:
                raise InternalError("a loop entry starts no state of its own")
            self.entries = (*self.entries, entry)
        yield entry
        if not self.entries or self.entries[-1] is not entry:
            raise InternalError("control entries popped out of order")
        if entry.routes and not self.current.closed:
            label = self.new_label()
            self._fall_into(label)
            self.entries = self.entries[:-1]
            self._begin(label)
        else:
            self.entries = self.entries[:-1]

    # -- leaving constructs: break, continue, return -------------------------------------

    def jump_code(
        self, kind: JumpKind, value: cst.BaseExpression | None = None
    ) -> list[cst.BaseSmallStatement]:
        """Small statements that perform `break`, `continue` or `return value` here."""
        if kind is JumpKind.RETURN:
            return self.leave(Jump(kind), value)
        loop = next((e for e in reversed(self.entries) if isinstance(e, LoopEntry)), None)
        if loop is None:
            raise InternalError(f"`{kind.value}` outside a lowered loop")
        return self.leave(Jump(kind, loop.brk if kind is JumpKind.BREAK else loop.cont))

    def leave(
        self, jump: Jump, value: cst.BaseExpression | None = None
    ) -> list[cst.BaseSmallStatement]:
        """The code of `jump` from here: each entry it leaves adds its part."""
        code: list[cst.BaseSmallStatement] = []
        rv = f"{self.prefix}rv"
        if value is not None and any(e.exit_runs_code() for e in self.entries):
            self.hidden.setdefault(rv, "the value being returned")
            code.append(cst.Assign([cst.AssignTarget(self.local(rv))], value))
            value = self.local(rv)
        for entry in reversed(self.entries):
            if entry.exit(self, jump, code):
                return code
        if jump.kind is not JumpKind.RETURN:
            raise InternalError(f"`{jump.kind.value}` target not found")
        code.append(self.finish_with(value if value is not None else self.local(rv)))
        return code
