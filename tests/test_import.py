"""`import resumable` is light (no compiler, libcst or jinja2) and exposes exactly its API."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

import resumable

# The documented public surface (runtime/resumable/__init__.py).
PUBLIC = {
    "CheckpointError",
    "CheckpointInfo",
    "CompileError",
    "DuplicateRun",
    "Function",
    "InternalError",
    "NondeterminismError",
    "Queue",
    "ResumableError",
    "Retry",
    "RunCancelled",
    "RunConflict",
    "Runtime",
    "SerializationError",
    "StaleCodeError",
    "StepAborted",
    "StoreError",
    "StoreUnavailable",
    "VersionMismatch",
    "__version__",
    "any",
    "autocompile",
    "configure",
    "function",
    "gather",
    "idempotency_key",
    "race",
    "register_alias",
    "register_codec",
    "sleep",
    "sleep_until",
    "wait_event",
}
ERRORS = [
    "CheckpointError",
    "CompileError",
    "DuplicateRun",
    "InternalError",
    "NondeterminismError",
    "RunConflict",
    "SerializationError",
    "StaleCodeError",
    "StepAborted",
    "StoreError",
    "StoreUnavailable",
    "VersionMismatch",
]
HEAVY = ("libcst", "jinja2", "resumable_compiler")

FLOW = """\
import resumable


@resumable.function
async def double(x):
    return x * 2


@resumable.function
async def flow(x):
    y = await double(x)
    return y + 1
"""

# Runs in a fresh interpreter: uses the runtime for real (native and durable
# runs of a compiled function), then reports which heavy modules got imported.
PROBE = """\
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import resumable
import resumable.cli
import resumable.testing
import flow

assert isinstance(flow.flow, resumable.Function)
native = asyncio.run(flow.flow(20))
durable = resumable.Runtime("memory://").run(flow.flow, 20)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps({{"native": native, "durable": durable, "heavy": heavy}}))
"""


def test_runtime_does_not_import_the_compiler(tmp_path: Path) -> None:
    from resumable_compiler.build import compile_file

    (tmp_path / "flow.py").write_text(FLOW)
    assert compile_file(str(tmp_path / "flow.py")).status == "written"
    probe = PROBE.format(heavy=set(HEAVY))
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report == {"native": 41, "durable": 41, "heavy": []}


def test_probe_detects_heavy_imports() -> None:
    # The check above is only meaningful if importing the compiler does load them.
    import resumable_compiler.build  # noqa: F401

    assert [m for m in HEAVY if m not in sys.modules] == []


def test_all_is_exactly_the_documented_surface() -> None:
    assert sorted(resumable.__all__) == resumable.__all__  # kept sorted
    assert set(resumable.__all__) == PUBLIC
    assert len(resumable.__all__) == len(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from resumable import {name}", namespace)
    assert namespace[name] is getattr(resumable, name)


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from resumable import *", namespace)
    assert set(namespace) - {"__builtins__"} == PUBLIC


@pytest.mark.parametrize("name", ERRORS)
def test_errors_share_a_base_class(name: str) -> None:
    error = getattr(resumable, name)
    assert issubclass(error, resumable.ResumableError)
    assert issubclass(resumable.ResumableError, Exception)
    assert error.__module__ == "resumable.errors"


def test_version_matches_the_distribution() -> None:
    assert resumable.__version__ == importlib.metadata.version("resumable")


def test_decorator_returns_a_function_object() -> None:
    async def work(x: int) -> int:
        return x

    assert isinstance(resumable.function(work), resumable.Function)
    assert isinstance(resumable.function(retry=None)(work), resumable.Function)
    assert resumable.function(work).__wrapped__ is work
    with pytest.raises(TypeError, match="async def"):
        resumable.function(lambda: None)
