"""Native mode: with no runtime driving, a decorated function is the original
coroutine function, untouched -- and needs no generated code at all."""

from __future__ import annotations

import asyncio
import functools
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import resumable
from resumable.function import Call

LOG: list[str] = []


class Boom(Exception):
    pass


BOOM = Boom("boom", 42)


async def raw_add(a: int, b: int = 10, *, scale: int = 1) -> int:
    """Add two numbers, after an await."""
    await asyncio.sleep(0)
    LOG.append(f"add {a} {b}")
    return (a + b) * scale


add = resumable.function(raw_add)


@resumable.function
async def fails(after: int) -> None:
    """Raise BOOM after some awaits."""
    for _ in range(after):
        await asyncio.sleep(0)
    raise BOOM


@resumable.function
async def nested(n: int) -> list[int]:
    out = [await add(n), await add(n, 1)]
    out += await asyncio.gather(add(1, 1), add(2, 2))
    return out


@resumable.function(retry=None)
async def with_options(x: int) -> int:
    await asyncio.sleep(0)
    return -x


class Account:
    def __init__(self) -> None:
        self.balance = 0

    @resumable.function
    async def deposit(self, amount: int) -> int:
        await asyncio.sleep(0)
        self.balance += amount
        return self.balance


def test_call_returns_the_original_coroutine() -> None:
    coro = add(1, 2)
    try:
        assert inspect.iscoroutine(coro)
        assert not isinstance(coro, Call)
        assert coro.cr_code is raw_add.__code__
    finally:
        coro.close()
    LOG.clear()
    assert asyncio.run(add(1, 2, scale=3)) == 9
    assert asyncio.run(add(5)) == 15
    assert LOG == ["add 1 2", "add 5 10"]


def test_wrapped_is_the_original() -> None:
    assert add.__wrapped__ is raw_add
    assert isinstance(add, resumable.Function)
    assert inspect.unwrap(add) is raw_add


def test_is_a_coroutine_function() -> None:
    for fn in (add, fails, nested, with_options, Account.deposit, Account().deposit):
        assert inspect.iscoroutinefunction(fn), fn
        assert asyncio.iscoroutinefunction(fn), fn


def test_functools_metadata() -> None:
    assert add.__name__ == "raw_add"
    assert add.__qualname__ == "raw_add"
    assert add.__doc__ == "Add two numbers, after an await."
    assert add.__module__ == __name__
    assert add.__annotations__ == raw_add.__annotations__
    assert add.__defaults__ == (10,) and add.__kwdefaults__ == {"scale": 1}
    assert inspect.signature(add) == inspect.signature(raw_add)
    assert fails.__name__ == "fails" and fails.__doc__ == "Raise BOOM after some awaits."
    assert Account.deposit.__qualname__ == "Account.deposit"
    for attr in functools.WRAPPER_ASSIGNMENTS:
        if hasattr(raw_add, attr):
            assert getattr(add, attr) == getattr(raw_add, attr), attr
    assert repr(add) == f"<resumable function {__name__}.raw_add>"


def test_exceptions_propagate_unchanged() -> None:
    with pytest.raises(Boom) as info:
        asyncio.run(fails(2))
    assert info.value is BOOM
    assert info.value.args == ("boom", 42)
    codes = [entry.frame.code.raw for entry in info.traceback]
    assert fails.__wrapped__.__code__ in codes


def test_bad_arguments_raise_the_original_type_error() -> None:
    with pytest.raises(TypeError) as native:
        raw_add(1, 2, 3)
    with pytest.raises(TypeError) as decorated:
        add(1, 2, 3)
    assert str(decorated.value) == str(native.value)


def test_awaited_from_an_undecorated_coroutine() -> None:
    async def plain() -> tuple[int, list[int], int]:
        first = await add(1, 1)
        many = await nested(3)
        return first, many, await with_options(4)

    LOG.clear()
    assert asyncio.run(plain()) == (2, [13, 4, 2, 4], -4)
    assert LOG == ["add 1 1", "add 3 10", "add 3 1", "add 1 1", "add 2 2"]


def test_decorated_method() -> None:
    account = Account()
    assert asyncio.run(account.deposit(5)) == 5
    assert asyncio.run(account.deposit(7)) == 12
    assert account.balance == 12
    assert Account.__dict__["deposit"].__wrapped__.__name__ == "deposit"


def test_decorator_with_arguments() -> None:
    assert isinstance(with_options, resumable.Function)
    assert with_options.retry is None
    assert with_options.__name__ == "with_options"
    assert asyncio.run(with_options(3)) == -3


def _sync(x: int) -> int:
    return x


async def _agen() -> Any:
    yield 1


@pytest.mark.parametrize(
    "target",
    [_sync, _agen, lambda: None, len, 42],
    ids=["def", "async-generator", "lambda", "builtin", "int"],
)
def test_decorating_a_non_async_function_is_a_type_error(target: Any) -> None:
    expected = (
        r"async generator"
        if inspect.isasyncgenfunction(target)
        else r"decorates `async def` functions"
    )
    with pytest.raises(TypeError, match=expected):
        resumable.function(target)
    with pytest.raises(TypeError, match=expected):
        resumable.function(retry=None)(target)


def test_type_error_names_the_function() -> None:
    with pytest.raises(TypeError, match="'_sync' is not one"):
        resumable.function(_sync)


def test_native_use_needs_no_generated_code(tmp_path: Path) -> None:
    # A fresh interpreter: the module has never been compiled, and running it
    # natively must neither look for generated code nor import the compiler.
    (tmp_path / "shop.py").write_text(
        textwrap.dedent(
            """\
            import asyncio

            import resumable


            @resumable.function
            async def price(n):
                await asyncio.sleep(0)
                return n * 3


            @resumable.function
            async def total(items):
                return sum([await price(i) for i in items])
            """
        )
    )
    script = textwrap.dedent(
        """\
        import asyncio, sys
        import shop
        print(asyncio.run(shop.total([1, 2, 3])))
        try:
            shop.total.machine()
        except Exception as e:
            print(type(e).__name__)
        print(sorted(m for m in ("libcst", "jinja2", "resumable_compiler") if m in sys.modules))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["18", "StaleCodeError", "[]"]
    assert not (tmp_path / "__resumable__").exists()
