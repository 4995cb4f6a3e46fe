"""Where the store and the user's modules are configured: one rule for every
entry point (`Runtime()`, `fn.dispatch`, the worker, the CLI), first match wins:

1. an argument (`Runtime(url)`, `--store URL`) or `resumable.configure(store=...)`;
2. the environment: `RESUMABLE_STORE`, `RESUMABLE_MODULES` (comma-separated);
   empty means unset;
3. `[tool.resumable]` in `pyproject.toml` of the working directory (a
   relative SQLite path there is relative to that file's folder):

       [tool.resumable]
       store = "sqlite:///var/state.db"
       modules = ["shop.orders", "shop.emails"]
       roots = ["src"]          # more folders whose files the worker may import

4. the default store `sqlite:///.resumable/state.db` (no default modules).

Every entry point logs the store it uses, as an absolute location, and where
that came from (logger `resumable`).
"""

from __future__ import annotations

import logging
import os
import tomllib
import urllib.parse
from typing import Any

from .errors import ResumableError, StoreError

__all__ = [
    "DEFAULT_STORE",
    "configured_modules",
    "configured_store",
    "log",
    "project_table",
    "set_store",
]

DEFAULT_STORE = "sqlite:///.resumable/state.db"

log = logging.getLogger("resumable")

#: `resumable.configure(store=...)`, when set.
_configured: str | None = None


def set_store(url: str | None) -> None:
    """`resumable.configure(store=url)` (None: unset). A relative SQLite path
    is relative to the working directory of the call, as in `Runtime(url)`."""
    global _configured
    if url is not None:
        url = _absolute(_check(url, "resumable.configure(store=...)"), os.getcwd())
    _configured = url


def project_table() -> tuple[dict[str, Any], str]:
    """(`[tool.resumable]` of ./pyproject.toml or {}, the file's path)."""
    path = os.path.join(os.getcwd(), "pyproject.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}, path
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ResumableError(f"cannot read the configuration in {path}: {e}") from None
    table = data.get("tool", {}).get("resumable", {})
    if not isinstance(table, dict):
        raise ResumableError(f"{path}: [tool.resumable] must be a table")
    return table, path


def _check(url: object, origin: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise StoreError(
            f"{origin} gives the store URL {url!r}: give a URL such as "
            "'sqlite:///path/state.db' (or leave it out for the default, "
            f"{DEFAULT_STORE})"
        )
    return url


def _absolute(url: str, folder: str) -> str:
    """A sqlite:/// URL with a relative path made absolute against `folder`."""
    if not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path[1:])
    if not path or path == ":memory:" or os.path.isabs(path):
        return url
    absolute = os.path.normpath(os.path.join(folder, path))
    query = f"?{parts.query}" if parts.query else ""
    return f"sqlite:///{urllib.parse.quote(absolute)}{query}"


def configured_store(explicit: str | None = None) -> tuple[str, str]:
    """(the store URL to use, where it came from), by the rule above. A
    relative SQLite path is made absolute, so that the store does not move
    when the working directory changes. Raises StoreError."""
    if explicit is not None:
        return _absolute(_check(explicit, "the argument"), os.getcwd()), "the argument"
    if _configured is not None:
        return _configured, "resumable.configure(store=...)"
    env = os.environ.get("RESUMABLE_STORE", "")
    if env.strip():
        return _absolute(env, os.getcwd()), "$RESUMABLE_STORE"
    table, path = project_table()
    url = table.get("store")
    if url is not None:
        origin = f"[tool.resumable] in {path}"
        return _absolute(_check(url, origin), os.path.dirname(path)), origin
    return _absolute(DEFAULT_STORE, os.getcwd()), "the default"


def configured_modules() -> list[str]:
    """The user's modules from the environment or pyproject.toml."""
    env = [m.strip() for m in os.environ.get("RESUMABLE_MODULES", "").split(",") if m.strip()]
    if env:
        return env
    table, path = project_table()
    modules = table.get("modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ResumableError(
            f"{path}: [tool.resumable] modules must be a list of module names, not {modules!r}"
        )
    return modules
