"""The project's own code: the folders whose modules a checkpoint may name.

A checkpoint may store a function or class by name only when it is the
project's own (or otherwise allowed: codec/allowed.py), and a worker imports
only the project's files. The project is:

- the working directory (unless it is `/`);
- the folders listed in `[tool.resumable] roots` of ./pyproject.toml, relative
  to that file's folder:

      [tool.resumable]
      roots = ["src", "../shared"]

A file is the project's when its real path is under one of those folders and
not in Python's standard library, an installed package (any `site-packages`
or `dist-packages` folder, the environment's package folders), or resumable
itself.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig

from .config import project_table
from .errors import ResumableError

__all__ = ["in_project", "project_roots"]

_PACKAGE_FOLDERS = frozenset({"site-packages", "dist-packages"})

#: working directory -> its roots (tests change the working directory).
_roots: dict[str, tuple[str, ...]] = {}


def project_roots() -> tuple[str, ...]:
    """The real paths of the project's folders, for the working directory."""
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was removed
        return ()
    roots = _roots.get(cwd)
    if roots is None:
        roots = _roots[cwd] = _read_roots(cwd)
    return roots


def in_project(path: str) -> bool:
    """Whether the file or folder `path` is the project's own code: its real
    path is under a root (project_roots) and not under Python's installation,
    an installed package or resumable's own package."""
    roots = project_roots()
    if not roots:
        return False
    if not os.path.isabs(path):
        try:
            path = os.path.join(os.getcwd(), path)
        except OSError:
            return False
    return _in_roots(path, roots)


@functools.lru_cache(maxsize=4096)
def _in_roots(path: str, roots: tuple[str, ...]) -> bool:
    real = os.path.realpath(path)
    if _PACKAGE_FOLDERS.intersection(real.split(os.sep)):
        return False
    if any(_under(real, excluded) for excluded in _excluded()):
        return False
    return any(_under(real, root) for root in roots)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


@functools.cache
def _excluded() -> tuple[str, ...]:
    """Python's standard library and package folders (of this environment and
    of the Python it was made from), and resumable's own package. Not the
    whole of `sys.prefix`: a project may live under it (/usr/src/app)."""
    folders = {os.path.dirname(os.path.abspath(__file__))}
    for base in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=base)
        folders.update(
            paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths
        )
    real = {os.path.realpath(f) for f in folders if f}
    return tuple(sorted(f for f in real if f != os.sep))


def _read_roots(cwd: str) -> tuple[str, ...]:
    table, path = project_table()
    listed = table.get("roots", [])
    if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
        raise ResumableError(
            f"{path}: [tool.resumable] roots must be a list of folders "
            f'(roots = ["src"]), not {listed!r:.100}'
        )
    base = os.path.dirname(path)
    roots = [cwd, *(os.path.join(base, r) for r in listed)]
    real = (os.path.realpath(r) for r in roots)
    return tuple(dict.fromkeys(r for r in real if r != os.sep))
