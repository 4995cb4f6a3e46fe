"""Fuzz: the compiler never crashes on valid Python, whatever the decorated
functions hold.

Each example is a module from tests/fuzz_programs.py (one to three decorated
`async def`s drawn from the whole 3.11 function-body grammar, with awaits in
as many positions as CPython allows). Inputs CPython rejects, and the few
valid ones libcst cannot parse, are filtered out. For the rest:

- `compile_source` returns, never raises (an `InternalError` included);
- every error is a `CompileError` with a live code of codes.py (never E00 for
  valid Python), a position inside the module, a message and a fix;
- without errors, the generated module compiles, runs (its classes and
  tables are built) and holds one machine per decorated function, whose
  build hash is the one the runtime computes from the source (not stale);
- compiling again gives the same bytes, and with the decorators removed
  nothing is compiled and nothing is reported (for one example in four;
  all with --slow).

    test_compiler_never_crashes    100 examples (about 15 s of CPU); --slow:
                                   2000; RESUMABLE_FUZZ_EXAMPLES=N for longer
                                   runs, RESUMABLE_FUZZ_SHRINK=1 to shrink a
                                   failure (minutes)
    test_fuzz_reaches_the_lowering the programs are not mostly filtered out
                                   or rejected early

What the fuzz found is pinned, reduced, in tests/test_fuzz_findings.py. The
bugs not fixed yet are strict xfails there, and `KNOWN_BUGS` keeps the fuzz
from reporting them again: when one is fixed its xfail test passes (and so
fails), and its entry here goes.
"""

from __future__ import annotations

import ast
import io
import os
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Callable

import libcst as cst
from hypothesis import HealthCheck, Phase, event, given, note, reject, settings

from resumable import __version__
from resumable.errors import CompileError
from resumable.source import build_hash, function_block
from resumable_compiler import codes
from resumable_compiler.build import compile_source

from .fuzz_programs import modules

DEFAULT_EXAMPLES = 100
PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzzed.py")
LIVE_CODES = {c.code for c in codes.CODES if not c.retired} - {codes.SYNTAX.code}
DECORATOR = re.compile(r"^ *@(resumable\.function|r\.function|function|durable)\b.*\n", re.M)

#: What the examples of the current run looked like.
STATS: Counter[str] = Counter()


def _examples() -> int:
    override = os.environ.get("RESUMABLE_FUZZ_EXAMPLES")
    if override:
        return int(override)
    return max(DEFAULT_EXAMPLES, settings().max_examples) if _slow() else DEFAULT_EXAMPLES


def _phases() -> tuple[Phase, ...]:
    """Shrinking a failure takes minutes (each try compiles a module): only
    with RESUMABLE_FUZZ_SHRINK=1. Unshrunk, a failure shows its whole module;
    tests/test_fuzz_findings.py has the findings reduced by hand."""
    if os.environ.get("RESUMABLE_FUZZ_SHRINK"):
        return tuple(Phase)
    return tuple(p for p in Phase if p is not Phase.shrink)


def _slow() -> bool:
    return settings().max_examples > DEFAULT_EXAMPLES * 10


# -- known bugs (each pinned by an xfail test in test_fuzz_findings.py) ------------------------


#: predicate on the module's ast -> the xfail test that pins the bug.
KNOWN_BUGS: dict[str, Callable[[ast.Module], bool]] = {}
#: the same, for predicates on the module's libcst tree.
KNOWN_BUGS_CST: dict[str, Callable[[cst.Module], bool]] = {}


def known_bug(source: str, module: cst.Module) -> str | None:
    tree = ast.parse(source)
    for name, applies in KNOWN_BUGS.items():
        if applies(tree):
            return name
    for name, applies_cst in KNOWN_BUGS_CST.items():
        if applies_cst(module):
            return name
    return None


# -- the property ------------------------------------------------------------------------------


