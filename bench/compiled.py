"""A benchmark's module, written to a folder, compiled and imported."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from resumable_compiler.build import compile_file


def compiled_module(folder: Path, name: str, source: str) -> ModuleType:
    """`source` as module `name` in `folder`, compiled by `resumable compile`'s
    compile_file and imported (its generated module is what runs)."""
    path = folder / f"{name}.py"
    path.write_text(source)
    result = compile_file(str(path))
    if result.errors:
        raise SystemExit("\n".join(str(e) for e in result.errors))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
