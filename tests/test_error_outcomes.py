"""How some errors end a run, on each store (memory, SQLite, PostgreSQL):

- a bad argument to one of resumable's primitives (a negative sleep, an
  empty race) is raised at the await and never retried: it would fail the
  same way every time;
- an exception holding something that cannot be stored (a connection in an
  attribute) is stored with that part replaced, keeping its type, so an
  `except` of the type still matches it when a later process raises it
  again from the store.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from resumable import Runtime
from tests.compiled import compile_and_import
from tests.stores import KINDS, LASTING, store_url

MODULE = "error_outcome_cases"
SOURCE = """
import asyncio

import resumable

RETRY = resumable.Retry(max_attempts=3, initial_delay=0)


class Conn:
    pass


class MyErr(Exception):
    def __init__(self, msg, conn):
        super().__init__(msg)
        self.conn = conn
        self.code = 7


@resumable.function(retry=RETRY)
async def bad_sleep():
    await asyncio.sleep(0)
    await resumable.sleep(-1)


@resumable.function(retry=RETRY)
async def empty_race():
    await asyncio.sleep(0)
    return await resumable.race()


@resumable.function(retry=resumable.Retry(max_attempts=1))
async def connect():
    await asyncio.sleep(0)
    raise MyErr("refused", Conn())


@resumable.function
async def caller():
    try:
        return await connect()
    except MyErr as e:
        return f"caught {type(e).__name__}: {e} (code {e.code}, conn {e.conn})"
"""


@pytest.fixture(scope="module")
def m(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    folder = tmp_path_factory.mktemp("errors")
    module = compile_and_import(folder / f"{MODULE}.py", MODULE, textwrap.dedent(SOURCE))
    yield module
    sys.modules.pop(MODULE, None)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture(params=LASTING)
def lasting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request, request.param, tmp_path)


@pytest.fixture
def rt(url: str) -> Iterator[Runtime]:
    with Runtime(url) as runtime:
        yield runtime


@pytest.mark.parametrize(
    ("name", "message"),
    [("bad_sleep", "not a number of seconds"), ("empty_race", "at least one awaitable")],
)
def test_a_bad_argument_to_a_primitive_is_never_retried(
    m: ModuleType, rt: Runtime, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rt.run(getattr(m, name), run_id=name)
    assert rt.status(name) == "failed"
    assert rt.get(name).attempts == 0


def test_an_exception_holding_what_cannot_be_stored_keeps_its_type(
    m: ModuleType, lasting_url: str
) -> None:
    with Runtime(lasting_url) as rt:
        # The parent catches the child's stored failure by its type.
        result = rt.run(m.caller, run_id="c")
        assert result.startswith("caught MyErr: refused (code 7, conn ")
        # Raised again from the store, in a new runtime: the same type and
        # args; the attribute that could not be stored names what it held.
        with (
            Runtime(lasting_url) as later,
            pytest.raises(m.MyErr, match="refused") as caught,
        ):
            later.result("c/1.0")
        assert caught.value.code == 7
        assert caught.value.conn == "<not stored: a error_outcome_cases.Conn>"
        assert rt.run(m.caller, run_id="c") == result
