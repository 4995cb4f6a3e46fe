"""The protocols of `with`, `async with` and `async for` in compiled code.

A `with` whose block awaits, and every `async with` and `async for`, are
lowered as the language reference expands them
(https://docs.python.org/3/reference/compound_stmts.html#the-with-statement).
The manager, or the iterator, is a hidden local held across checkpoints
like any other, so its methods run on its decoded copy; states call them
through these helpers (as `m.enter`, `m.aexit`, ...):

    with EXPR as T:          L._w1 = EXPR
        SUITE                L._t1 = m.enter(L._w1)      __enter__ and __exit__ looked
                                                         up, then __enter__ called
                             (protected by a finally, record _f1)
                             T = L._t1; SUITE
                             (the finally) if m.exit(L._w1, L._f1): L._f1 = None

    async with EXPR as T:    L._w1 = m.async_manager(EXPR)    __aenter__ and __aexit__
                                                              looked up
                             return m.aenter(L._w1)      await state: __aenter__ called
                             ...
                             return m.aexit(L._w1, L._f1)     await state: __aexit__
                             if m.raising(L._f1) and m.sent: L._f1 = None

    async for T in EXPR:     L._i1 = m.aloop(EXPR, line)      __aiter__, then a check
                                                              that it can be checkpointed
                             head: return m.anext(L._i1)      await state: __anext__
                                   if m.sent is m.STOP: return <else>
                                   T = m.sent

The finally record says how the block was left: an exception (passed to
`__exit__` as type, value, traceback, and suppressed by a true result) or
anything else (`None, None, None`, the result ignored). Errors are
CPython's own: a manager without the protocol is tried with a native `with`
(which fails before calling anything); the messages of `async for` and of
awaitables are CPython's.

`m.anext` returns `STOP` where `__anext__` raises StopAsyncIteration, so the
end of a loop never reaches the retry rule; any other exception of
`__anext__` is an await's failure like any other.
"""

from __future__ import annotations

import re
import types
from inspect import CO_ITERABLE_COROUTINE
from typing import Any

from .codec import Unencodable, encode_value, type_name
from .errors import InternalError, SerializationError

__all__ = [
    "STOP",
    "aenter",
    "aexit",
    "anext",
    "async_iterator",
    "async_manager",
    "enter",
    "exit",
    "hidden_fix",
]


class _Stop:
    __slots__ = ()

    def __repr__(self) -> str:
        return "STOP"


#: What `anext` gives when the iterator is exhausted.
STOP: Any = _Stop()


def _lookup(obj: Any, name: str) -> Any:
    """CPython's special method lookup: `name` in the MRO of `type(obj)`
    (never the instance), bound to `obj`; None when missing."""
    cls = type(obj)
    for base in cls.__mro__:
        namespace = base.__dict__
        if name in namespace:
            found = namespace[name]
            get = getattr(type(found), "__get__", None)
            return found if get is None else get(found, obj, cls)
    return None


def _type_has(cls: type, name: str) -> bool:
    return any(name in base.__dict__ for base in cls.__mro__)


def _short(obj: Any) -> str:
    """`%.100s` of the type's name, as CPython's messages show it."""
    return type(obj).__name__[:100]


# -- with --------------------------------------------------------------------------


def enter(manager: Any) -> Any:
    """`type(manager).__enter__` and `__exit__` looked up (in that order), then
    `__enter__` called: its result."""
    bound = _lookup(manager, "__enter__")
    if bound is None or _lookup(manager, "__exit__") is None:
        _native_with(manager)
    return bound()


def _native_with(manager: Any) -> None:
    """CPython's own TypeError for a manager without the protocol."""
    with manager:
        pass
    raise InternalError("a manager without __enter__ or __exit__ was entered")  # pragma: no cover


def exit(manager: Any, record: Any) -> bool:
    """Call `__exit__` for a block left as `record` says (a finally record:
    an exception, or how else it was left); True when it suppresses the
    exception."""
    bound = _lookup(manager, "__exit__")
    if isinstance(record, BaseException):
        return bool(bound(type(record), record, record.__traceback__))
    bound(None, None, None)
    return False


# -- async with --------------------------------------------------------------------


def async_manager(manager: Any) -> Any:
    """`manager`, once `__aenter__` and `__aexit__` are looked up (in that
    order): a manager without them fails here, before the checkpoint of
    `__aenter__` (which would have to store it)."""
    if _lookup(manager, "__aenter__") is None or _lookup(manager, "__aexit__") is None:
        _native_async_with(manager)
    return manager


