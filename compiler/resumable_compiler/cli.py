"""`resumable compile PATH... [--check]`.

Prints every error (all files, all functions) as

    shop.py:12:9: error[E02]: await inside a generator expression ...
        total = sum(await price(i) for i in items)
                    ^
      fix: use a list comprehension, ...

then a one-line summary. Exit status: 0 when everything compiled (or, with
--check, is up to date), 1 otherwise; never a Python traceback for bad input.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from resumable.errors import InternalError

from .build import FileResult, compile_file, find_sources

__all__ = ["main"]


def main(paths: Sequence[str], *, check: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    start = time.perf_counter()
    results: list[FileResult] = []
    missing = [p for p in paths if not os.path.exists(p)]
    for p in missing:
        print(f"{p}: error: no such file or directory", file=out)
    for path in find_sources(p for p in paths if os.path.exists(p)):
        try:
            results.append(compile_file(path, check=check))
        except InternalError as bug:
            print(f"{path}: internal error: {bug}", file=out)
            results.append(FileResult(path, "", "error"))
    errors = 0
    for r in results:
        for e in r.errors:
            print(e, file=out)
            errors += 1
        rel = os.path.relpath(r.output) if r.output else r.path
        if check and r.status in ("missing", "stale"):
            print(f"{rel}: {r.status}: run `resumable compile {os.path.relpath(r.path)}`", file=out)
        elif not check and r.status in ("written", "removed"):
            print(f"{rel}: {r.status}", file=out)
    functions = sum(r.functions for r in results)
    modules = sum(1 for r in results if r.status not in ("none", "error", "removed"))
    stale = sum(1 for r in results if r.status in ("missing", "stale"))
    failed = sum(1 for r in results if r.status == "error") + len(missing)
    seconds = time.perf_counter() - start
    summary = (
        f"{functions} function{'s' * (functions != 1)} in {modules} module{'s' * (modules != 1)}"
    )
    if check:
        verdict = f"{stale} out of date" if stale else "up to date"
        print(
            f"resumable compile --check: {summary}, {verdict}, {errors} error{'s' * (errors != 1)} ({seconds:.2f}s)",
            file=out,
        )
        return 1 if (stale or failed) else 0
    print(
        f"resumable compile: {summary}, {errors} error{'s' * (errors != 1)} ({seconds:.2f}s)",
        file=out,
    )
    return 1 if failed else 0
