"""Hypothesis strategies for property tests of decorated functions (needs
`pip install 'resumable[testing]'`).

    from hypothesis import given
    from resumable.testing import assert_equivalent, strategies as rst

    @given(rst.arguments(place_order))
    def test_place_order(call):
        assert_equivalent(place_order, *call.args, **call.kwargs)

    values()              JSON-storable values: None, bools, ints, floats,
                          strs, lists, dicts with str keys, tuples
    from_annotation(tp)   values of a type annotation: int, str, float, bool,
                          None, bytes, list[T], dict[K, V], tuple[...],
                          set[T], X | Y, Optional, Literal, Enum, dataclasses
                          (by their fields' annotations), Any (values())
    arguments(fn)         (args, kwargs) for a decorated function, from its
                          parameters' annotations
    fault_schedules()     Faults: which step calls fail and how many times in
                          a row, after which checkpoints the process dies
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from typing import Any, NamedTuple

try:
    from hypothesis import strategies as st
except ImportError as e:  # the extra is not installed
    raise ImportError(
        f"resumable.testing.strategies needs hypothesis ({e}): pip install 'resumable[testing]'"
    ) from None

from .faults import Faults

__all__ = ["Arguments", "arguments", "fault_schedules", "from_annotation", "values"]


def values(*, max_leaves: int = 10, allow_nan: bool = False) -> st.SearchStrategy[Any]:
    """JSON-storable values (and tuples), nested."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=allow_nan, allow_infinity=allow_nan),
        st.text(max_size=20),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(st.text(max_size=8), inner, max_size=4),
        ),
        max_leaves=max_leaves,
    )


_ATOMS: dict[Any, st.SearchStrategy[Any]] = {
    int: st.integers(),
    str: st.text(max_size=20),
    float: st.floats(allow_nan=False, allow_infinity=False),
    bool: st.booleans(),
    bytes: st.binary(max_size=20),
    type(None): st.none(),
    None: st.none(),
}


def from_annotation(tp: Any, *, _depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of the type annotation `tp` (see the module docstring); other
    types go to hypothesis's `st.from_type`."""
    if _depth > 8:
        return st.none()
    d = _depth + 1
    if tp is Any or tp is inspect.Parameter.empty or tp is object:
        return values()
    if tp in _ATOMS:
        return _ATOMS[tp]
    origin, params = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return st.one_of(*(from_annotation(p, _depth=d) for p in params))
    if origin is typing.Literal:
        return st.sampled_from(params)
    if origin in (list, typing.List):  # noqa: UP006
        return st.lists(from_annotation(params[0] if params else Any, _depth=d), max_size=5)
    if origin in (set, frozenset):
        inner = from_annotation(params[0] if params else int, _depth=d)
        return st.sets(inner, max_size=5).map(origin)
    if origin is dict:
        key, value = params if params else (str, Any)
        return st.dictionaries(
            from_annotation(key, _depth=d), from_annotation(value, _depth=d), max_size=5
        )
    if origin is tuple:
        if len(params) == 2 and params[1] is Ellipsis:
            return st.lists(from_annotation(params[0], _depth=d), max_size=5).map(tuple)
        return st.tuples(*(from_annotation(p, _depth=d) for p in params))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = {
            f.name: from_annotation(hints.get(f.name, Any), _depth=d)
            for f in dataclasses.fields(tp)
            if f.init
        }
        return st.builds(tp, **fields)
    if tp is list:
        return st.lists(values(), max_size=5)
    if tp is dict:
        return st.dictionaries(st.text(max_size=8), values(), max_size=5)
    if tp is tuple:
        return st.lists(values(), max_size=5).map(tuple)
    return st.from_type(tp)


class Arguments(NamedTuple):
    """Arguments drawn for a call: `fn(*call.args, **call.kwargs)`."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def arguments(fn: Any, **fixed: Any) -> st.SearchStrategy[Arguments]:
    """Arguments for the decorated `fn`, drawn from its parameters'
    annotations (unannotated: `values()`); parameters with a default are
    sometimes left out. `fixed` gives a parameter a value or a strategy."""
    original = getattr(fn, "__wrapped__", fn)
    signature = inspect.signature(original)
    try:
        hints = typing.get_type_hints(original)
    except Exception:
        hints = {}

    def strategy(name: str, p: inspect.Parameter) -> st.SearchStrategy[Any]:
        if name in fixed:
            value = fixed[name]
            return value if isinstance(value, st.SearchStrategy) else st.just(value)
        return from_annotation(hints.get(name, p.annotation))

    @st.composite
    def draw(draw: Any) -> Arguments:
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        gap = False  # a positional parameter was left out: the rest go by keyword
        for name, p in signature.parameters.items():
            if p.kind is p.VAR_POSITIONAL:
                if not gap:
                    args += draw(st.lists(strategy(name, p), max_size=3))
                continue
            if p.kind is p.VAR_KEYWORD or (gap and p.kind is p.POSITIONAL_ONLY):
                continue  # (a positional-only parameter after a gap has a default)
            if p.default is not p.empty and name not in fixed and not draw(st.booleans()):
                gap = gap or p.kind is not p.KEYWORD_ONLY
                continue
            value = draw(strategy(name, p))
            if p.kind is p.KEYWORD_ONLY or (gap and p.kind is p.POSITIONAL_OR_KEYWORD):
                kwargs[name] = value
            else:
                args.append(value)
        return Arguments(tuple(args), kwargs)

    result: st.SearchStrategy[Arguments] = draw()
    return result


def fault_schedules(
    *,
    max_calls: int = 8,
    max_failures: int = 4,
    max_checkpoints: int = 8,
    crashes: bool = True,
) -> st.SearchStrategy[Faults]:
    """Fault schedules: up to `max_calls` call numbers that fail 1 to
    `max_failures` times in a row, and (with `crashes`) checkpoints up to
    `max_checkpoints` after which the process dies. Numbers past the calls
    or checkpoints a run makes are harmless (nothing happens there)."""
    fail = st.dictionaries(
        st.integers(1, max_calls), st.integers(1, max_failures), max_size=max_calls
    )
    crash = (
        st.frozensets(st.integers(1, max_checkpoints), max_size=max_checkpoints)
        if crashes
        else st.just(frozenset[int]())
    )
    return st.builds(Faults, fail=fail, crash_after=crash)
