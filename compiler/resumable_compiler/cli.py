"""`resumable compile PATH... [--check | --watch]`.

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

__all__ = ["main", "watch"]

#: Seconds between looks at the watched files (`watch`).
WATCH_INTERVAL = 0.5


def main(paths: Sequence[str], *, check: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    start = time.perf_counter()
    errors = 0
    for p in paths:
        if not os.path.exists(p):
            print(f"{p}: error: no such file or directory", file=out)
            errors += 1
    results: list[FileResult] = []
    for path in find_sources(p for p in paths if os.path.exists(p)):
        try:
            result = compile_file(path, check=check)
        except InternalError as bug:
            print(f"{path}: internal error: {bug}", file=out)
            errors += 1
            continue
        results.append(result)
        for e in result.errors:
            print(e, file=out)
            errors += 1
        rel = os.path.relpath(result.output)
        if check and result.status in ("missing", "stale"):
            print(
                f"{rel}: {result.status}: run `resumable compile {os.path.relpath(path)}`", file=out
            )
        elif not check and result.status in ("written", "removed"):
            print(f"{rel}: {result.status}", file=out)
    compiled = [r for r in results if r.status in ("written", "unchanged", "missing", "stale")]
    functions = sum(r.functions for r in compiled)
    modules = len(compiled)
    stale = sum(1 for r in results if r.status in ("missing", "stale"))
    seconds = time.perf_counter() - start
    summary = (
        f"{functions} function{'s' * (functions != 1)} in {modules} module{'s' * (modules != 1)}"
    )
    counted = f"{errors} error{'s' * (errors != 1)}"
    if check:
        verdict = (
            f"{stale} out of date" if stale else ("up to date" if not errors else "not checked")
        )
        print(
            f"resumable compile --check: {summary}, {verdict}, {counted} ({seconds:.2f}s)", file=out
        )
        return 1 if (stale or errors) else 0
    print(f"resumable compile: {summary}, {counted} ({seconds:.2f}s)", file=out)
    return 1 if errors else 0


def watch(
    paths: Sequence[str],
    *,
    out: TextIO | None = None,
    interval: float = WATCH_INTERVAL,
    rounds: int | None = None,
) -> int:
    """Compile `paths`, then compile again each source that changes, appears
    or goes away (its generated module removed), until Ctrl-C (or `rounds`
    looks, for tests). It polls (a stat of each source every `interval`
    seconds): no dependency, and it works where file events do not (network
    and container file systems, editors that replace files)."""
    out = out or sys.stdout
    main(paths, out=out)
    seen = _stamps(paths)
    print(f"resumable compile --watch: watching {len(seen)} files (Ctrl-C stops)", file=out)
    looks = 0
    try:
        while rounds is None or looks < rounds:
            time.sleep(interval)
            looks += 1
            now = _stamps(paths)
            changed = sorted(p for p in seen.keys() | now.keys() if seen.get(p) != now.get(p))
            seen = now
            for path in (p for p in changed if not os.path.exists(p)):
                result = compile_file(path)  # the source is gone: so is its module
                if result.status == "removed":
                    print(f"{os.path.relpath(result.output)}: removed", file=out)
            present = [p for p in changed if os.path.exists(p)]
            if present:
                main(present, out=out)
            out.flush()
    except KeyboardInterrupt:
        print("resumable compile --watch: stopped", file=out)
    return 0


def _stamps(paths: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each watched source's (modification time, size); absent: gone."""
    stamps = {}
    for path in find_sources(p for p in paths if os.path.exists(p)):
        try:
            st = os.stat(path)
        except OSError:
            continue  # gone: compiling it removes its generated module
        stamps[path] = (st.st_mtime_ns, st.st_size)
    return stamps
