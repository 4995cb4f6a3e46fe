"""Whether a generated module is up to date, from its header alone.

    # resumable 0.4.0, source sha256:<64 hex>, compiler 3f2a9c1d7e4b, output sha256:<64 hex>

A generated module is up to date when its header names this resumable
version, the sha256 of the source as it is now, and this compiler's digest
(`COMPILER_DIGEST`, of the compiler's own files), and its text still
matches its seal (`output sha256:`, so an edit by hand is seen). All of it
is read and hashed here without libcst or jinja2: a recompile of a tree in
which nothing changed imports neither (build.py imports the passes only to
compile).
"""

from __future__ import annotations

import hashlib
import os
import re
import tokenize

from resumable.source import edited

__all__ = [
    "COMPILER_DIGEST",
    "compiler_digest",
    "count_machines",
    "header",
    "read_source",
    "sealed_edited",
    "source_hash",
]

_HEADER = re.compile(
    r"^# resumable (\S+), source sha256:([0-9a-f]+), compiler ([0-9a-f]+)"
    r"(?:, output sha256:[0-9a-f]+)?$",
    re.M,
)


def read_source(path: str) -> str:
    """Source text as Python reads it (encoding cookie, universal newlines)."""
    with tokenize.open(path) as f:
        return f.read()


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def compiler_digest() -> str:
    """Digest of the compiler's own code (its .py and .j2 files): a changed
    compiler recompiles everything. Reading and hashing them takes about a
    millisecond; nothing of them is imported."""
    folder = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".j2")):
                with open(os.path.join(root, name), "rb") as f:
                    digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


COMPILER_DIGEST = compiler_digest()


def header(path: str) -> tuple[str, str, str] | None:
    """(version, source sha256, compiler digest) of a generated module's
    header; None when there is no such file or header."""
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(600)
    except OSError:
        return None
    match = _HEADER.search(head)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def sealed_edited(path: str) -> bool:
    """The generated module was changed after it was written (by hand)."""
    try:
        with open(path, encoding="utf-8") as f:
            return edited(f.read())
    except (OSError, UnicodeDecodeError):
        return True


def count_machines(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        return len(re.findall(r"^class \w+\(Machine\):", f.read(), re.M))
