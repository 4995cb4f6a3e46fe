"""Compile a module the tests write to a temporary folder, and import it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from resumable_compiler.build import compile_file


def import_file(path: Path, name: str) -> ModuleType:
    """Import a fresh module object from `path` as `name` (kept in
    sys.modules, where the codec finds its classes by name)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compile_and_import(path: Path, name: str, source: str | None = None) -> ModuleType:
    """Write `source` to `path` (when given), compile it (no errors allowed)
    and import it as `name`; the caller pops sys.modules[name] when done."""
    if source is not None:
        path.write_text(source)
    result = compile_file(str(path))
    assert not result.errors, "\n".join(str(e) for e in result.errors)
    return import_file(path, name)
