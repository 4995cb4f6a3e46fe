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
not under Python's installation (`sys.prefix`, `sys.base_prefix`,
`sys.exec_prefix`), an installed package (any `site-packages` or
`dist-packages` folder), or resumable itself.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
import tomllib

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
    """Python's installation and resumable's own package (`/` is never one:
    a Python installed at `/` is excluded through its library folders)."""
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths = sysconfig.get_paths()
    folders.update(paths[key] for key in ("stdlib", "platstdlib") if key in paths)
    folders.add(os.path.dirname(os.path.abspath(__file__)))
    real = {os.path.realpath(f) for f in folders if f}
    return tuple(sorted(f for f in real if f != os.sep))


def _read_roots(cwd: str) -> tuple[str, ...]:
    roots = [cwd]
    path = os.path.join(cwd, "pyproject.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        data = {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ResumableError(f"cannot read the configuration in {path}: {e}") from None
    tool = data.get("tool")
    table = tool.get("resumable") if isinstance(tool, dict) else None
    listed = table.get("roots", []) if isinstance(table, dict) else []
    if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
        raise ResumableError(
            f"{path}: [tool.resumable] roots must be a list of folders "
            f'(roots = ["src"]), not {listed!r:.100}'
        )
    base = os.path.dirname(path)
    roots.extend(os.path.join(base, r) for r in listed)
    real = (os.path.realpath(r) for r in roots)
    return tuple(dict.fromkeys(r for r in real if r != os.sep))
