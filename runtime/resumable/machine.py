"""What generated state machines are made of: `Machine`, `Locals`, and the
helpers a state calls through its `m` argument.

A compiled function is a `Machine` subclass whose states are plain functions
`state(m, L)`: `m` is the machine (one per run segment), `L` the function's
locals, one attribute per variable (unbound = absent). A state returns:

- an `int`: the next state to run;
- `m.done(value)`: the function returned `value`;
- `m.throw(exc)`: raise `exc` at this point without touching its context
  (used to re-raise pending exceptions);
- for an *await state* (listed in `awaits`): the awaitable to await.

Tables on the class (all keyed by state number):

    awaits   = {3: (4, ("user_id", "receipt_id"))}  # await state -> (resume state, live locals)
    sites    = {3: (1, "a1b2c3d4e5f6.0a1b2c3d")}     # await state -> (await ordinal, site fingerprint)
    on_error = {5: (7, "_x1")}                       # where an exception raised in a state goes,
                                                     #   and the variable that receives it
    handled  = {8: ("_x1",)}                         # exceptions being handled while the state runs

Nothing here imports the compiler.
"""

from __future__ import annotations

import builtins
import sys
from typing import Any, ClassVar

from . import contexts, groups, loops
from .errors import InternalError

__all__ = ["DONE", "THROW", "Locals", "Machine"]


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Returned by a state when the function returned (the value is in `m.result`).
DONE = _Signal("DONE")
#: Returned by a state to raise `m.thrown` at that state without re-raising it.
THROW = _Signal("THROW")

_UNBOUND = "cannot access local variable '{}' where it is not associated with a value"
_UNBOUND_FREE = (
    "cannot access free variable '{}' where it is not associated with a value in enclosing scope"
)


def _unbound(name: str, frame: Any) -> NameError:
    """CPython's error for reading or deleting an unbound variable: its
    UnboundLocalError in the function's own code (a state), its NameError for
    a free variable in a closure, a class body or (before 3.12) a
    comprehension, which reach the locals through a cell."""
    if frame is not None and frame.f_code.co_freevars:
        return NameError(_UNBOUND_FREE.format(name), name=name)
    return UnboundLocalError(_UNBOUND.format(name))


class Locals:
    """The local variables of one function activation, as attributes.

    Reading or deleting an unbound variable raises the same error CPython
    raises for a real local (or, in a closure, for a free variable)."""

    def __getattr__(self, name: str) -> Any:
        raise _unbound(name, sys._getframe(1))

    def __delattr__(self, name: str) -> None:
        if name not in self.__dict__:
            raise _unbound(name, sys._getframe(1))
        del self.__dict__[name]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"Locals({inner})"

    # Helpers for code inside a nested function, which has no `m`: a walrus
    # or a `case` capture binding one of the function's variables (`nonlocal`).
    # Dunder names, so that no local variable can hide them.
    def __let__(self, name: str, value: Any) -> Any:
        """`(name := value)`."""
        self.__dict__[name] = value
        return value

    def __capture__(self, /, **values: Any) -> bool:
        """Copy the names a `case` pattern captured into the locals (a guard
        that is always true)."""
        self.__dict__.update(values)
        return True


_NO_ITEM = object()


def _function_str(fn: Any) -> str:
    """How CPython names a callable in call errors (`mod.f()`, `print()`)."""
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(qualname, str):
        return str(fn)
    module = getattr(fn, "__module__", None)
    if isinstance(module, str) and module != "builtins":
        return f"{module}.{qualname}()"
    return f"{qualname}()"


