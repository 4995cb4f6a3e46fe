"""Codecs of the standard library's context managers that are plain data.

A `with` block that awaits keeps its manager in every checkpoint inside it
(resumable/contexts.py). These managers hold only values, so they are
stored as those values and built again by calling their class:

    contextlib.suppress(KeyError, OSError)   {"$contextlib.suppress": [{"$class": ...}, ...]}
    contextlib.nullcontext(value)            {"$contextlib.nullcontext": [value]}

The exception classes a `suppress` holds are stored values like any other
class, under the rules of allowed.py (built-in exceptions, the project's
own classes, registered ones).
"""

from __future__ import annotations

import contextlib
from typing import Any

from .registry import register_internal

__all__: list[str] = []


def _classes(value: Any) -> bool:
    """What `issubclass` accepts as its second argument: a class, or a tuple of them."""
    if isinstance(value, tuple):
        return all(_classes(v) for v in value)
    return isinstance(value, type)


def _suppress(state: list[Any]) -> contextlib.suppress:
    if not all(_classes(c) for c in state):
        raise TypeError("contextlib.suppress holds something that is not a class")
    return contextlib.suppress(*state)


def _nullcontext(state: list[Any]) -> contextlib.nullcontext[Any]:
    [enter_result] = state
    return contextlib.nullcontext(enter_result)


register_internal(
    contextlib.suppress, "contextlib.suppress", lambda s: list(s._exceptions), _suppress
)
register_internal(
    contextlib.nullcontext,
    "contextlib.nullcontext",
    lambda n: [n.enter_result],
    _nullcontext,
)
