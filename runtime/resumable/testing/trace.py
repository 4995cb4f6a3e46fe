"""What a run did, await by await, for the divergence report.

AwaitRecord    one await reached: its source line and text, and the
               function's locals there (the original: read from its
               frame; the compiled machine: its checkpoint)
AwaitTracer    records the awaits of the original coroutine's own frame
               (not of the coroutines it awaits) with sys.settrace
intercepted    wraps the plain coroutine functions a decorated function
               awaits by global name (its "steps"), for the time of a run,
               so their calls are recorded (and faults injected) alike in
               the original and in the compiled machine, which share the
               module's globals
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import decimal
import dis
import enum
import functools
import inspect
import linecache
import re
import sys
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..function import Function

__all__ = [
    "AwaitRecord",
    "AwaitTracer",
    "discover_functions",
    "discover_steps",
    "intercepted",
    "same",
    "snapshot",
]

_AWAIT_OPS = {dis.opmap[name] for name in ("GET_AWAITABLE", "GET_ANEXT") if name in dis.opmap}
_COMPREHENSIONS = {"<listcomp>", "<setcomp>", "<dictcomp>"}
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


@dataclass
class AwaitRecord:
    """The n-th await (1-based) of the function's own body that was reached."""

    index: int
    filename: str
    line: int
    #: The function's locals at the await (None: inside a comprehension).
    locals: dict[str, Any] | None

    @property
    def text(self) -> str:
        return linecache.getline(self.filename, self.line).strip()

    def where(self) -> str:
        return f"{_short(self.filename)}:{self.line}"


def _short(path: str) -> str:
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if rel.startswith("..") else rel


def snapshot(value: Any) -> Any:
    """A copy of `value` as it is now (later changes to it do not show):
    plain data (builtins, dataclasses, enums, datetimes, ... of plain data)
    is copied, anything else is kept as its repr (never deep-copied: a copy
    of a task or a loop is harmful)."""
    if _plain(value, 0):
        try:
            return copy.deepcopy(value)
        except Exception:
            pass
    try:
        return _Repr(repr(value))
    except Exception as e:
        return _Repr(f"<{type(value).__qualname__}: repr failed: {e!r}>")


_ATOMS = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    decimal.Decimal,
    uuid.UUID,
    enum.Enum,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    datetime.tzinfo,
)


def _plain(value: Any, depth: int) -> bool:
    if depth > 50:
        return False
    if isinstance(value, _ATOMS):
        return True
    if isinstance(value, tuple | list | set | frozenset):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(
            _plain(getattr(value, f.name, None), depth + 1) for f in dataclasses.fields(value)
        )
    return False


class _Repr(str):
    """The text of a value that could not be copied."""

    def __repr__(self) -> str:
        return str(self)


def same(a: Any, b: Any) -> bool:
    """Equal, or (for values without a useful ==) equal reprs but for addresses."""
    if a is b:
        return True
    if type(a) is type(b) and isinstance(a, tuple | list) and len(a) == len(b):
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is type(b) is dict and a.keys() == b.keys():
        return all(same(a[k], b[k]) for k in a)
    try:
        if type(a) is type(b) and bool(a == b):
            return True
    except Exception:
        pass
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # nan
    if (
        isinstance(a, _Repr)
        or isinstance(b, _Repr)
        or getattr(type(a), "__eq__", None) is getattr(object, "__eq__", None)
    ):
        return _ADDRESS.sub("", repr(a)) == _ADDRESS.sub("", repr(b))
    return False


def _code_of(fn: Any) -> types.CodeType:
    inner = getattr(fn, "__func__", fn)
    code: types.CodeType = inner.__code__
    return code


