"""Child runs stored with their first write (Run.unsaved), against the
reordering their parent tolerates: tasks of a step may start their children
in another order when the step runs again (runtime._sibling). A child that
had started but was never stored (killed before its first write) must not
make a completed sibling run again, nor block the run.

Side effects append to $UNSAVED_LOG (fsync'd). Real processes, SIGKILL.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from resumable import Runtime
from tests.procs import clean_env, compile_module, lines, python
from tests.stores import LASTING, store_url

MODULE = "unsaved_children_cases"

SOURCE = '''
from __future__ import annotations

import asyncio
import os
import signal

import resumable

ONCE = resumable.Retry(max_attempts=1)


def record(tag: str) -> None:
    with open(os.environ["UNSAVED_LOG"], "a", encoding="utf-8") as f:
        f.write(tag + "\\n")
        f.flush()
        os.fsync(f.fileno())


def first_time() -> bool:
    return not os.path.exists(os.environ["UNSAVED_CRASH"])


@resumable.function(retry=ONCE)
async def add(tag: str) -> str:
    record(f"add {tag}")
    return tag


@resumable.function(retry=ONCE)
async def killer(tag: str) -> str:
    """A leaf: SIGKILLs its process, before its first write, the first time."""
    if first_time():
        with open(os.environ["UNSAVED_CRASH"], "w"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    record(f"killer {tag}")
    return tag


async def late_killer() -> str:
    # Its I/O takes longer the first time: its child starts second.
    await asyncio.sleep(0.3 if first_time() else 0.0)
    return await killer("k")


async def late_add() -> str:
    await asyncio.sleep(0.0 if first_time() else 0.3)
    return await add("a")


@resumable.function(retry=ONCE)
async def parent() -> list[str]:
    got = await asyncio.gather(late_killer(), late_add())
    return list(got)
'''


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("unsaved_children")
    compile_module(folder, MODULE, SOURCE)
    yield folder
    sys.modules.pop(MODULE, None)


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path, "state.db")


def test_tasks_starting_children_in_another_order_after_a_crash(
    folder: Path, tmp_path: Path, lasting_url: str
) -> None:
    # First time: add("a") starts first (p/1.0) and completes; killer("k")
    # starts second (p/1.1) and kills the process before its first write.
    # Run again, the tasks start them the other way round: killer gets
    # p/1.0 (add's row), add gets p/1.1. The stored add must be matched
    # (not run again), and the run complete.
    log = tmp_path / "effects.log"
    program = f"""
        import json, resumable, {MODULE} as m
        rt = resumable.Runtime({lasting_url!r})
        print(json.dumps(rt.run(m.parent, run_id="p")))
        """
    env = clean_env(UNSAVED_LOG=str(log), UNSAVED_CRASH=str(tmp_path / "crashed"))
    first = python(program, cwd=folder, env=env)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    assert lines(log) == ["add a"]
    again = python(program, cwd=folder, env=env)
    with Runtime(lasting_url) as rt:
        found = {r.run_id: (r.function.split(":")[1], r.status) for r in rt.store.list_runs()}
    assert again.returncode == 0, again.stdout + again.stderr + repr(found)
    assert json.loads(again.stdout) == ["k", "a"]
    # The completed child ran once.
    assert lines(log) == ["add a", "killer k"], found