class Machine:
    """Base class of generated state machines; one instance per run segment."""

    # Filled in by the generated subclass.
    function_id: ClassVar[str] = ""
    qualname: ClassVar[str] = ""
    source_file: ClassVar[str] = ""
    first_line: ClassVar[int] = 0
    build_hash: ClassVar[str] = ""
    run_fingerprint: ClassVar[str] = ""
    compiler_version: ClassVar[str] = ""
    #: How the compiler laid out the states (resumable_compiler.fingerprint.LOWERING_VERSION):
    #: a checkpoint resumes only under code of the same layout.
    lowering_version: ClassVar[int] = 1
    params: ClassVar[tuple[str, ...]] = ()
    #: Modules the function imports: a checkpoint holding them may import them again.
    imports: ClassVar[tuple[str, ...]] = ()
    import_set: ClassVar[frozenset[str]] = frozenset()
    states: ClassVar[tuple[Any, ...]] = ()
    lines: ClassVar[tuple[int, ...]] = ()
    awaits: ClassVar[dict[int, tuple[int, tuple[str, ...]]]] = {}
    sites: ClassVar[dict[int, tuple[int, str]]] = {}
    on_error: ClassVar[dict[int, tuple[int, str]]] = {}
    handled: ClassVar[dict[int, tuple[str, ...]]] = {}
    #: Hidden variables (temporaries, loop cursors, ...) -> what they hold, for errors.
    hidden: ClassVar[dict[str, str]] = {}
    #: Offset between the source's current line numbers and the compiled ones.
    line_shift: ClassVar[int] = 0
    #: The original method's `__class__` cell (loader.py), when it uses
    #: `super()` or `__class__`: what `m.owner` reads.
    class_cell: ClassVar[Any] = None
    #: The lambdas and nested functions of the function, by which a
    #: checkpoint stores closures (resumable.closures; set when bound).
    closures: ClassVar[Any] = None

    AssertionError = builtins.AssertionError

    __slots__ = ("result", "run", "sent", "thrown")

    def __init__(self, run: Any = None) -> None:
        self.run = run
        self.sent: Any = None
        self.result: Any = None
        self.thrown: BaseException | None = None

    # -- helpers called by generated states --------------------------------

    @property
    def owner(self) -> type:
        """`__class__` in a method: the class whose body defines it (zero-argument
        `super()` is compiled to `super(m.owner, <first argument>)`)."""
        cell = type(self).class_cell
        if cell is None:
            raise RuntimeError("super(): __class__ cell not found")
        try:
            owner: type = cell.cell_contents
            return owner
        except ValueError:
            pass
        raise RuntimeError("super(): empty __class__ cell")  # outside the handler: no context

    @staticmethod
    def super_argument(L: Locals, name: str | None) -> Any:
        """The first argument of zero-argument `super()` when it may be
        missing: CPython's RuntimeError when the method has no positional
        parameter (`name` None) or its first one was deleted."""
        if name is None:
            raise RuntimeError("super(): no arguments")
        if name not in L.__dict__:  # raised outside any handler: no __context__
            raise RuntimeError("super(): arg[0] deleted")
        return L.__dict__[name]

    def done(self, value: Any) -> _Signal:
        """`return value` from the function."""
        self.result = value
        return DONE

    def throw(self, exc: BaseException) -> _Signal:
        """Raise `exc` here, leaving its __context__ and __cause__ as they are."""
        self.thrown = exc
        return THROW

    @staticmethod
    def let(L: Locals, name: str, value: Any) -> Any:
        """`(name := value)`."""
        setattr(L, name, value)
        return value

    @staticmethod
    def capture(L: Locals, /, **values: Any) -> bool:
        """Copy the names a `case` pattern captured into the locals (a guard
        that is always true)."""
        L.__dict__.update(values)
        return True

    @staticmethod
    def drop(L: Locals, /, *names: str) -> None:
        """Delete the hidden variables of a scope that ended (a comprehension's);
        those never bound are skipped."""
        values = L.__dict__
        for name in names:
            values.pop(name, None)

    @staticmethod
    def empty_set() -> set[Any]:
        """A comprehension's new set, whatever the module calls `set`."""
        return set()

    @staticmethod
    def raising(record: Any) -> bool:
        """Is a finally block's pending completion an exception?"""
        return isinstance(record, BaseException)

    @staticmethod
    def mapping(
        value: Any, callee: Any = None, *, attribute: str | None = None, item: Any = _NO_ITEM
    ) -> dict[Any, Any]:
        """`**value` of a call, merged before a later argument awaits, with
        CPython's error for a value that is not a mapping (naming the callee:
        `callee`, `callee.<attribute>` or `callee[item]`)."""
        if hasattr(value, "keys"):
            return {**value}
        if attribute is not None:
            callee = getattr(callee, attribute)
        elif item is not _NO_ITEM:
            callee = callee[item]
        raise TypeError(
            f"{_function_str(callee)} argument after ** must be a mapping, not {type(value).__name__}"
        )

    @staticmethod
    def bad_record(record: Any) -> InternalError:
        return InternalError(f"a finally block ended with an unknown pending record {record!r}")

    @staticmethod
    def matches(exc: BaseException, spec: Any) -> bool:
        """The test of `except spec:`, with CPython's check of `spec`."""
        for cls in spec if isinstance(spec, tuple) else (spec,):
            if not (isinstance(cls, type) and issubclass(cls, BaseException)):
                raise TypeError(
                    "catching classes that do not inherit from BaseException is not allowed"
                )
        return isinstance(exc, spec)

    star_match = staticmethod(groups.match)
    star_outcome = staticmethod(groups.outcome)

    @staticmethod
    def lazy(fn: Any, /, *args: Any, **kwargs: Any) -> loops.LazyCall:
        """`fn(*args, **kwargs)` in a for-loop header, called by `loop` (so that
        enumerate/zip/reversed over checkpointable values get a cursor)."""
        return loops.LazyCall(fn, args, kwargs)

    # `with`, `async with`, `async for` (contexts.py)
    enter = staticmethod(contexts.enter)
    exit = staticmethod(contexts.exit)
    async_manager = staticmethod(contexts.async_manager)
    aenter = staticmethod(contexts.aenter)
    aexit = staticmethod(contexts.aexit)
    anext = staticmethod(contexts.anext)
    STOP = contexts.STOP

    def aloop(self, iterable: Any, line: int) -> Any:
        """Start an `async for`: its iterator, checked to be storable."""
        where = f"{self.source_file}:{line + self.line_shift}"
        return contexts.async_iterator(iterable, where, type(self).import_set)

    def loop(self, iterable: Any, line: int, construct: str = "for-loop") -> loops.Cursor:
        """Start a for-loop whose body awaits (or a `for` clause of a
        comprehension that awaits): a checkpointable cursor."""
        where = f"{self.source_file}:{line + self.line_shift}"
        return loops.cursor(iterable, where, construct)

    def source_line(self, state: int) -> int:
        """The current source line of a state (compiled line + shift)."""
        return self.lines[state] + self.line_shift