def parse_valid(source: str) -> cst.Module | None:
    """libcst's tree, when CPython and libcst both accept the source
    (warnings are not errors here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, PATH, "exec", dont_inherit=True)
        except SyntaxError:
            return None
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError:
        STATS["libcst cannot parse"] += 1
        return None


def check_error(error: object, source: str) -> None:
    assert isinstance(error, CompileError), repr(error)
    assert error.code in LIVE_CODES, f"{error.code} is not a live code: {error}"
    lines = source.count("\n") + 1
    assert 1 <= error.line <= lines and error.column >= 0, f"bad position: {error}"
    assert error.message and error.fix and error.construct, f"incomplete: {error!r}"


def compile_checked(source: str) -> tuple[str | None, int, list[CompileError]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # CPython's own, about the input
        return compile_source(PATH, source)


def check_module(source: str, *, thorough: bool | None = None) -> None:
    """One example of the property. The `thorough` checks (determinism, the
    undecorated module) run for one example in four, or all with --slow."""
    note(source)
    STATS["generated"] += 1
    module = parse_valid(source)
    if module is None:
        STATS["filtered"] += 1
        reject()
    bug = known_bug(source, module)
    if bug is not None:
        STATS["known bug"] += 1
        event("known bug", bug)
        reject()
    if thorough is None:
        thorough = _slow() or zlib.crc32(source.encode()) % 4 == 0
    text, count, errors = compile_checked(source)
    for error in errors:
        check_error(error, source)
        STATS["error " + error.code] += 1
    decorated = len(DECORATOR.findall(source))
    assert count == decorated or (errors and count <= decorated), (count, decorated)
    if errors:
        assert text is None, "a module with errors must produce no code"
        STATS["rejected"] += 1
        event("outcome", "errors")
        return
    assert text is not None
    STATS["compiled"] += 1
    STATS["states"] += text.count("\n# state ")
    event("outcome", "compiled")
    namespace: dict[str, object] = {"__name__": "fuzzed_generated"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        exec(compile(text, "<generated>", "exec", dont_inherit=True), namespace)
    machines = namespace["MACHINES"]
    assert isinstance(machines, dict) and len(machines) == decorated, machines
    # The runtime takes the source block from linecache (lines end at \n only).
    lines = io.StringIO(source, newline=None).readlines()
    for name, machine in machines.items():
        block = function_block(lines, machine.first_line)
        assert machine.build_hash == build_hash(block, __version__), f"{name} would be stale"
    if thorough:
        STATS["thorough"] += 1
        assert compile_checked(source)[0] == text, "the generated module is not deterministic"
        plain = DECORATOR.sub("", source)
        assert compile_checked(plain) == (None, 0, []), "undecorated code was compiled"


def test_compiler_never_crashes() -> None:
    STATS.clear()
    examples = _examples()

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        phases=_phases(),
    )
    @given(modules())
    def compiler_never_crashes(source: str) -> None:
        check_module(source)

    compiler_never_crashes()
    print(dict(STATS))
    assert STATS["compiled"] + STATS["rejected"] >= examples * 0.8, STATS


def test_fuzz_reaches_the_lowering() -> None:
    """The generator is not producing trivia: few examples are filtered out,
    many compile, and those that do have many states."""
    outcome: Counter[str] = Counter()

    @settings(max_examples=30, deadline=None, database=None, derandomize=True)
    @given(modules())
    def sample(source: str) -> None:
        module = parse_valid(source)
        if module is None or known_bug(source, module) is not None:
            outcome["filtered"] += 1
            return
        try:
            text, _, errors = compile_checked(source)
        except Exception:
            text, errors = None, []
        if text is not None:
            outcome["compiled"] += 1
            outcome["states"] += text.count("\n# state ")
        else:
            outcome["rejected" if errors else "crashed"] += 1

    sample()
    valid = outcome["compiled"] + outcome["rejected"] + outcome["crashed"]
    assert outcome["filtered"] <= 0.4 * (valid + outcome["filtered"]), outcome
    assert outcome["compiled"] >= 0.3 * valid, outcome
    assert outcome["states"] >= 5 * outcome["compiled"], outcome
