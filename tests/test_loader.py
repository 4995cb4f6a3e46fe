"""Loading generated code (resumable/loader.py) under conditions of its own."""

from __future__ import annotations

import ast
import gc
import sys
from pathlib import Path

import resumable
from tests.compiled import compile_and_import

SOURCE = "import resumable\nfrom resumable.testing import step\n\n" + "".join(
    f"\n\n@resumable.function\nasync def f{i}(x):\n    y = await step('a', x)\n"
    f"    return [y + k * {i} for k in range(3)]\n"
    for i in range(20)
)


class _ParsesWhenCollected:
    """In a cycle: only the collector frees it, and its finalizer parses, as
    asyncio's log of a task whose exception was never retrieved does. While
    `armed`, each leaves another behind, so whenever the collector runs there
    is one to finalize (also in the middle of the loader's parse)."""

    armed = False

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        def deeper(n: int) -> ast.Module:
            return deeper(n - 1) if n else ast.parse("y = 2")

        deeper(20)
        if _ParsesWhenCollected.armed:
            _ParsesWhenCollected()


def test_a_finalizer_that_parses_during_the_load_does_not_break_it(tmp_path: Path) -> None:
    # CPython 3.11 keeps one AST recursion counter per interpreter: a parse in
    # a finalizer the collector runs during the loader's own parse unbalanced
    # it ("SystemError: AST constructor recursion depth mismatch").
    module = compile_and_import(tmp_path / "loader_gc.py", "loader_gc", SOURCE)
    threshold = gc.get_threshold()
    try:
        gc.set_threshold(10)
        _ParsesWhenCollected.armed = True
        _ParsesWhenCollected()
        machines = [getattr(module, f"f{i}").machine() for i in range(20)]
    finally:
        _ParsesWhenCollected.armed = False
        gc.set_threshold(*threshold)
        gc.collect()
        sys.modules.pop("loader_gc", None)
    assert [m.qualname for m in machines] == [f"f{i}" for i in range(20)]
    rt = resumable.Runtime("memory://")
    assert rt.run(module.f7, 1) == [rt.run(module.f0, 1)[0] + 7 * k for k in range(3)]
