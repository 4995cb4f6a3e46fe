"""Recursion through decorated functions: each level is a child run, driven
inline. Depth 500 works (also across a SIGKILL at the deepest level); past
MAX_CHILD_DEPTH the await raises a RecursionError that says what to do. Depth
500 on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import resumable
from resumable.runtime import MAX_CHILD_DEPTH

from .procs import clean_env, compile_module, python
from .stores import LASTING, store_url

SOURCE = """
import os, signal
import resumable

async def leaf():
    mark = os.environ.get("KILL_AT_LEAF")  # a file: killed once, when it is absent
    if mark and not os.path.exists(mark):
        open(mark, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return 1


@resumable.function
async def depth(n):
    if n == 0:
        return await leaf()
    return 1 + await depth(n - 1)
"""


@pytest.fixture(scope="module")
def module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_module(tmp_path_factory.mktemp("recursion"), "recmod", SOURCE)


def run(folder: Path, n: int, store: str, **env: str) -> tuple[int, str, str]:
    code = f"""
        import resumable, recmod
        rt = resumable.Runtime({store!r})
        try:
            print(rt.run(recmod.depth, {n}, run_id="deep"))
        except RecursionError as e:
            print("RecursionError:", e)
    """
    proc = python(code, cwd=folder, env=clean_env(**env), timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "deep.db")


def test_depth_500_works_and_survives_a_kill_at_the_bottom(
    module: Path, lasting_url: str, tmp_path: Path
) -> None:
    folder = module.parent
    mark = str(tmp_path / "killed")
    code, out, err = run(folder, 500, lasting_url, KILL_AT_LEAF=mark)
    assert code == -9, (code, out, err)
    code, out, err = run(folder, 500, lasting_url, KILL_AT_LEAF=mark)
    assert (code, out.strip()) == (0, "501"), err
    native = asyncio.run(resumable_depth(folder))
    assert native == 501


async def resumable_depth(folder: Path) -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("recmod_native", folder / "recmod.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn: resumable.Function = mod.depth
    result: int = await fn.__wrapped__(500)
    return result


def test_deeper_than_the_limit_is_a_clear_recursion_error(module: Path) -> None:
    # On memory:// alone: the limit is the runtime's, and reaching it first
    # drives MAX_CHILD_DEPTH nested child runs (the depth-500 test above
    # stores deep nesting on each store; this would take 15 s on PostgreSQL).
    folder = module.parent
    code, out, err = run(folder, MAX_CHILD_DEPTH + 5, "memory://")
    assert code == 0, err
    assert out.startswith("RecursionError: depth (recmod.py) would start a child run nested"), out
    assert f"at most {MAX_CHILD_DEPTH} nested child runs" in out
