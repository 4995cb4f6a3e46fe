"""`@resumable.function`: the decorator and what calling a decorated function returns.

    @resumable.function
    async def checkout(user_id, order_id): ...

    asyncio.run(checkout("u1", "o1"))   # native: the original coroutine, untouched
    rt.run(checkout, "u1", "o1")         # durable: the compiled state machine

Called from inside a running compiled function (in its own code, in a plain
helper coroutine it awaits, or in a task it creates), a decorated function
returns a `Call` instead of a coroutine: an awaitable (also accepted by
asyncio.gather / wait_for / create_task) that the runtime drives through the
callee's own compiled machine, as a child run of the step that called it.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
from collections.abc import Callable, Generator
from typing import Any, overload

from .retry import Retry
from .run import CURRENT, Step
from .source import module_name_for

__all__ = ["Call", "Function", "function", "registered", "registered_ids"]

#: Every decorated function of the modules imported so far, by function id.
_REGISTRY: dict[str, Function] = {}


def registered(function_id: str) -> Function | None:
    """The decorated function with this id (`module:qualname`), if its module
    has been imported in this process."""
    return _REGISTRY.get(function_id)


def registered_ids() -> list[str]:
    """The ids of every decorated function imported in this process."""
    return sorted(_REGISTRY)


class Function:
    """A decorated async function. `__wrapped__` is the original."""

    __wrapped__: Callable[..., Any]
    __name__: str
    __qualname__: str

    def __init__(self, fn: Callable[..., Any], retry: Any = None) -> None:
        if inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"@resumable.function: {fn.__qualname__!r} is an async generator (it yields), "
                "which cannot be checkpointed; return a list instead"
            )
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@resumable.function decorates `async def` functions; "
                f"{getattr(fn, '__qualname__', fn)!r} is not one"
            )
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(
                f"@resumable.function(retry=...) takes a resumable.Retry(...), not {retry!r}"
            )
        functools.update_wrapper(self, fn)
        self.retry: Retry | None = retry
        self._machine: Any = None
        #: `module:qualname`, the module named after the source file (as the compiler does).
        self.function_id = f"{module_name_for(fn.__code__.co_filename)}:{fn.__qualname__}"
        _REGISTRY[self.function_id] = self

    # inspect.iscoroutinefunction() / asyncio.iscoroutinefunction() see the original.
    @property
    def __code__(self) -> types.CodeType:
        return self.__wrapped__.__code__

    @property
    def __defaults__(self) -> Any:
        return self.__wrapped__.__defaults__

    @property
    def __kwdefaults__(self) -> Any:
        return self.__wrapped__.__kwdefaults__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        step = CURRENT.get()
        if step is None:
            return self.__wrapped__(*args, **kwargs)
        return Call(self, args, kwargs, step)

    def dispatch(self, *args: Any, **kwargs: Any) -> str:
        """Enqueue a run on the default runtime (`resumable.configure`) and
        return its id at once; a worker drives it."""
        from .runtime import default_runtime

        return default_runtime().dispatch(self, *args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else types.MethodType(self, obj)

    def __repr__(self) -> str:
        return f"<resumable function {self.__module__}.{self.__qualname__}>"

    def machine(self) -> Any:
        """The compiled state machine class (loaded at the first durable run)."""
        if self._machine is None:
            from .loader import load_machine

            self._machine = load_machine(self)
        return self._machine


class Call(collections.abc.Coroutine[Any, Any, Any]):
    """A call of a decorated function made inside a running compiled function."""

    __slots__ = ("_coro", "args", "function", "kwargs", "step")

    def __init__(
        self, function: Function, args: tuple[Any, ...], kwargs: dict[str, Any], step: Step
    ) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.step = step
        self._coro: Any = None

    def _started(self) -> Any:
        if self._coro is None:
            self._coro = self.step.run.child(self, self.step)
        return self._coro

    def __await__(self) -> Generator[Any, None, Any]:
        return self._started().__await__()

    def send(self, value: Any) -> Any:
        return self._started().send(value)

    def throw(self, *args: Any) -> Any:
        return self._started().throw(*args)

    def close(self) -> None:
        if self._coro is not None:
            self._coro.close()

    def __repr__(self) -> str:
        return f"<resumable call {self.function.__qualname__}>"


@overload
def function(fn: Callable[..., Any], /) -> Function: ...
@overload
def function(*, retry: Any = None) -> Callable[[Callable[..., Any]], Function]: ...


def function(fn: Callable[..., Any] | None = None, /, *, retry: Any = None) -> Any:
    """Make an `async def` resumable: `@resumable.function` or
    `@resumable.function(retry=...)`."""
    if fn is None:
        return lambda f: Function(f, retry=retry)
    return Function(fn, retry=retry)
