"""Where the store and the user's modules are configured, first match wins:

1. the command line (`--store`, `--module`) or `resumable.configure(store=...)`;
2. the environment: `RESUMABLE_STORE`, `RESUMABLE_MODULES` (comma-separated);
3. `[tool.resumable]` in `pyproject.toml` of the working directory:

       [tool.resumable]
       store = "sqlite:///var/state.db"
       modules = ["shop.orders", "shop.emails"]

4. the default store `sqlite:///.resumable/state.db` (no default modules).
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

from .errors import ResumableError

__all__ = ["DEFAULT_STORE", "configured_modules", "configured_store"]

DEFAULT_STORE = "sqlite:///.resumable/state.db"


def _project() -> dict[str, Any]:
    """`[tool.resumable]` of ./pyproject.toml ({} when there is none)."""
    path = os.path.join(os.getcwd(), "pyproject.toml")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ResumableError(f"cannot read the configuration in {path}: {e}") from None
    table = data.get("tool", {}).get("resumable", {})
    if not isinstance(table, dict):
        raise ResumableError(f"{path}: [tool.resumable] must be a table")
    return table


def configured_store() -> str:
    """The store URL from the environment or pyproject.toml, else the default."""
    url = os.environ.get("RESUMABLE_STORE")
    if url:
        return url
    url = _project().get("store")
    if url is None:
        return DEFAULT_STORE
    if not isinstance(url, str):
        raise ResumableError(
            f"pyproject.toml: [tool.resumable] store must be a URL string, not {url!r}"
        )
    return url


def configured_modules() -> list[str]:
    """The user's modules from the environment or pyproject.toml."""
    env = [m.strip() for m in os.environ.get("RESUMABLE_MODULES", "").split(",") if m.strip()]
    if env:
        return env
    modules = _project().get("modules", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise ResumableError(
            f"pyproject.toml: [tool.resumable] modules must be a list of module names, "
            f"not {modules!r}"
        )
    return modules
