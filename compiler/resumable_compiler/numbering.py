"""The end of the lowering: the drafted states -> the final, numbered states.

1. A state that only jumps is dropped; whatever jumped to it jumps to its
   target (an entry state that only falls through is dropped too).
2. A state reached by a single jump and referred to by nothing else (no
   exception route, resume or finally record) is appended to the state that
   jumps to it, when both route exceptions the same way: straight-line code
   stays in one state.
3. States are numbered in listing order (the source's order) and every label
   placeholder becomes the number of its state.

    state 4: L.x = 1; return 5        state 4: L.x = 1
    state 5: L.y = 2; return 7   ->            L.y = 2; return 6
    state 6: return 7   (dropped)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import libcst as cst

from resumable.errors import InternalError

from .control import Label, exception_route, handled_vars, routing
from .ir import AwaitSite, State
from .states import Draft, Placeholders
from .tree import field_names

__all__ = ["number_states"]


def number_states(
    drafts: Sequence[Draft],
    marked: Mapping[Label, Draft],
    placeholders: Placeholders,
    awaits: Sequence[AwaitSite],
) -> tuple[State, ...]:
    """The final states; an await state's `site` is the index of its source
    await in `awaits` (None if it is missing there, which check reports)."""
    entry, target = _collapse(drafts, marked)
    kept = [b for b in drafts if target[id(b)] is b]
    if not kept or kept[0] is not entry:
        raise InternalError("the entry state is not the first state")

    def resolved(label: Label) -> Draft:
        if label not in marked:
            raise InternalError(f"{label} jumped to but never marked")
        return target[id(marked[label])]

    kept = _merge(kept, entry, placeholders, resolved)
    number = {id(b): i for i, b in enumerate(kept)}

    def state_of(label: Label) -> int:
        return number[id(resolved(label))]

    fixer = _Placeholders(placeholders, state_of)
    ordinal: dict[AwaitSite, int] = {a: i for i, a in enumerate(awaits)}
    states = []
    for i, b in enumerate(kept):
        on_error, handled = exception_route(b.entries), handled_vars(b.entries)
        states.append(
            State(
                index=i,
                body=tuple(_fix(stmt, fixer) for stmt in b.body),
                line=b.line,
                is_await=b.is_await,
                resume=state_of(b.resume) if b.resume is not None else None,
                site=ordinal.get(b.source) if b.source is not None else None,
                on_error=(state_of(on_error[0]), on_error[1]) if on_error else None,
                handled=handled,
                successors=tuple(sorted({state_of(s) for s in b.successors})),
            )
        )
    return tuple(states)


def _collapse(
    drafts: Sequence[Draft], marked: Mapping[Label, Draft]
) -> tuple[Draft, dict[int, Draft]]:
    """The entry state, and for each state the state it stands for."""
    i = 0
    while (
        i + 1 < len(drafts)
        and _jump_target(drafts[i]) is not None
        and marked.get(drafts[i].successors[0]) is drafts[i + 1]
    ):
        i += 1
    entry = drafts[i]

    def resolve(b: Draft) -> Draft:
        seen: set[int] = set()
        while b is not entry and id(b) not in seen and _jump_target(b) is not None:
            seen.add(id(b))
            nxt = marked[b.successors[0]]
            b = nxt
        return b

    return entry, {id(b): resolve(b) for b in drafts}


def _jump_target(b: Draft) -> cst.Integer | None:
    """The placeholder of a state whose whole body is one jump."""
    if b.is_await or len(b.body) != 1 or len(b.successors) != 1:
        return None
    return _final_jump(b)


def _final_jump(b: Draft) -> cst.Integer | None:
    """The placeholder of a state's last statement, when it is `return <state>`."""
    stmt = b.body[-1] if b.body else None
    if (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Return)
        and isinstance(stmt.body[0].value, cst.Integer)
    ):
        return stmt.body[0].value
    return None


def _merge(
    kept: list[Draft],
    entry: Draft,
    placeholders: Placeholders,
    resolved: Callable[[Label], Draft],
) -> list[Draft]:
    refs: Counter[int] = Counter({id(entry): 1})
    for _, label in placeholders.values():
        refs[id(resolved(label))] += 1
    for b in kept:
        on_error = exception_route(b.entries)
        for label in ([on_error[0]] if on_error else []) + ([b.resume] if b.resume else []):
            refs[id(resolved(label))] += 1
    merged: set[int] = set()
    for b in kept:
        if id(b) in merged or b.is_await:
            continue
        while True:
            jump = _final_jump(b)
            if jump is None or id(jump) not in placeholders:
                break
            label = placeholders[id(jump)][1]
            nxt = resolved(label)
            if (
                nxt is b
                or nxt.is_await
                or refs[id(nxt)] != 1
                or id(nxt) in merged
                or routing(nxt.entries) != routing(b.entries)
            ):
                break
            b.body = b.body[:-1] + nxt.body
            b.successors.remove(label)
            b.successors.extend(nxt.successors)
            merged.add(id(nxt))
    return [b for b in kept if id(b) not in merged]


class _Placeholders(cst.CSTTransformer):
    """Replaces each label placeholder by its state number."""

    def __init__(self, placeholders: Placeholders, state_of: Callable[[Label], int]) -> None:
        super().__init__()
        self.placeholders = placeholders
        self.state_of = state_of

    def leave_Integer(self, original_node: cst.Integer, updated_node: cst.Integer) -> cst.Integer:
        found = self.placeholders.get(id(original_node))
        if found is None or found[0] is not original_node:
            return updated_node
        return cst.Integer(str(self.state_of(found[1])))


def _fix(stmt: cst.BaseStatement, fixer: _Placeholders) -> cst.BaseStatement:
    """`stmt` with its placeholders replaced: only the nodes above one are
    copied (a transformer would copy every node of every statement)."""
    out = _replaced(stmt, fixer)
    assert isinstance(out, cst.BaseStatement)
    return out


def _replaced(node: cst.CSTNode, fixer: _Placeholders) -> cst.CSTNode:
    if isinstance(node, cst.Integer):
        return fixer.leave_Integer(node, node)
    changes: dict[str, object] = {}
    for name in field_names(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            new = _replaced(value, fixer)
            if new is not value:
                changes[name] = new
        elif isinstance(value, list | tuple):
            items = [_replaced(v, fixer) if isinstance(v, cst.CSTNode) else v for v in value]
            if any(new is not old for new, old in zip(items, value, strict=True)):
                changes[name] = type(value)(items)
    return node.with_changes(**changes) if changes else node
