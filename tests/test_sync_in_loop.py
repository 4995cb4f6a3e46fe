"""The sync entry points (`rt.run`, `rt.retry`, `fn.dispatch`) called from
code running inside an event loop (a sync helper of an async web handler):
they work, in a thread of their own, and raise what the run raises; on each
store (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from resumable import Runtime
from tests.compiled import compile_and_import
from tests.stores import KINDS, store_url

MODULE = "sync_in_loop_cases"
SOURCE = """
import asyncio

import resumable

FAIL = {"left": 0}


async def step(x):
    await asyncio.sleep(0)
    if FAIL["left"]:
        FAIL["left"] -= 1
        raise ValueError("down")
    return x


@resumable.function(retry=resumable.Retry(max_attempts=1))
async def add(a, b):
    return await step(a) + await step(b)
"""


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("sync")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


def test_run_dispatch_and_retry_work_inside_a_running_loop(m: ModuleType, url: str) -> None:
    rt = Runtime(url)

    async def handler() -> list[object]:
        got: list[object] = [rt.run(m.add, 2, 3, run_id="a")]
        got.append(m.add.__wrapped__ is not None and rt.dispatch(m.add, 1, 1, run_id="d"))
        m.FAIL["left"] = 1
        with pytest.raises(ValueError, match="down"):
            rt.run(m.add, 4, 5, run_id="f")
        got.append(rt.status("f"))
        got.append(rt.retry("f"))  # fixed: goes on from its last checkpoint
        return got

    try:
        assert asyncio.run(handler()) == [5, "d", "failed", 9]
    finally:
        rt.close()
