"""Values round-trip through a real run: held across an await of a compiled
function on a SQLite store, the process crashing at the checkpoint, and the
run resumed by a new Runtime on the same file, in this process and in a fresh
interpreter."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resumable import CheckpointInfo, Runtime
from resumable.codec import decode

from .codec_types import strategies
from .codec_types.compare import assert_same
from .compiled import compile_and_import

ROOT = Path(__file__).resolve().parents[1]
#: Where a new interpreter finds this checkout's code (not an installed copy).
_CODE = [str(ROOT / "runtime"), str(ROOT)]

HOLDER = """
import asyncio

import resumable
import tests.codec_types.models  # the classes the values use, imported before decoding


async def tick():
    await asyncio.sleep(0)


@resumable.function
async def hold(value):
    kept = value
    await tick()
    return kept
"""

RESUME = """
import base64
import sys

import orjson

import holder
from resumable import Runtime
from resumable.codec import encode

rt = Runtime(sys.argv[1])
ids = orjson.loads(sys.stdin.buffer.read())
out = {i: base64.b64encode(encode(rt.run(holder.hold, run_id=i))).decode() for i in ids}
sys.stdout.buffer.write(orjson.dumps(out))
"""


class Crash(BaseException):
    """Stands for the process dying right after a checkpoint committed."""


def crash(info: CheckpointInfo) -> None:
    raise Crash


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("codec_store")
    module = compile_and_import(folder / "holder.py", "holder", textwrap.dedent(HOLDER))
    (folder / "resume.py").write_text(textwrap.dedent(RESUME))
    # The resuming process runs in `folder`: the repository (tests.codec_types,
    # whose functions and classes the values hold) is one of its project's roots.
    (folder / "pyproject.toml").write_text(f"[tool.resumable]\nroots = [{str(ROOT)!r}]\n")
    yield module
    sys.modules.pop("holder", None)


def _crash_at_the_checkpoint(url: str, holder: ModuleType, run_id: str, value: Any) -> None:
    with Runtime(url, on_checkpoint=crash) as rt, pytest.raises(Crash):
        rt.run(holder.hold, value, run_id=run_id)


_SETTINGS = settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)


@_SETTINGS
@given(value=strategies.values)
def test_values_round_trip_through_the_sqlite_store(
    holder: ModuleType, tmp_path: Path, value: Any
) -> None:
    url = f"sqlite:///{tmp_path}/state.db"  # one file for all examples, a run each
    run_id = uuid.uuid4().hex
    _crash_at_the_checkpoint(url, holder, run_id, value)
    with Runtime(url) as rt:
        assert rt.status(run_id) == "running"
        assert_same(value, rt.run(holder.hold, run_id=run_id))
        assert_same(value, rt.result(run_id))  # the stored result, decoded again


@settings(_SETTINGS, max_examples=2)
@given(batch=st.lists(strategies.values, min_size=10, max_size=10))
def test_values_round_trip_through_the_store_and_a_fresh_process(
    holder: ModuleType, tmp_path_factory: pytest.TempPathFactory, batch: list[Any]
) -> None:
    """Runs crash here; a new interpreter resumes them from the SQLite file
    and returns the values it decoded, encoded again."""
    folder = Path(holder.__file__).parent
    url = f"sqlite:///{tmp_path_factory.mktemp('fresh')}/state.db"
    ids = [f"hold-{i}" for i in range(len(batch))]
    for run_id, value in zip(ids, batch, strict=True):
        _crash_at_the_checkpoint(url, holder, run_id, value)
    done = subprocess.run(
        [sys.executable, str(folder / "resume.py"), url],
        input=orjson.dumps(ids),
        capture_output=True,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *_CODE])},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    back = orjson.loads(done.stdout)
    assert sorted(back) == sorted(ids)
    for run_id, value in zip(ids, batch, strict=True):
        assert_same(value, decode(base64.b64decode(back[run_id])))
    with Runtime(url) as rt:
        assert all(rt.status(run_id) == "completed" for run_id in ids)
