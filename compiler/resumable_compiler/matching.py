"""Lowering of `match` statements that contain awaits.

The subject is evaluated once, into a hidden temporary. The patterns are
never taken apart: the cases are tested by await-free `match` statements
emitted unchanged, so every kind of pattern (value, class, mapping,
sequence, star, or, as, captures) matches as CPython's own. Captures are
copied into the locals by `m.capture` (rewrite.py), which runs as the first
part of the guard: before the guard, and kept when it fails, as in CPython.

    match await get():           L._t1 = m.sent
        case [x] if await ok(x):  match L._t1:
            await use(x)              case [x] if m.capture(L, x=x):
        case {"k": v}:                    return <guard>
            total = v             return <next>
                         guard:   return ok(L.x)             (await state)
                                  if not m.sent: return <next>
                                  return use(L.x)            (await state)
                                  return <end>
                         next:    match L._t1:
                                      case {"k": v} if m.capture(L, v=v):
                                          L.total = L.v
                                          return <end>
                                  return <end>               (no case matched)

Consecutive cases share one `match` statement; a case whose guard awaits
ends it, since the cases after it are also reached when that guard is false.
A case whose guard and body do not await runs inside the `match` statement;
one that awaits jumps to its own states.
"""

from __future__ import annotations

import libcst as cst

from .builder import Lowering, is_constant
from .control import Label
from .rewrite import pattern_captures

__all__ = ["lower_match"]


def lower_match(b: Lowering, node: cst.Match) -> None:
    w = b.w
    if not any(b.has_await(case) for case in node.cases):
        # Only the subject awaits: the statement itself runs unchanged.
        subject = b.value(node.subject)
        w.ensure_open()
        [rewritten] = b.rw.statement(node)
        assert isinstance(rewritten, cst.Match)
        w.emit(rewritten.with_changes(subject=subject))
        return
    subject = b.value(node.subject)
    if not is_constant(node.subject):
        line = b.analysis.parsed.line_of(node) or w.line
        name = w.hidden_var("t", f"the subject of the match on line {line}")
        w.assign(name, subject)
        subject = w.local(name)
    end = w.new_label()
    cases = list(node.cases)
    while cases:
        n = next((i for i, c in enumerate(cases) if b.has_await(c.guard)), len(cases) - 1)
        if len(cases) < len(node.cases):
            w.note(cases[0])
        group, cases = cases[: n + 1], cases[n + 1 :]
        following = w.new_label()  # no case of the group matched, or a guard was false
        lowered = _test(b, node, subject, group, end)
        w.jump(following)
        for case, label in lowered:
            _case(b, case, label, following, end)
        w.mark(following)
    w.mark(end)


def _test(
    b: Lowering,
    node: cst.Match,
    subject: cst.BaseExpression,
    group: list[cst.MatchCase],
    end: Label,
) -> list[tuple[cst.MatchCase, Label]]:
    """Emit one `match` statement testing the cases of `group`; the cases
    that await, each with the label of its states."""
    w = b.w
    placeholder = cst.IndentedBlock([cst.SimpleStatementLine([cst.Pass()])])
    tested: list[cst.MatchCase] = []
    lowered: list[tuple[cst.MatchCase, Label]] = []
    for case in group:
        if b.has_await(case.guard):  # tested here, then its guard in its own states
            tested.append(case.with_changes(guard=None, body=placeholder, **_NO_GUARD))
            lowered.append((case, w.new_label()))
        elif b.has_await(case):
            tested.append(case.with_changes(body=placeholder))
            lowered.append((case, w.new_label()))
        else:
            tested.append(case)
    w.ensure_open()
    statement = node.with_changes(subject=cst.Name("None"), cases=tested)
    [rewritten] = b.rw.statement(statement)
    assert isinstance(rewritten, cst.Match)
    labels = iter(label for _, label in lowered)
    out = []
    for case, original in zip(rewritten.cases, group, strict=True):
        body: list[cst.BaseStatement]
        if b.has_await(original):
            body = [cst.SimpleStatementLine([cst.Return(w.ref(next(labels)))])]
        else:
            body = [*_statements(case.body)]
            if not _ends(body):
                body.append(cst.SimpleStatementLine([cst.Return(w.ref(end))]))
        out.append(case.with_changes(body=cst.IndentedBlock(body)))
    w.emit(rewritten.with_changes(subject=subject, cases=out))
    return lowered


def _case(b: Lowering, case: cst.MatchCase, label: Label, following: Label, end: Label) -> None:
    """The states of a case that awaits: its guard (when it awaits), its body."""
    w = b.w
    w.mark(label)
    w.note(case)
    captured = set(pattern_captures(case.pattern)) & b.analysis.locals
    if b.has_await(case.guard):
        assert case.guard is not None
        saved = set(b.bound)
        b.bound |= captured - b.analysis.deleted
        b.jump_if(case.guard, following, when=False)
        b.bound = saved
    b.body(case.body, captured)
    w.jump(end)


_NO_GUARD = {
    "whitespace_before_if": cst.SimpleWhitespace(""),
    "whitespace_after_if": cst.SimpleWhitespace(""),
}


def _statements(suite: cst.BaseSuite) -> list[cst.BaseStatement]:
    if isinstance(suite, cst.SimpleStatementSuite):
        return [cst.SimpleStatementLine(suite.body)]
    assert isinstance(suite, cst.IndentedBlock)
    return list(suite.body)


def _ends(body: list[cst.BaseStatement]) -> bool:
    last = body[-1] if body else None
    return isinstance(last, cst.SimpleStatementLine) and isinstance(
        last.body[-1], cst.Return | cst.Raise
    )
