"""A fixed table of values covering every tag of the format, built fresh on
each call and the same in every process (no str hashing in sets, no
tracebacks, no clocks): the golden samples (tests/codec_samples/v3/) and the
fresh-process tests use it.

Run as a script it decodes or encodes samples in a fresh process:

    python -m tests.codec_types.samples decode < {name: base64 bytes}  -> {name: "ok" | error}
    python -m tests.codec_types.samples encode                          -> {name: base64 bytes}
    python -m tests.codec_types.samples reencode < [base64 bytes]       -> [base64 bytes]
"""

from __future__ import annotations

import base64
import collections
import datetime
import decimal
import fractions
import math
import os
import pathlib
import subprocess
import sys
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

import orjson

from resumable.codec import decode, encode
from resumable.loops import SeqCursor

from . import models as m
from .compare import assert_same

__all__ = ["SAMPLES", "TAGS", "expected_v1_locals", "run_fresh_process", "samples"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Where a new interpreter finds this checkout's code (not an installed copy).
_CODE = os.pathsep.join([str(ROOT / "runtime"), str(ROOT)])

_UTC = datetime.UTC
_IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
_WEST = datetime.timezone(datetime.timedelta(hours=-8))


def _shared() -> Any:
    a = [1]
    return [a, a, {"k": a}]


def _cycles() -> Any:
    loop: list[Any] = [0]
    loop.append(loop)
    d: dict[str, Any] = {}
    d["self"] = d
    node = m.Node(1)
    node.next = node
    return [loop, d, node]


def _exceptions() -> Any:
    cause = m.PlainError("cause")
    context = KeyError("context")
    err = m.AppError("boom", 7)
    err.__context__ = context
    err.__cause__ = cause
    err.__suppress_context__ = True
    err.add_note("a note")
    return [
        err,
        OSError(2, "No such file or directory", "f.txt"),
        StopIteration(5),
        ExceptionGroup("group", [ValueError(1), TypeError("t")]),
    ]


def _pydantic() -> Any:
    customer = m.Customer(name="ann", address=m.Address(street=" Main "), tags=[1], extra=5)
    customer._secret = "s"
    return [customer, m.FrozenModel(key="k", value=(1, 2))]


def _subclasses() -> Any:
    tag = m.Tag("abc")
    tag.note = "n"  # type: ignore[attr-defined]
    counts = collections.Counter()
    for c in "abca":
        counts[c] += 1
    return [
        tag,
        m.Cents(3),
        m.Registry({1: "one"}),
        m.Bag([1, 2]),
        m.Ratio(0.5),
        m.Blob(b"x"),
        m.TagSet({1, 2}),
        m.FrozenTags({3}),
        m.Row((1, 2)),
        m.Ordered([("b", 1), ("a", 2)]),
        collections.OrderedDict([("z", 1)]),
        collections.defaultdict(list, {"a": [1]}),
        counts,
        collections.deque([1, 2], maxlen=5),
    ]


#: name -> builder of the value (each a fresh object).
SAMPLES: dict[str, Callable[[], Any]] = {
    "json": lambda: {"a": [1, 2.5, "x", None, True, False], "b": {}, "é": "ü"},
    "dollar_keys": lambda: {"$tuple": 1, "$id": [2], "plain": 3},
    "dict_keys": lambda: {
        1: "int",
        (2, 3): "tuple",
        m.Color.RED: "enum",
        frozenset({1, 2}): "frozenset",
        None: "none",
        2.5: "float",
        False: "bool",
    },
    "tuple": lambda: (1, "a", (2,), ()),
    "list_of_tuples": lambda: [(), (1,), [()]],
    "set": lambda: {3, 1, 2},
    "frozenset": lambda: frozenset({(1, 2), 3}),
    "bytearray": lambda: bytearray(b"\x00\xffab"),
    "bytes": lambda: b"\x00\x01binary\xff",
    "surrogate": lambda: ["a\ud800b", "\udfff"],
    "big_ints": lambda: [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**100, -(3**90)],
    "huge_int": lambda: (1 << 40_000) + 12345,
    "floats": lambda: [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, 5e-324, 0.1],
    "range": lambda: [range(0, 2**70, 3), range(5, -5, -2), range(0)],
    "complex": lambda: [complex(1.5, -0.0), complex(math.inf, math.nan)],
    "decimal": lambda: [
        decimal.Decimal("1.10"),
        decimal.Decimal("-0"),
        decimal.Decimal("NaN"),
        decimal.Decimal("-sNaN"),
        decimal.Decimal("-Infinity"),
        decimal.Decimal("1E+30"),
        decimal.Decimal("123456789012345678901234567890.000001"),
    ],
    "uuid": lambda: uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "fraction": lambda: [fractions.Fraction(-3, 7), fractions.Fraction(2**80, 3)],
    "datetime": lambda: [
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_UTC),
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_IST),
        datetime.datetime(1, 1, 1, tzinfo=_WEST),
        datetime.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, fold=1),
    ],
    "date": lambda: [datetime.date(2024, 2, 29), datetime.date.min, datetime.date.max],
    "time": lambda: [
        datetime.time(),
        datetime.time(23, 59, 59, 999999, fold=1),
        datetime.time(12, tzinfo=_IST),
    ],
    "timedelta": lambda: [
        datetime.timedelta(days=-1, microseconds=1),
        datetime.timedelta.max,
        datetime.timedelta.min,
    ],
    "timezone": lambda: [_UTC, _IST, _WEST, zoneinfo.ZoneInfo("Asia/Tokyo")],
    "path": lambda: [pathlib.PurePosixPath("/a/b"), pathlib.PosixPath("rel/x")],
    "module": lambda: m,  # a module of the project (others: only those the function imports)
    "class": lambda: [m.Point, int, m.Color],
    "function": lambda: _callables(),
    "codec": lambda: [m.Money(150, "EUR"), (m.Money(1, "USD"),)],
    "enum": lambda: [
        m.Color.RED,
        m.Color.CRIMSON,
        m.Color.BLUE,
        m.Level.HIGH,
        m.Mode.WRITE,
        m.Perm.R,
        m.Perm.R | m.Perm.W,
        m.Perm(0),
        m.Bits.A | m.Bits.B,
    ],
    "dataclass": lambda: [
        m.Point(1, [2]),
        m.Frozen("f", (1, "x")),
        m.Slotted(1, {"k": 2}),
        m.CustomInit("v"),
    ],
    "namedtuple": lambda: [m.Pair(1, 2), m.Coord(1.5), m.Guarded("a", ("b",))],
    "exception": _exceptions,
    "pydantic": _pydantic,
    "subclass": _subclasses,
    "shared": _shared,
    "cycle": _cycles,
    "loop_cursor": lambda: SeqCursor([1, 2, 3], 1),
}


