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

Methods of module-level classes may be decorated too, in either order with
`@staticmethod` / `@classmethod`:

    class Cart:
        @resumable.function
        async def checkout(self, user_id): ...      # cart.checkout: a BoundFunction
        @classmethod
        @resumable.function
        async def open(cls, user_id): ...           # Cart.open: bound to the class

`obj.method` is a `BoundFunction`: calling it passes `obj` as the first
argument (so a child run gets `self` through the codec, as a copy), and
`rt.run(obj.method, ...)` and `obj.method.dispatch(...)` run the method with
`obj` as its first argument.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import math
import types
from collections.abc import Callable, Generator
from typing import Any, overload

from .queues import Queue
from .retry import Retry
from .run import CURRENT, Step
from .source import module_name_for

__all__ = [
    "BoundFunction",
    "Call",
    "Function",
    "function",
    "registered",
    "registered_ids",
    "unbind",
]

#: Every decorated function of the modules imported so far, by function id.
_REGISTRY: dict[str, Function] = {}


def registered(function_id: str) -> Function | None:
    """The decorated function with this id (`module:qualname`), if its module
    has been imported in this process."""
    return _REGISTRY.get(function_id)


def forget_module(module: str) -> None:
    """Forget the decorated functions of `module`: its import failed, and what it defined before the failure is not
    the module (its later definitions, the helpers they call, are missing)."""
    for function_id in [f for f in _REGISTRY if f.split(":", 1)[0] == module]:
        del _REGISTRY[function_id]


def registered_ids() -> list[str]:
    """The ids of every decorated function imported in this process."""
    return sorted(_REGISTRY)


class Function:
    """A decorated async function. `__wrapped__` is the original."""

    __wrapped__: Callable[..., Any]
    __name__: str
    __qualname__: str

    def __init__(
        self,
        fn: Callable[..., Any],
        retry: Any = None,
        timeout: float | None = None,
        queue: Any = None,
    ) -> None:
        #: "staticmethod" or "classmethod" when it decorates one (`@resumable.function`
        #: above `@staticmethod`/`@classmethod`), else None.
        self.kind: str | None = None
        if isinstance(fn, staticmethod | classmethod):
            self.kind = type(fn).__name__
            fn = fn.__func__
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
        if queue is not None and not isinstance(queue, Queue):
            raise TypeError(
                f"@resumable.function(queue=...) takes a resumable.Queue(...), not {queue!r:.80}"
            )
        functools.update_wrapper(self, fn)
        self.retry: Retry | None = retry
        #: The queue its dispatched runs are claimed through (queues.py), if any.
        self.queue: Queue | None = queue
        #: Seconds from the run's first start (waits included) after which
        #: its body is cancelled and its callers see TimeoutError.
        self.timeout: float | None = _check_timeout(timeout)
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
        return its id at once; a worker drives it. Takes `Runtime.dispatch`'s
        keywords too (`run_id`, `queue`, `priority`, `dedup_key`)."""
        from .runtime import default_runtime

        return default_runtime().dispatch(self, *args, **kwargs)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if self.kind == "staticmethod":
            return self
        if self.kind == "classmethod":
            return BoundFunction(self, objtype if objtype is not None else type(obj))
        return self if obj is None else BoundFunction(self, obj)

    def __repr__(self) -> str:
        return f"<resumable function {self.__module__}.{self.__qualname__}>"

    def machine(self) -> Any:
        """The compiled state machine class (loaded at the first durable run)."""
        if self._machine is None:
            from .loader import load_machine

            self._machine = load_machine(self)
        return self._machine


class BoundFunction:
    """A decorated method bound to its object (or a classmethod to its class),
    as `types.MethodType` would be, with `dispatch` passing the object too.
    `__wrapped__` is the original method bound to the same object."""

    __slots__ = ("__func__", "__self__")

    def __init__(self, function: Function, obj: Any) -> None:
        self.__func__ = function
        self.__self__ = obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__func__(self.__self__, *args, **kwargs)

    def dispatch(self, *args: Any, **kwargs: Any) -> str:
        """Enqueue a run of the method with its object as first argument."""
        return self.__func__.dispatch(self.__self__, *args, **kwargs)

    @property
    def __wrapped__(self) -> Any:
        return types.MethodType(self.__func__.__wrapped__, self.__self__)

    def __getattr__(self, name: str) -> Any:
        # __name__, __qualname__, __doc__, function_id, retry, machine, ...
        return getattr(self.__func__, name)

    def __eq__(self, other: object) -> bool:
        # As for bound methods: the same function, bound to the same object.
        if not isinstance(other, BoundFunction | types.MethodType):
            return NotImplemented
        return self.__func__ is other.__func__ and self.__self__ is other.__self__

    def __hash__(self) -> int:
        return hash((id(self.__func__), id(self.__self__)))

    def __repr__(self) -> str:
        return f"<bound resumable function {self.__func__.__qualname__} of {self.__self__!r:.80}>"


def unbind(fn: Any, args: tuple[Any, ...]) -> tuple[Function, tuple[Any, ...]]:
    """(the decorated function, the arguments) of `fn(*args)`: a bound method
    of a decorated function (`obj.method`, `Cls.cmethod`) runs the function
    with its object first. TypeError for anything not decorated."""
    if isinstance(fn, BoundFunction):
        return fn.__func__, (fn.__self__, *args)
    if isinstance(fn, types.MethodType):  # a classmethod above @resumable.function, 3.13+
        function = fn.__func__
        if isinstance(function, Function):
            return function, (fn.__self__, *args)
    if not isinstance(fn, Function):
        raise TypeError(f"{fn!r} is not decorated with @resumable.function")
    return fn, args


class Call(collections.abc.Coroutine[Any, Any, Any]):
    """A call of a decorated function made inside a running compiled function."""

    __slots__ = ("_coro", "args", "child_id", "function", "kwargs", "step")

    def __init__(
        self, function: Function, args: tuple[Any, ...], kwargs: dict[str, Any], step: Step
    ) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.step = step
        #: Set by resumable.gather/race/any, which number their children in
        #: argument order before any starts (None: numbered when it starts).
        self.child_id: str | None = None
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


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(
            f"@resumable.function(timeout=...) takes seconds (an int or a float), not {timeout!r:.80}"
        )
    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(
            f"@resumable.function(timeout=...): {timeout!r} is not a positive number of seconds"
        )
    return float(timeout)


@overload
def function(fn: Callable[..., Any], /) -> Function: ...
@overload
def function(
    *, retry: Any = None, timeout: float | None = None, queue: Queue | None = None
) -> Callable[[Callable[..., Any]], Function]: ...


def function(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    retry: Any = None,
    timeout: float | None = None,
    queue: Queue | None = None,
) -> Any:
    """Make an `async def` resumable: `@resumable.function`, or with
    `retry=resumable.Retry(...)`, `timeout=seconds` (from the run's first
    start, waits included: its body sees CancelledError at the await it
    stands at, its callers TimeoutError; never retried) and
    `queue=resumable.Queue(...)` (its dispatched runs are started by
    workers within the queue's limits: queues.py)."""
    if fn is None:
        return lambda f: Function(f, retry=retry, timeout=timeout, queue=queue)
    return Function(fn, retry=retry, timeout=timeout, queue=queue)
