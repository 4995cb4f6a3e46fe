"""Objects the programs of tests/grammar.py use: context managers and an
async iterator that a checkpoint can hold (dataclasses), recording what
happens to them in `log`, a list the function returns.

Each is imported by the generated module (`from tests.grammar_helpers import
...`), so its class is found by the codec after a crash (the generated
module itself may not be importable by name).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from resumable.testing import StepError, step

__all__ = ["AsyncManager", "Manager", "Ticker"]

#: What a manager's `suppress` names: the exceptions its exit swallows.
SUPPRESSED: dict[str, tuple[type[BaseException], ...]] = {
    "": (),
    "ValueError": (ValueError,),
    "StepError": (StepError,),
    "Exception": (Exception,),
}


def _name(typ: type[BaseException] | None) -> str:
    return "-" if typ is None else typ.__name__


@dataclass
class Manager:
    """A `with` manager: logs enter and exit (the exception given to exit,
    and `sys.exception()` there), returns an int (or a pair, `pair`) to the
    `as` target, swallows the exceptions `suppress` names, and raises
    ValueError from `__exit__` when `fails` (chained to the exception it was
    handling)."""

    log: list[str]
    name: str
    suppress: str = ""
    pair: bool = False
    fails: bool = False

    def _entered(self) -> Any:
        self.log.append(f"enter {self.name}")
        n = len(self.log)
        return (n, n % 3) if self.pair else n

    def _exited(self, typ: type[BaseException] | None, value: BaseException | None) -> bool:
        self.log.append(f"exit {self.name} {_name(typ)} {value!r} {sys.exception()!r}")
        if self.fails:
            raise ValueError("exit", self.name)
        return typ is not None and issubclass(typ, SUPPRESSED[self.suppress])

    def __enter__(self) -> Any:
        return self._entered()

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: Any
    ) -> bool:
        return self._exited(typ, value)


@dataclass
class AsyncManager(Manager):
    """An `async with` manager: the same, and with `awaits` its enter and
    exit each await `step` (which may fail, as scripted)."""

    awaits: bool = False

    async def __aenter__(self) -> Any:
        if self.awaits:
            await step(f"{self.name}.enter")
        return self._entered()

    async def __aexit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: Any
    ) -> bool:
        if self.awaits:
            await step(f"{self.name}.exit", _name(typ))
        return self._exited(typ, value)


@dataclass
class Ticker:
    """An async iterator over 1..n holding its position (`i`); with `awaits`
    each item is `await step(name, i)` (which may fail)."""

    name: str
    n: int
    i: int = 0
    awaits: bool = False

    def __aiter__(self) -> Ticker:
        return self

    async def __anext__(self) -> int:
        if self.i >= self.n:
            raise StopAsyncIteration
        self.i += 1
        if self.awaits:
            return await step(self.name, self.i)
        return self.i
