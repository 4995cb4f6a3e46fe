"""The project's roots: the folders whose Python files are the user's code.

    project_roots()      # (realpath of the working directory, [tool.resumable] roots...)
    in_project(path)     # is this file the user's code (not the stdlib, not site-packages)?

A worker imports only files in the project, and a checkpoint may name only
functions and classes defined there (besides decorated functions, built-in
constructors and registered codecs). The working directory is a root unless
it is `/`; `[tool.resumable] roots = ["src", ...]` in ./pyproject.toml adds
folders (relative ones are relative to that file's folder). Files of
Python's standard library, in `site-packages`/`dist-packages`, or in
resumable itself are never the project's.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig

from .config import project_table
from .errors import ResumableError

__all__ = ["in_project", "project_roots"]

_cache: dict[str, tuple[str, ...]] = {}
_HERE = os.path.dirname(os.path.realpath(__file__))


def project_roots() -> tuple[str, ...]:
    """The realpaths of the project's roots (cached per working directory)."""
    cwd = os.getcwd()
    found = _cache.get(cwd)
    if found is not None:
        return found
    roots: list[str] = []
    real = os.path.realpath(cwd)
    if real != os.sep:
        roots.append(real)
    table, path = project_table()
    extra = table.get("roots", [])
    if not isinstance(extra, list) or not all(isinstance(r, str) for r in extra):
        raise ResumableError(f"{path}: [tool.resumable] roots must be a list of folders")
    for root in extra:
        folder = os.path.realpath(os.path.join(os.path.dirname(path), root))
        if folder != os.sep and folder not in roots:
            roots.append(folder)
    _cache[cwd] = found = tuple(roots)
    return found


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@functools.cache
def _outside_folders() -> tuple[str, ...]:
    """Python's standard library and package folders (of the environment and
    of the Python it was made from), and resumable's own."""
    folders = {_HERE}
    for base in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=base)
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                folders.add(os.path.realpath(paths[key]))
    return tuple(sorted(folders))


def in_project(path: str) -> bool:
    """Is the file at `path` the user's code: under a project root, and not
    Python's own, an installed package's, or resumable's?"""
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    if any(_within(real, folder) for folder in _outside_folders()):
        return False
    return any(_within(real, root) for root in project_roots())