def _callables() -> list[Any]:
    """Functions by name, bound methods by their object and name, super()."""
    account = m.Account(7)
    return [
        m.helper,
        m.fetch,
        len,
        account.deposit,
        account.audit(),  # a private method
        account.settle,  # a decorated method, bound
        m.Account.opened,  # a classmethod, bound to its class
        "-".join,  # a built-in method of a str
        super(m.Savings, m.Savings(5)),
    ]


#: Every tag of the format: the samples above must use each of them.
TAGS = frozenset(
    {
        "$id", "$v", "$ref", "$dict", "$tuple", "$frozenset", "$set", "$bytearray", "$str",
        "$int", "$float", "$bytes", "$range", "$complex", "$decimal", "$uuid", "$fraction",
        "$datetime", "$date", "$time", "$timedelta", "$timezone", "$zoneinfo", "$path",
        "$module", "$class", "$function", "$codec", "$enum", "$dataclass", "$namedtuple",
        "$pydantic", "$sub", "$exc", "$loop.seq", "$method", "$super",
    }
)  # fmt: skip


def samples() -> dict[str, Any]:
    return {name: build() for name, build in SAMPLES.items()}


def expected_v1_locals() -> dict[str, Any]:
    """The locals of tests/codec_samples/v1/checkpoint.json (written by format 1)."""
    shared = [1, 2]
    loop: list[Any] = []
    loop.append(loop)
    context = m.PlainError("first")
    err = m.AppError("boom", 7)
    err.__context__ = context
    err.__cause__ = KeyError("k")
    err.__suppress_context__ = True
    return {
        "n": 3,
        "big": (1, 2**70, b"\x00"),
        "d": {1: "a", "$k": [1.5, math.inf, -math.inf]},
        "s": {1, 2},
        "fs": frozenset({3}),
        "ba": bytearray(b"ab"),
        "r": range(1, 10, 2),
        "shared": [shared, shared],
        "loop": loop,
        "err": err,
        "os_error": OSError(2, "No such file or directory", "x.txt"),
        "mod": math,
        "cls": m.Point,
        "fn": m.helper,
    }


def run_fresh_process(mode: str, payload: Any) -> Any:
    """Run this module as a script in a new interpreter (see the docstring)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.codec_types.samples", mode],
        input=orjson.dumps(payload),
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": _CODE, "PYTHONHASHSEED": "random"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return orjson.loads(done.stdout)


# -- the fresh-process side --------------------------------------------------------------


def _decode_all(payload: dict[str, str]) -> dict[str, str]:
    expected = samples()
    out: dict[str, str] = {}
    for name, data in payload.items():
        try:
            assert_same(expected[name], decode(base64.b64decode(data)))
            out[name] = "ok"
        except Exception as e:
            out[name] = f"{type(e).__name__}: {e}"
    return out


def _encode_all() -> dict[str, str]:
    return {name: base64.b64encode(encode(v)).decode() for name, v in samples().items()}


def _reencode_all(payload: list[str]) -> list[str]:
    """Decode each value and encode it again (values the parent made at random)."""
    return [base64.b64encode(encode(decode(base64.b64decode(b)))).decode() for b in payload]


if __name__ == "__main__":
    result: Any
    if sys.argv[1] == "decode":
        result = _decode_all(orjson.loads(sys.stdin.buffer.read()))
    elif sys.argv[1] == "reencode":
        result = _reencode_all(orjson.loads(sys.stdin.buffer.read()))
    else:
        result = _encode_all()
    sys.stdout.buffer.write(orjson.dumps(result))