class AwaitTracer:
    """Records each await the original's own frame reaches (GET_AWAITABLE,
    GET_ANEXT: the operand was just evaluated, so its locals are those the
    checkpoint before it holds, a walrus inside the operand aside)."""

    def __init__(self, original: Any, on_await: Callable[[AwaitRecord], None] | None = None):
        self.code = _code_of(original)
        self.comprehensions = {c for c in _nested(self.code) if c.co_name in _COMPREHENSIONS}
        self.awaits: dict[types.CodeType, set[int]] = {
            c: {i.offset for i in dis.get_instructions(c) if i.opcode in _AWAIT_OPS}
            for c in {self.code, *self.comprehensions}
        }
        self.top: types.FrameType | None = None
        self.records: list[AwaitRecord] = []
        self.on_await = on_await

    def _global(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        code = frame.f_code
        if code is self.code:
            if self.top is None:
                self.top = frame
            if frame is not self.top:
                return None  # a recursive call: its own run
        elif not (code in self.comprehensions and frame.f_back is self.top):
            return None
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        return self._local

    def _local(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "opcode" and frame.f_lasti in self.awaits[frame.f_code]:
            own = frame is self.top
            record = AwaitRecord(
                len(self.records) + 1,
                frame.f_code.co_filename,
                frame.f_lineno,
                {k: snapshot(v) for k, v in frame.f_locals.items()} if own else None,
            )
            self.records.append(record)
            if self.on_await is not None:
                self.on_await(record)
        return self._local

    @contextlib.contextmanager
    def tracing(self) -> Iterator[AwaitTracer]:
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            yield self
        finally:
            sys.settrace(previous)


def _nested(code: types.CodeType) -> Iterator[types.CodeType]:
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield c
            yield from _nested(c)


# ------------------------------------------------------------------ steps


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in _nested(code):
        names |= set(c.co_names)
    return names


def _is_step(value: Any) -> bool:
    if isinstance(value, Function) or not inspect.iscoroutinefunction(value):
        return False
    module = getattr(value, "__module__", None) or ""
    top = module.split(".")[0]
    return top not in ("resumable", "asyncio") and not getattr(value, "__resumable_step__", False)


def discover_steps(fn: Any) -> list[tuple[dict[str, Any], str]]:
    return _discover(fn)[0]


def discover_functions(fn: Any) -> list[Function]:
    """`fn` and the decorated functions it names (as globals), transitively."""
    return _discover(fn)[1]


def _discover(fn: Any) -> tuple[list[tuple[dict[str, Any], str]], list[Function]]:
    """(globals, name) of each plain coroutine function (not decorated, not
    resumable's or asyncio's) that `fn`, or a decorated function it names,
    names as a global: the awaited steps whose calls are recorded."""
    found: list[tuple[dict[str, Any], str]] = []
    functions: list[Function] = []
    seen_fns: set[int] = set()
    seen_names: set[tuple[int, str]] = set()
    todo = [fn]
    while todo:
        f = todo.pop()
        if isinstance(f, Function) and all(f is not g for g in functions):
            functions.append(f)
        inner = getattr(f, "__func__", f)
        inner = getattr(inner, "__wrapped__", inner)
        inner = getattr(inner, "__func__", inner)
        if id(inner) in seen_fns or not hasattr(inner, "__code__"):
            continue
        seen_fns.add(id(inner))
        globals_ = inner.__globals__
        for name in sorted(_names(inner.__code__)):
            value = globals_.get(name)
            if isinstance(value, Function):
                todo.append(value)
            elif _is_step(value) and (id(globals_), name) not in seen_names:
                seen_names.add((id(globals_), name))
                found.append((globals_, name))
    return found, functions


#: What a step wrapper calls around each call: (name, args, kwargs, call) -> awaitable.
Around = Callable[[str, tuple[Any, ...], dict[str, Any], Callable[[], Any]], Any]


@contextlib.contextmanager
def intercepted(steps: Iterable[tuple[dict[str, Any], str]], around: Around) -> Iterator[None]:
    """Replace each step (a global) by a wrapper that awaits
    `around(name, args, kwargs, call)`, for the time of the block."""
    saved: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for globals_, name in steps:
            original = globals_[name]
            saved.append((globals_, name, original))
            globals_[name] = _wrap(original, around)
        yield
    finally:
        for globals_, name, original in reversed(saved):
            globals_[name] = original


def _wrap(original: Any, around: Around) -> Any:
    label = getattr(original, "__qualname__", getattr(original, "__name__", repr(original)))

    @functools.wraps(original)
    async def step(*args: Any, **kwargs: Any) -> Any:
        return await around(label, args, kwargs, lambda: original(*args, **kwargs))

    step.__resumable_step__ = True  # type: ignore[attr-defined]
    return step
