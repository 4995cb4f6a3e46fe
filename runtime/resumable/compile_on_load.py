"""Compiling on load, for the development loop (off unless turned on).

    RESUMABLE_AUTOCOMPILE=1 python app.py        # or, in a conftest.py:
    resumable.autocompile()

Where loading a function's state machine would raise `StaleCodeError` (the
generated module is missing, or was compiled from other source), the loader
compiles the function's source file instead (`resumable compile FILE`, which
writes `__resumable__/FILE`) and loads the result; editing a module and
running it again then needs no manual step. The check is made when a
machine is first loaded, so modules imported before autocompile was turned
on are covered too. A compile error is raised as a `StaleCodeError` listing
the compiler's errors (file, line, column, what to do).

It needs the compiler (`pip install 'resumable[compiler]'`). It is off by
default, and should stay off in production: there, stale code is an error
that points at the missing deploy step, and runs of it are blocked.
"""

from __future__ import annotations

import os
import threading

from .errors import StaleCodeError

__all__ = ["autocompile", "compile_stale", "enabled"]

#: What `autocompile()` said last (None: as RESUMABLE_AUTOCOMPILE says).
_explicit: bool | None = None
_lock = threading.Lock()  # one compile of a file at a time in this process


def autocompile(enabled: bool = True) -> None:
    """Compile stale or missing generated modules when they are loaded
    (`enabled=False` turns it off again, whatever the environment says)."""
    global _explicit
    _explicit = bool(enabled)


def enabled() -> bool:
    if _explicit is not None:
        return _explicit
    value = os.environ.get("RESUMABLE_AUTOCOMPILE", "").strip().lower()
    return value in ("1", "true", "yes", "on")


def compile_stale(source_path: str, stale: StaleCodeError) -> None:
    """Compile `source_path` (its generated module was `stale`). Raises
    StaleCodeError when it cannot: no compiler, or compile errors."""
    try:
        from resumable_compiler.build import compile_file
    except ImportError:
        raise StaleCodeError(
            f"{stale} (RESUMABLE_AUTOCOMPILE is on, but the compiler is not installed: "
            "pip install 'resumable[compiler]')"
        ) from None
    from resumable.errors import InternalError

    try:
        with _lock:
            result = compile_file(source_path)
    except InternalError as bug:
        raise StaleCodeError(f"{stale}; compiling it on load hit a compiler bug: {bug}") from None
    if result.errors:
        listed = "\n".join(str(e) for e in result.errors)
        raise StaleCodeError(f"{stale}; compiling it on load failed:\n{listed}")
