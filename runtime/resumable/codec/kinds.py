"""What the encoder and decoder both need to know about particular kinds of values.

- built-in exception fields kept outside `args` (OSError.errno, ...);
- the built-in base whose storage a subclass instance uses (a `str` subclass
  is stored as its string, a `dict` subclass as its items) and how to rebuild
  it without calling the subclass's `__init__` (or any method it overrides);
- pydantic models, recognized without importing pydantic;
- the traceback text of exceptions that went through a checkpoint.
"""

from __future__ import annotations

import collections
import dataclasses
import linecache
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = [
    "EXCEPTION_FIELDS",
    "SUBCLASS_BASES",
    "TRACEBACK_ATTRIBUTE",
    "exception_fields",
    "is_dataclass_instance",
    "is_namedtuple_class",
    "is_pydantic_model",
    "remember_traceback",
    "subclass_base",
    "traceback_text",
]

# C-level attributes of built-in exceptions that live outside `args`.
EXCEPTION_FIELDS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (StopIteration, ("value",)),
    (StopAsyncIteration, ("value",)),
    (SystemExit, ("code",)),
    (ImportError, ("name", "path")),
    (OSError, ("errno", "strerror", "filename", "filename2")),
    (NameError, ("name",)),
    (AttributeError, ("name", "obj")),
    (SyntaxError, ("msg", "filename", "lineno", "offset", "text", "end_lineno", "end_offset")),
    (UnicodeError, ("encoding", "object", "start", "end", "reason")),
)

_ABSENT = object()


def exception_fields(x: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for base, names in EXCEPTION_FIELDS:
        if isinstance(x, base):
            for name in names:
                value = getattr(x, name, _ABSENT)
                if value is not _ABSENT:
                    out[name] = value
    return out


# -- subclasses of built-in types ----------------------------------------------

#: base -> (how to read the stored value, how to build an empty instance of a
#: subclass, how to fill it). Bases are looked up in this order (the most
#: derived first), so an OrderedDict subclass uses OrderedDict's storage.
SUBCLASS_BASES: tuple[type, ...] = (
    collections.OrderedDict,
    collections.defaultdict,
    collections.Counter,
    collections.deque,
    dict,
    list,
    set,
    frozenset,
    tuple,
    str,
    bytes,
    int,
    float,
)


def subclass_base(cls: type) -> type | None:
    for base in SUBCLASS_BASES:
        if issubclass(cls, base):
            return base
    return None


def is_plain_subclass(cls: type) -> bool:
    """A subclass of a built-in type stored as such (`$sub`): not a kind that
    has a tag of its own (Enum, named tuple, dataclass, pydantic model), not
    bool, and not a C-level struct sequence."""
    import enum

    return (
        subclass_base(cls) is not None
        and not issubclass(cls, enum.Enum | bool)
        and not is_namedtuple_class(cls)
        and not dataclasses.is_dataclass(cls)
        and not is_pydantic_model(cls)
        and (cls.__module__ != "builtins" or cls in SUBCLASS_BASES)
        and not hasattr(cls, "n_sequence_fields")
    )


def is_dataclass_instance(x: Any) -> bool:
    return dataclasses.is_dataclass(x) and not isinstance(x, type)


def is_namedtuple_class(cls: type) -> bool:
    return issubclass(cls, tuple) and isinstance(getattr(cls, "_fields", None), tuple)


def is_pydantic_model(cls: type) -> bool:
    pydantic = sys.modules.get("pydantic")
    base = getattr(pydantic, "BaseModel", None) if pydantic is not None else None
    return isinstance(base, type) and issubclass(cls, base)


# -- tracebacks ------------------------------------------------------------------

#: Where a decoded exception keeps the traceback text of its checkpoint
#: (exceptions cannot be weakly referenced, so it is an attribute).
TRACEBACK_ATTRIBUTE = "__resumable_traceback__"


#: Frames of a live traceback kept as text, the innermost ones (a failure deep
#: in nested child runs would otherwise store a text as long as the nesting).
TRACEBACK_FRAMES = 32


def traceback_text(exc: BaseException) -> str | None:
    """The traceback of `exc` as text: its live traceback (the innermost
    TRACEBACK_FRAMES frames), or the one recorded in the checkpoint it was
    decoded from."""
    tb = exc.__traceback__
    if tb is not None:
        entries = []
        while tb is not None:  # only links are followed: formatting is the cost
            entries.append(tb)
            tb = tb.tb_next
        return "".join(_format(t) for t in entries[-TRACEBACK_FRAMES:])
    text = getattr(exc, "__dict__", {}).get(TRACEBACK_ATTRIBUTE)
    return text if isinstance(text, str) else None


def _format(tb: TracebackType) -> str:
    """One entry as `traceback.format_tb` writes it, without the carets under
    the failing expression (3.11 finds them by parsing the line, which is
    slow, and not safe while another thread parses)."""
    code = tb.tb_frame.f_code
    lineno = tb.tb_lineno
    line = linecache.getline(code.co_filename, lineno).strip()
    text = f'  File "{code.co_filename}", line {lineno}, in {code.co_name}\n'
    return text + (f"    {line}\n" if line else "")


def remember_traceback(exc: BaseException, text: str) -> None:
    attrs = getattr(exc, "__dict__", None)
    if attrs is not None:
        attrs[TRACEBACK_ATTRIBUTE] = text


Rebuild = Callable[[type, Any], Any]
