"""Compile source files: the passes in order, then write (or check) the output.

    compile_file("app/shop.py")  ->  app/__resumable__/shop.py

Recompiling an unchanged file is a cache hit: the generated module's header
records the source's sha256, resumable's version and the compiler's digest,
and nothing is parsed when they match and the seal holds (cache.py). The
passes, and libcst and jinja2 with them, are imported only when a module is
compiled. With `check=True` nothing is written; a missing or stale
generated module is reported.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from resumable import __version__
from resumable.errors import CompileError
from resumable.source import GENERATED_DIR, display_path, generated_path, seal_output

from . import codes
from .cache import COMPILER_DIGEST, count_machines, header, read_source, sealed_edited, source_hash

if TYPE_CHECKING:
    from .ir import Lowered

__all__ = ["FileResult", "compile_file", "compile_source", "find_sources"]

# The passes need libcst and jinja2, imported only to compile. Without them
# (a deploy image, installed without the `compiler` extra) importing this
# module fails as it did when it imported them, so `resumable compile` and
# compile-on-load say which extra to install, even when nothing is stale.
for _needed in ("libcst", "jinja2"):
    if importlib.util.find_spec(_needed) is None:
        raise ModuleNotFoundError(f"No module named {_needed!r}", name=_needed)

_SKIP_DIRS = {GENERATED_DIR, "__pycache__", "node_modules", "site-packages", "build", "dist"}


@dataclass
class FileResult:
    path: str
    output: str
    #: written | unchanged | stale | missing | removed | error | none
    status: str
    functions: int = 0
    errors: list[CompileError] = field(default_factory=list)


def compile_source(path: str, source: str) -> tuple[str | None, int, list[CompileError]]:
    """Run every pass on one module's source: (generated text or None, functions, errors)."""
    with warnings.catch_warnings():
        # CPython's warnings about the user's code (`"\d"`, `"s"[1, 2]`) are
        # its own to give when it compiles the module: parse and render
        # compile the source and the states, and must not warn again (naming
        # the generated code), nor fail when warnings are errors (`-W error`).
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # No cyclic garbage collection while the passes run: libcst's tree of
        # the whole module (hundreds of thousands of objects, none in a
        # cycle; freed by reference counting) would be traversed again at
        # every full collection the passes' allocations set off, a fifth of
        # the time of a large module. It is turned back on as it was.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _compile_source(path, source)
        finally:
            if collecting:
                gc.enable()


def _compile_source(path: str, source: str) -> tuple[str | None, int, list[CompileError]]:
    # The passes, and libcst and jinja2 with them, are imported only here:
    # whether a module is up to date is decided without them (cache.py).
    from . import tree
    from .analyze import analyze
    from .check import check
    from .liveness import liveness
    from .lower import lower
    from .parse import parse
    from .render import render

    try:
        parsed = parse(path, source)
        errors = list(parsed.errors)
        machines: list[Lowered] = []
        for fn in parsed.functions:
            analysis = analyze(parsed, fn)
            if analysis.errors:
                errors += analysis.errors
                continue
            lowered = liveness(lower(analysis))
            if lowered.errors:
                errors += lowered.errors
                continue
            machines.append(check(lowered))
        if errors or not parsed.functions:
            errors.sort(key=lambda e: (e.line, e.column, e.code))
            return None, len(parsed.functions), errors
        text = render(parsed, machines, source_hash(source), COMPILER_DIGEST)
        return seal_output(text), len(machines), []
    finally:
        tree.forget()


def compile_file(path: str, *, check: bool = False) -> FileResult:
    out = generated_path(path)
    if not os.path.exists(path) and header(out) is not None:
        # The source is gone: its generated module is an orphan.
        if check:
            return FileResult(path, out, "stale")
        os.remove(out)
        return FileResult(path, out, "removed")
    try:
        source = read_source(path)
    except (OSError, SyntaxError, UnicodeDecodeError) as e:
        err = CompileError(f"cannot read the file: {e}", path=display_path(path), line=1, code=codes.SYNTAX.code,
                           fix="make it a readable Python source file")  # fmt: skip
        return FileResult(path, out, "error", errors=[err])
    digest = source_hash(source)
    if header(out) == (__version__, digest, COMPILER_DIGEST) and not sealed_edited(out):
        return FileResult(path, out, "unchanged", functions=count_machines(out))
    text, count, errors = compile_source(path, source)
    if errors:
        return FileResult(path, out, "error", count, errors)
    exists = os.path.exists(out)
    if text is None:
        if not exists:
            return FileResult(path, out, "none")
        if check:
            return FileResult(path, out, "stale")
        os.remove(out)
        return FileResult(path, out, "removed")
    if check:
        return FileResult(path, out, "missing" if not exists else "stale", count)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, out)
    return FileResult(path, out, "written", count)


def find_sources(paths: Iterable[str]) -> Iterator[str]:
    """Python files under `paths` that may use resumable (they mention it, or
    have a generated module that may now be stale), and the sources of
    generated modules whose source file is gone (compiling them removes the
    orphaned module)."""
    for p in paths:
        if not os.path.isdir(p):
            yield p
            continue
        for root, dirs, files in os.walk(p):
            generated = os.path.join(root, GENERATED_DIR)
            outputs = set(os.listdir(generated)) if os.path.isdir(generated) else set()
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
            for name in sorted(set(files) | outputs):
                if not name.endswith(".py"):
                    continue
                full = os.path.join(root, name)
                if name in files and _mentions_resumable(full):
                    yield full
                elif name in outputs and header(os.path.join(generated, name)) is not None:
                    yield full  # stale output of a source that dropped resumable, or an orphan


def _mentions_resumable(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return b"resumable" in f.read()
    except OSError:
        return True