def aenter(manager: Any) -> Any:
    """Call `__aenter__`: the awaitable it returns."""
    bound = _lookup(manager, "__aenter__")
    if bound is None:
        _native_async_with(manager)
    return _awaitable(bound(), "__aenter__")


def _native_async_with(manager: Any) -> None:
    async def native() -> None:
        async with manager:
            pass

    coroutine = native()
    try:
        coroutine.send(None)
    finally:
        coroutine.close()
    raise InternalError("a manager without __aenter__ or __aexit__ was entered")  # pragma: no cover


def aexit(manager: Any, record: Any) -> Any:
    """Call `__aexit__` for a block left as `record` says: the awaitable it
    returns (its value, when the block raised, says whether to suppress)."""
    bound = _lookup(manager, "__aexit__")
    if isinstance(record, BaseException):
        result = bound(type(record), record, record.__traceback__)
    else:
        result = bound(None, None, None)
    return _awaitable(result, "__aexit__")


def _is_awaitable(value: Any) -> bool:
    t = type(value)
    if t is types.CoroutineType:
        return True
    if t is types.GeneratorType and value.gi_code.co_flags & CO_ITERABLE_COROUTINE:
        return True
    return _type_has(t, "__await__")


def _awaitable(value: Any, method: str) -> Any:
    if _is_awaitable(value):
        return value
    raise TypeError(
        f"'async with' received an object from {method} that does not implement __await__: "
        f"{_short(value)}"
    )


# -- async for ---------------------------------------------------------------------


def async_iterator(iterable: Any, where: str, imports: frozenset[str] | None = None) -> Any:
    """`type(iterable).__aiter__(iterable)` at the entry of an `async for`
    (CPython's errors), checked to be an iterator a checkpoint can hold."""
    bound = _lookup(iterable, "__aiter__")
    if bound is None:
        raise TypeError(
            f"'async for' requires an object with __aiter__ method, got {_short(iterable)}"
        )
    iterator = bound()
    if not _type_has(type(iterator), "__anext__"):
        raise TypeError(
            "'async for' received an object from __aiter__ that does not implement __anext__: "
            f"{_short(iterator)}"
        )
    try:
        encode_value(iterator, imports=imports)
    except Unencodable as e:
        at = f" (at `{e.where()}`)" if e.path else ""
        raise SerializationError(
            f"the async for-loop at {where} iterates a `{type_name(type(iterator))}`, whose "
            f"position cannot be checkpointed: it holds a `{type_name(type(e.value))}`{at}, and "
            f"{e.reason}. An `async for` keeps its iterator in the checkpoint of every step. "
            f"Fix: {_ITERATOR_FIX}"
        ) from None
    return iterator


async def anext(iterator: Any) -> Any:
    """One step of an `async for`: the next item, or STOP at the end."""
    bound = _lookup(iterator, "__anext__")
    if bound is None:
        raise TypeError(
            f"'async for' requires an iterator with __anext__ method, got {_short(iterator)}"
        )
    try:
        awaitable = bound()
        if not _is_awaitable(awaitable):
            _invalid_from_anext(awaitable)
        return await awaitable
    except StopAsyncIteration:
        return STOP


def _invalid_from_anext(value: Any) -> None:
    """CPython's error, caused by (and in the context of) the await's own."""
    cause = TypeError(f"object {_short(value)} can't be used in 'await' expression")
    try:
        raise cause
    except TypeError:
        raise TypeError(
            f"'async for' received an invalid object from __anext__: {_short(value)}"
        ) from cause


# -- errors ------------------------------------------------------------------------

_MANAGER_FIX = (
    "a `with` block that awaits keeps its manager in every checkpoint inside it: make the "
    "manager storable (a dataclass, or `resumable.register_codec`), or move the block into a "
    "plain (not decorated) helper coroutine and await that as one step "
    "(`result = await fetch(...)`, with the `with` inside `fetch`)"
)
_ITERATOR_FIX = (
    "collect the items in one step (a plain, not decorated, helper coroutine that runs the "
    "`async for` and returns a list: `items = await collect(...)`, then `for x in items`), or "
    "make the iterator storable (a dataclass that holds its position, or "
    "`resumable.register_codec`)"
)
_FIXES = {"w": _MANAGER_FIX, "i": _ITERATOR_FIX}
_KIND = re.compile(r"_+([a-z]+)\d+")


def hidden_fix(name: str) -> str | None:
    """The fix to offer when the hidden variable `name` cannot be stored,
    when its kind has one of its own (a manager, an async iterator)."""
    match = _KIND.fullmatch(name)
    return _FIXES.get(match.group(1)) if match else None
