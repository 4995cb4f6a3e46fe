"""Small lowering cases: each shows one construct's input beside its states.

A `.test` file under tests/lowering holds cases in mypyc's format:

    [case tryFinallyReturn]
    @resumable.function
    async def f(a):
        try:
            return await step("a", a)
        finally:
            await step("b")
    [args]
    [(1,), (2,)]
    [out]
    state 0, line 4: await -> 1, live a
        return step("a", L.a)
    ...

The input is the body of a module that already has `import resumable` and
`from resumable.testing import step`; its first decorated function is the
case's. `[args]` (optional, a Python list of argument tuples) is what the
differential run calls it with; `[refused]` (optional) names the error a
compiled run stops with by design where the original goes on (a value that
cannot be stored: `SerializationError`); `[out]` is the expected listing,
rewritten by `pytest --update-golden`. The listing shows each state with where its
exceptions go (`except -> 7 as _x1`), the exceptions it handles, and for an
await state the state it resumes at and the locals live at its checkpoint.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRELUDE = "import resumable\nfrom resumable.testing import step\n\n"
FOLDER = Path(__file__).parent / "lowering"

_SECTION = re.compile(r"^\[(case [A-Za-z_][A-Za-z0-9_]*|args|refused|out)\]\s*$")


@dataclass
class Case:
    name: str
    file: Path
    line: int
    source: str
    args: list[tuple[Any, ...]] = field(default_factory=lambda: [()])
    #: The error a compiled run stops with by design (the original does not).
    refused: str = ""
    out: str = ""

    @property
    def module(self) -> str:
        return PRELUDE + self.source


def read_cases(path: Path) -> list[Case]:
    cases: list[Case] = []
    section = ""
    lines: list[str] = []

    def flush() -> None:
        if not cases or not section:
            return
        text = "\n".join(lines).strip("\n") + "\n"
        case = cases[-1]
        if section.startswith("case"):
            case.source = text
        elif section == "args":
            case.args = [tuple(a) for a in ast.literal_eval(text)]
        elif section == "refused":
            case.refused = text.strip()
        else:
            case.out = text

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _SECTION.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        section, lines = match.group(1), []
        if section.startswith("case"):
            cases.append(Case(section.split()[1], path, number, ""))
    flush()
    return cases


def all_cases() -> list[Case]:
    return [c for path in sorted(FOLDER.glob("*.test")) for c in read_cases(path)]


def listing(source: str, path: str = "case.py") -> str:
    """The states of the case's first decorated function, as [out] shows them
    (its line numbers are the case's: the imports go after it)."""
    import libcst as cst

    from resumable_compiler.analyze import analyze
    from resumable_compiler.check import check
    from resumable_compiler.liveness import liveness
    from resumable_compiler.lower import lower
    from resumable_compiler.parse import parse

    parsed = parse(path, source + "\n" + PRELUDE)
    if parsed.errors:
        return "".join(f"{e}\n" for e in parsed.errors)
    analysis = analyze(parsed, parsed.functions[0])
    if analysis.errors:
        return "".join(f"{e}\n" for e in analysis.errors)
    lowered = liveness(lower(analysis))
    if lowered.errors:
        return "".join(f"{e}\n" for e in lowered.errors)
    check(lowered)
    empty = cst.Module([], default_indent="    ")
    out: list[str] = []
    for s in lowered.states:
        notes = []
        if s.is_await:
            live = ", ".join(lowered.live[s.index]) or "nothing"
            notes.append(f"await -> {s.resume}, live {live}")
        if s.on_error is not None:
            notes.append(f"except -> {s.on_error[0]} as {s.on_error[1]}")
        if s.handled:
            notes.append(f"handling {', '.join(s.handled)}")
        head = f"state {s.index}, line {s.line}"
        out.append(head + (": " + "; ".join(notes) if notes else ""))
        for stmt in s.body:
            text = empty.code_for_node(stmt.with_changes(leading_lines=[]))
            out += ["    " + t for t in text.rstrip("\n").splitlines()]
    return "\n".join(out) + "\n"


def write_outputs(path: Path, outputs: dict[str, str]) -> None:
    """Rewrite the [out] sections of the cases in `path`."""
    result: list[str] = []
    name = ""
    skipping = False
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _SECTION.match(line)
        if match is not None:
            section = match.group(1)
            if skipping:
                result.append("")
            skipping = False
            if section.startswith("case"):
                name = section.split()[1]
            elif section == "out":
                result.append(line)
                result += outputs[name].rstrip("\n").splitlines()
                skipping = True
                continue
        if not skipping:
            result.append(line)
    path.write_text("\n".join(result).rstrip("\n") + "\n", encoding="utf-8")
