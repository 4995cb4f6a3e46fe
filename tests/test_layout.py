"""The layout rule: no import cycles between the modules of the compiler or
of the runtime (imports inside functions and under TYPE_CHECKING count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = {
    "resumable_compiler": ROOT / "compiler" / "resumable_compiler",
    "resumable": ROOT / "runtime" / "resumable",
}


def _module_name(package: str, folder: Path, path: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(package: str, name: str, path: Path, modules: set[str]) -> set[str]:
    """Modules of `package` that module `name` imports (`from . import m`
    imports m; `from .m import f` imports m)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                anchor = here[: len(here) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            named = {f"{base}.{a.name}" for a in node.names} & modules
            out |= named or {base}
    return {m for m in out if m == package or m.startswith(package + ".")}


def _graph(package: str) -> dict[str, set[str]]:
    folder = PACKAGES[package]
    modules = {_module_name(package, folder, p): p for p in folder.rglob("*.py")}
    names = set(modules)
    return {
        name: {m for m in _imports(package, name, path, names) if m in names and m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between modules (package __init__ re-exports aside)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if graph.get(m) is None or m.count(".") == 0:
                continue  # the package's __init__ imports everything on purpose
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n.count(".") and n not in state and (found := visit(n)):
            return found
    return None


#: The runtime's one known cycle (run drives functions, functions start
#: runs, through imports inside functions); nothing may join it.
_KNOWN = {
    "resumable": {"resumable.function", "resumable.lifecycle", "resumable.run", "resumable.runtime"}
}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    graph = _graph(package)
    known = _KNOWN.get(package, set())
    for name in known:  # break the known cycle where it is, then look for any other
        graph[name] = {m for m in graph[name] if m not in known}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}}) == ["p.a", "p.b", "p.c", "p.a"]
    assert _cycle({"p.a": {"p.b"}, "p.b": set()}) is None
