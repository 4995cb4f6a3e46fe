"""Where generated code lives and how its build hash is computed.

Both the compiler (at build time) and the runtime (at the first durable run)
hash the same text: the function's source block as `inspect.getsource` sees
it, decorators included, together with resumable's version. If the source
loaded now hashes differently, the generated code is stale. Both also read
a module's `__future__` features the same way (`FUTURE_FLAGS`), and number
lines as CPython does (`source_lines`).
"""

from __future__ import annotations
import __future__

import functools
import hashlib
import inspect
import linecache
import operator
import os
import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "FUTURE_FLAGS",
    "GENERATED_DIR",
    "build_hash",
    "display_path",
    "edited",
    "function_block",
    "generated_path",
    "loaded_source",
    "module_name_for",
    "seal_output",
    "source_lines",
]

#: Folder beside each source module that holds its generated module.
GENERATED_DIR = "__resumable__"

#: Code flags of the `__future__` features: `code.co_flags & FUTURE_FLAGS`
#: are those a module's `from __future__ import ...` turned on.
FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, f).compiler_flag for f in __future__.all_feature_names)
)


#: A line as Python's tokenizer (and linecache, inspect) sees it: ended by
#: \n, \r\n or \r only. str.splitlines also ends lines at a form feed,
#: \x1c-\x1e, \x85, \u2028 and \u2029, which may be in comments and strings.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


#: The part of a generated module's header that seals its text.
_SEAL = re.compile(r", output sha256:([0-9a-f]{64})(?=\n)")


def seal_output(text: str) -> str:
    """`text` (a generated module) with the sha256 of its own text added to
    its header line (`, output sha256:...`), so an edit by hand is seen."""
    first = text.find("source sha256:")
    end = text.find("\n", first)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text[:end] + f", output sha256:{digest}" + text[end:]


def edited(text: str) -> bool:
    """Whether a generated module's text differs from what the compiler
    wrote (its seal does not match; a module without a seal is not judged)."""
    match = _SEAL.search(text, 0, 2000)
    if match is None:
        return False
    unsealed = text[: match.start()] + text[match.end() :]
    return hashlib.sha256(unsealed.encode("utf-8")).hexdigest() != match.group(1)


def source_lines(source: str) -> list[str]:
    """The lines of `source` (a module's, or a generated module's), with
    their ends, numbered as CPython numbers them."""
    return _LINE.findall(source)


def display_path(path: str) -> str:
    """`path` as shown in messages: relative to the working directory when it
    is below it, else as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def module_name_for(path: str) -> str:
    """Dotted module name of a source file, walking up through packages
    (folders with __init__.py): the module part of a function's id."""
    path = os.path.abspath(path)
    folder, name = os.path.split(path)
    stem = os.path.splitext(name)[0]
    parts = [] if stem == "__init__" else [stem]
    while os.path.exists(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        parts.append(package)
    return ".".join(reversed(parts))


def generated_path(source_path: str) -> str:
    """`app/shop.py` -> `app/__resumable__/shop.py`."""
    folder, name = os.path.split(os.path.abspath(source_path))
    return os.path.join(folder, GENERATED_DIR, name)


def function_block(lines: Sequence[str], first_line: int) -> str:
    """The source block of a function starting at 1-based `first_line` (its
    first decorator), exactly as `inspect.getsource` extracts it."""
    return "".join(inspect.getblock(list(lines[first_line - 1 :])))


def build_hash(block: str, version: str) -> str:
    digest = hashlib.sha256(f"resumable {version}\n".encode() + block.encode("utf-8"))
    return "sha256:" + digest.hexdigest()[:32]


def loaded_source(fn: Any) -> tuple[str, int]:
    """The source block of a loaded function and its first line."""
    code = fn.__code__
    lines = linecache.getlines(code.co_filename, fn.__globals__)
    if not lines:
        raise OSError(f"source of {fn.__qualname__} ({code.co_filename}) is not available")
    return function_block(lines, code.co_firstlineno), code.co_firstlineno
