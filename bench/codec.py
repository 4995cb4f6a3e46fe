"""Checkpoint codec benchmark: encode and decode time and size, side by side.

    python bench/codec.py              # the full run (under a minute)
    python bench/codec.py --quick      # fewer repetitions, for a smoke check
    python bench/codec.py --profile    # also cProfile resumable's encode and decode

Run it from a virtualenv made with `pip install -e . -r bench/requirements.txt`
(= dispatch-py==0.8.0 http-sfv; see bench/README.md). Without
dispatch-py the other comparisons still run and the dispatch-py rows say
"skipped".

Three workloads, each held as the live locals of a suspended function:

1. five small locals (a typical checkpoint);
2. a list of 1,000 small dicts (plain JSON);
3. a dataclass-heavy state: an Order with a Customer and 50 LineItems
   (Decimal prices, a datetime).

Contenders:

- resumable: what a checkpoint really costs. Encode = the call `Run.checkpoint`
  makes for the live locals and its envelope, `codec.encode_checkpoint(machine,
  state, seq, locals)` (in older codecs `codec.encode_document` of an envelope,
  or `encode_fields` + `codec.dumps`); decode = `decode_checkpoint(blob,
  machine)` as a resume does, checksum verified. The bytes are checked to be
  identical to the ones `Run.checkpoint` stores. `Run.checkpoint` itself is
  timed too: what each await costs in a live run (encode, the memory store's
  write, and the fresh locals the run goes on from).
- stdlib pickle, protocol 5, of the same data.
- plain orjson (`orjson.dumps` / `orjson.loads`), where the data is plain JSON.
- dispatch-py 0.8.0: a `@durable` coroutine holding the same locals, suspended
  at an await (as `await dispatch.call(...)` suspends), pickled with
  `pickle.dumps(coro)` (the default protocol, as dispatch-py's own
  `marshal_any` does). The unpickled coroutine is resumed once and must
  return its locals, to prove the pickle was real.

Timing: each operation is one call, `fn(*args)` with no wrapper around it (the
same for every contender), run in batches of at least `--batch-ms` milliseconds;
the batches of all contenders of a workload are interleaved (round robin) so
a change in machine load hits all of them alike. The figure is the median
time per operation over `--repeat` batches (`time.perf_counter_ns`), with the
garbage collector off during a batch, as `timeit` does. Time targets are
judged on the median of per-round ratios, which cancels a drift in the
machine's speed. Sizes are bytes of the encoded form.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime
import functools
import gc
import hashlib
import importlib.metadata
import os
import pickle
import platform
import pstats
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

import resumable
from resumable import codec
from resumable.codec import FORMAT_VERSION
from resumable.machine import Locals, Machine
from resumable.runtime import Run, RunRecord, Runtime, decode_checkpoint

try:
    from dispatch.experimental.durable import durable
except ImportError as error:  # the benchmark runs without it
    durable = None  # type: ignore[assignment]
    DISPATCH_MISSING = f"{type(error).__name__}: {error}"
else:
    DISPATCH_MISSING = ""


# -- the data ----------------------------------------------------------------------


def five_locals() -> dict[str, Any]:
    return {
        "user_id": "u_123",
        "order_id": 456,
        "amount": 19.99,
        "items": ["a", "b"],
        "receipt": None,
    }


def thousand_dicts() -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"item {i}", "price": i * 1.5, "tags": ["x", "y"], "active": i % 2 == 0}
        for i in range(1000)
    ]


@dataclass
class Customer:
    id: str
    name: str
    email: str
    tier: str


@dataclass
class LineItem:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    tags: list[str] = field(default_factory=list)


@dataclass
class Order:
    id: int
    customer: Customer
    lines: list[LineItem]
    created_at: datetime.datetime
    status: str
    note: str | None = None


def dataclass_order() -> Order:
    customer = Customer("c_42", "Ada Lovelace", "ada@example.com", "gold")
    lines = [
        LineItem(f"SKU-{i:04d}", f"item {i}", i % 5 + 1, Decimal(f"{i}.99"), ["x", "y"])
        for i in range(50)
    ]
    created = datetime.datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=datetime.UTC)
    return Order(1001, customer, lines, created, "paid", None)


# -- resumable: a checkpoint, exactly as Run.checkpoint writes and reads it ---------


def machine_for(name: str, live: tuple[str, ...]) -> type[Machine]:
    """A stand-in for a compiled function: one await (state 3) at which `live` are live.

    The ids have the length of real ones (`module:qualname`, sha256 prefix)."""
    return type(
        name,
        (Machine,),
        {
            "function_id": f"shop.orders:{name}",
            "qualname": name,
            "source_file": "shop/orders.py",
            "run_fingerprint": "sha256:f4d1c1a314d99dea9024f4e0823ea203",
            "awaits": {3: (4, live)},
            "lines": (10, 11, 12, 13, 14),
        },
    )


STATE = 3
#: A timed call: a function and its arguments.
Call = tuple[Callable[..., Any], tuple[Any, ...]]
#: What `Run.checkpoint` calls, in this codec: `codec.encode_checkpoint` (the
#: machine, the await, the seq and the locals), or in older codecs
#: `codec.encode_document` of an envelope it built.
ENCODE_CHECKPOINT = getattr(codec, "encode_checkpoint", None)
ENCODE_DOCUMENT = getattr(codec, "encode_document", None)


class ResumableCheckpoint:
    """Encode and decode a checkpoint the way `Run.checkpoint` does."""

    def __init__(self, machine: type[Machine]) -> None:
        self.machine = machine
        self.live = machine.awaits[STATE][1]

    def encode(self, values: dict[str, Any]) -> bytes:
        """`values`: all the locals of the run (`L.__dict__`)."""
        if ENCODE_CHECKPOINT is not None:  # the codec picks the live locals, writes it all
            return ENCODE_CHECKPOINT(self.machine, STATE, 1, values)
        fields = {k: values[k] for k in self.live if k in values}
        meta = {
            "v": FORMAT_VERSION,
            "fn": self.machine.function_id,
            "fp": self.machine.run_fingerprint,
            "seq": 1,
            "state": STATE,
        }
        if ENCODE_DOCUMENT is not None:  # the codec writes the whole document
            return ENCODE_DOCUMENT(meta, "locals", fields, named=True)[0]
        tree, plain = codec.encode_fields(fields)  # older codec: tree, then bytes
        return codec.dumps({**meta, "plain": plain, "locals": tree})

    def decode(self, blob: bytes) -> dict[str, Any]:
        return decode_checkpoint(blob, self.machine)["locals"]

    def timed(self, values: dict[str, Any], blob: bytes) -> tuple[Call, Call]:
        """The calls timed: what `encode` and `decode` call, without their
        wrapper (the other contenders' calls have none either)."""
        decode = (decode_checkpoint, (blob, self.machine))
        if ENCODE_CHECKPOINT is None:
            return (self.encode, (values,)), decode
        return (ENCODE_CHECKPOINT, (self.machine, STATE, 1, values)), decode

    def check_against_runtime(self, values: dict[str, Any], blob: bytes) -> None:
        """The bytes must be exactly those `Run.checkpoint` stores."""
        runtime, run = self.run()
        L = Locals()
        L.__dict__.update(values)
        fresh = finish(run.checkpoint(self.machine(run), STATE, L))
        stored = runtime.store.get(run.run_id)
        if stored is None or stored.checkpoint != blob:
            raise AssertionError("the benchmark's checkpoint differs from Run.checkpoint's")
        if fresh.__dict__ != values:
            raise AssertionError("Run.checkpoint did not give the locals back")

    def runtime_round_trip(self, values: dict[str, Any]) -> Callable[[Locals], Locals]:
        """`Run.checkpoint` itself: what one await costs in a live run (the
        memory store: its write is a dict update)."""
        _, run = self.run()
        m = self.machine(run)
        return lambda L: finish(run.checkpoint(m, STATE, L))

    def run(self) -> tuple[Runtime, Run]:
        """A run of the stand-in function on a memory store, at checkpoint 0."""
        machine = self.machine
        runtime = Runtime("memory://")
        record = RunRecord("bench", machine.function_id, machine.run_fingerprint, b"")
        runtime.store.create(record)
        lease = runtime.store.claim("bench", "bench", machine.run_fingerprint)
        assert lease is not None
        function: Any = types.SimpleNamespace(retry=None)  # what Run reads of a Function
        return runtime, Run(runtime, function, machine, record, lease, contain=False)


def finish(coro: Any) -> Any:
    """Drive a coroutine that never suspends (a memory store's I/O does not)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("Run.checkpoint suspended")


# -- dispatch-py: a durable coroutine suspended at an await --------------------------

if durable is not None:

    @types.coroutine
    @durable
    def suspend() -> Any:
        """What `dispatch.call(...)` is: a durable generator that yields to the scheduler."""
        return (yield "suspended")

    @durable
    async def hold_five(user_id: Any, order_id: Any, amount: Any, items: Any, receipt: Any) -> Any:
        resumed = await suspend()
        return {
            "user_id": user_id,
            "order_id": order_id,
            "amount": amount,
            "items": items,
            "receipt": receipt,
            "resumed": resumed,
        }

    @durable
    async def hold_rows(rows: Any) -> Any:
        resumed = await suspend()
        return {"rows": rows, "resumed": resumed}

    @durable
    async def hold_order(order: Any) -> Any:
        resumed = await suspend()
        return {"order": order, "resumed": resumed}

    DURABLE = {"five": hold_five, "rows": hold_rows, "order": hold_order}


def suspended_coroutine(workload: str, values: dict[str, Any]) -> Any:
    coro = DURABLE[workload](**values)
    if coro.send(None) != "suspended":
        raise AssertionError("the durable coroutine did not suspend at its await")
    return coro


def check_dispatch_pickle(blob: bytes, values: dict[str, Any]) -> None:
    """Unpickle the coroutine and resume it once: it must finish with its locals."""
    coro = pickle.loads(blob)
    try:
        coro.send("resumed")
    except StopIteration as stop:
        result = stop.value
    else:
        raise AssertionError("the unpickled coroutine did not finish when resumed")
    if result != {**values, "resumed": "resumed"}:
        raise AssertionError("the unpickled coroutine resumed with other locals")


# -- timing --------------------------------------------------------------------------


@dataclass
class Op:
    """One timed operation: `fn(*args)` (the call itself, no wrapper around
    it), `n` calls per batch."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    n: int = 1
    samples: list[float] = dataclasses.field(default_factory=list)

    def batch(self) -> int:
        fn, args = self.fn, self.args
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in range(self.n):
                fn(*args)
            return time.perf_counter_ns() - start
        finally:
            if gc_was_enabled:
                gc.enable()

    def calibrate(self, batch_ns: int) -> None:
        self.batch()  # warm up
        while True:
            elapsed = self.batch()
            if elapsed >= batch_ns:
                return
            self.n = max(self.n * 2, int(self.n * batch_ns * 1.2 / max(elapsed, 1)))

    def sample(self) -> None:
        self.samples.append(self.batch() / self.n)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000

    @property
    def spread(self) -> float:
        """Interquartile range over the median."""
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / statistics.median(self.samples)


def time_all(ops: list[Op], repeat: int, batch_ms: float) -> None:
    for op in ops:
        op.calibrate(int(batch_ms * 1e6))
    for _ in range(repeat):
        for op in ops:
            op.sample()


# -- one workload ----------------------------------------------------------------------


@dataclass
class Row:
    name: str
    encode: Op | None = None
    decode: Op | None = None
    size: int | None = None
    note: str = ""

    @property
    def total_us(self) -> float | None:
        if self.encode is None or self.decode is None:
            return None
        return self.encode.median_us + self.decode.median_us


@dataclass
class Workload:
    key: str
    title: str
    values: dict[str, Any]  # the live locals
    plain: Any  # the same data as a plain value, for orjson; None: not plain JSON
    rows: dict[str, Row] = dataclasses.field(default_factory=dict)
    extra: dict[str, Op] = dataclasses.field(default_factory=dict)


def add_codec(
    workload: Workload,
    name: str,
    encode: Callable[[Any], bytes],
    decode: Callable[[bytes], Any],
    value: Any,
    timed: Callable[[bytes], tuple[Call, Call]] | None = None,
) -> None:
    """A contender: check its round trip, then queue its encode and decode
    (or the calls `timed(blob)` gives: the same, without a wrapper)."""
    blob = encode(value)
    if decode(blob) != value:
        raise AssertionError(f"{name} does not round-trip the {workload.key} workload")
    (encode_fn, encode_args), (decode_fn, decode_args) = (
        timed(blob) if timed else ((encode, (value,)), (decode, (blob,)))
    )
    if encode_fn(*encode_args) != blob:
        raise AssertionError(f"{name}: the timed encode writes other bytes")
    workload.rows[name] = Row(
        name, Op(encode_fn, encode_args), Op(decode_fn, decode_args), len(blob)
    )


def run_workload(workload: Workload, args: argparse.Namespace) -> None:
    values = workload.values
    machine = machine_for(f"hold_{workload.key}", tuple(values))
    checkpoint = ResumableCheckpoint(machine)
    blob = checkpoint.encode(values)
    checkpoint.check_against_runtime(values, blob)
    add_codec(
        workload,
        "resumable checkpoint",
        checkpoint.encode,
        checkpoint.decode,
        values,
        lambda blob: checkpoint.timed(values, blob),
    )

    data = workload.plain if workload.plain is not None else values
    add_codec(
        workload,
        "pickle (protocol 5)",
        functools.partial(pickle.dumps, protocol=5),
        pickle.loads,
        data,
        lambda blob: ((pickle.dumps, (data, 5)), (pickle.loads, (blob,))),
    )
    if workload.plain is not None:
        add_codec(workload, "orjson", orjson.dumps, orjson.loads, workload.plain)
    else:
        workload.rows["orjson"] = Row("orjson", note="n/a: not plain JSON")

    coro = None
    if durable is None:
        workload.rows["dispatch"] = Row("dispatch-py 0.8.0", note="skipped: not importable")
    else:
        coro = suspended_coroutine(workload.key, values)
        dispatch_blob = pickle.dumps(coro)
        check_dispatch_pickle(dispatch_blob, values)
        workload.rows["dispatch"] = Row(
            "dispatch-py 0.8.0 (pickled coroutine)",
            Op(pickle.dumps, (coro,)),
            Op(pickle.loads, (dispatch_blob,)),
            len(dispatch_blob),
        )

    L = Locals()
    L.__dict__.update(values)
    workload.extra["Run.checkpoint() (the cost of one await in a live run)"] = Op(
        checkpoint.runtime_round_trip(values), (L,)
    )

    ops = [op for row in workload.rows.values() for op in (row.encode, row.decode) if op]
    ops += workload.extra.values()
    time_all(ops, args.repeat, args.batch_ms)
    if coro is not None:
        coro.close()


# -- report ------------------------------------------------------------------------------


def fmt_us(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def print_table(workload: Workload) -> None:
    print(f"\n### {workload.title}\n")
    header = ("contender", "encode µs", "decode µs", "enc+dec µs", "size B", "spread")
    lines = []
    for row in workload.rows.values():
        if row.encode is None or row.decode is None:
            lines.append((row.name, row.note, "", "", "", ""))
            continue
        spread = max(row.encode.spread, row.decode.spread)
        lines.append(
            (
                row.name,
                fmt_us(row.encode.median_us),
                fmt_us(row.decode.median_us),
                fmt_us(row.total_us),
                f"{row.size:,}",
                f"±{spread * 50:.0f}%",
            )
        )
    for name, op in workload.extra.items():
        lines.append((name, "", "", fmt_us(op.median_us), "", f"±{op.spread * 50:.0f}%"))
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]

    def show(cells: tuple[str, ...]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "| " + " | ".join([first, *rest]) + " |"

    print(show(header))
    print("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    for line in lines:
        print(show(line))


@dataclass
class Target:
    workload: str
    what: str  # "time" or "size"
    against: str
    factor: float
    label: str


TARGETS = (
    Target("five", "time", "dispatch", 1 / 5, "5 locals: encode+decode <= 1/5 of dispatch-py's"),
    Target("five", "size", "dispatch", 1 / 3, "5 locals: size <= 1/3 of dispatch-py's"),
    Target("rows", "time", "pickle (protocol 5)", 2.0, "1,000 dicts: encode+decode <= 2x pickle's"),
    Target("rows", "size", "orjson", 1.2, "1,000 dicts: size <= 1.2x plain orjson's"),
)


def round_totals(row: Row) -> list[float]:
    """encode + decode time of each round (the same round for every contender)."""
    assert row.encode is not None and row.decode is not None
    return [e + d for e, d in zip(row.encode.samples, row.decode.samples, strict=True)]


def check_targets(workloads: dict[str, Workload]) -> bool:
    """Time targets are judged on the median of per-round ratios: both sides of
    a ratio ran in the same round, so a drift in the machine's speed cancels."""
    print("\n### Targets\n")
    all_met = True
    for target in TARGETS:
        rows = workloads[target.workload].rows
        ours, theirs = rows["resumable checkpoint"], rows[target.against]
        if theirs.encode is None:
            print(f"- SKIPPED  {target.label}: {theirs.name} {theirs.note}")
            continue
        if target.what == "time":
            pairs = zip(round_totals(ours), round_totals(theirs), strict=True)
            ratio = statistics.median(mine / other for mine, other in pairs)
            detail = (
                f"{ours.total_us:,.2f} µs vs {theirs.total_us:,.2f} µs (medians); "
                f"median per-round ratio {ratio:.3f}x"
            )
        else:
            assert ours.size is not None and theirs.size is not None
            ratio = ours.size / theirs.size
            detail = f"{ours.size:,} B vs {theirs.size:,} B = {ratio:.3f}x"
        met = ratio <= target.factor
        all_met = all_met and met
        print(
            f"- {'PASS' if met else 'FAIL'}  {target.label}: {detail} "
            f"(limit {target.factor:.3f}x"
            + (")" if met else f"; {ratio / target.factor:.2f}x over it)")
        )
    return all_met


def profile_resumable(workloads: dict[str, Workload]) -> None:
    """cProfile of resumable's encode and decode, the top functions by own time."""
    for workload in workloads.values():
        row = workload.rows["resumable checkpoint"]
        assert row.encode is not None and row.decode is not None
        for label, op in (("encode", row.encode), ("decode", row.decode)):
            count = max(20, op.n * 2)
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(count):
                op.fn(*op.args)
            profiler.disable()
            print(f"\n### cProfile: {workload.title}, {label} ({count} calls)\n")
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats("tottime").print_stats(12)


def code_fingerprint() -> str:
    """Which resumable code was measured: sha256 of the codec's sources and run.py."""
    package = os.path.dirname(os.path.abspath(resumable.__file__))
    names = sorted(os.listdir(os.path.join(package, "codec")))
    paths = [os.path.join(package, "codec", n) for n in names if n.endswith(".py")]
    digest = hashlib.sha256()
    for path in [*paths, os.path.join(package, "run.py")]:
        with open(path, "rb") as f:
            digest.update(f.read())
    return f"{package} (codec + run.py sources sha256:{digest.hexdigest()[:12]})"


def machine_description() -> list[str]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    return [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), {platform.platform()}",
        f"python: {platform.python_implementation()} {platform.python_version()}",
        f"resumable {resumable.__version__}, orjson {version('orjson')}, "
        f"dispatch-py {version('dispatch-py')}, pickle protocol 5 (dispatch-py: default "
        f"protocol {pickle.DEFAULT_PROTOCOL})",
        f"resumable code: {code_fingerprint()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=41, help="batches per operation")
    parser.add_argument("--batch-ms", type=float, default=20.0, help="minimum batch length")
    parser.add_argument("--quick", action="store_true", help="--repeat 7 --batch-ms 5")
    parser.add_argument("--profile", action="store_true", help="cProfile resumable's codec")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: 0)"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.batch_ms = 7, 5.0

    for line in machine_description():
        print(line)
    print(
        f"timing: median of {args.repeat} batches of >= {args.batch_ms:g} ms per operation, "
        "interleaved, gc off in a batch; µs per operation"
    )
    if durable is None:
        print(f"dispatch-py: skipped ({DISPATCH_MISSING})")

    order = dataclass_order()
    workloads = {
        "five": Workload("five", "1. five small locals", five_locals(), five_locals()),
        "rows": Workload(
            "rows", "2. 1,000-item list of dicts", {"rows": thousand_dicts()}, thousand_dicts()
        ),
        "order": Workload(
            "order",
            "3. dataclass-heavy state (Order, Customer, 50 LineItems)",
            {"order": order},
            None,
        ),
    }
    for workload in workloads.values():
        run_workload(workload, args)
        print_table(workload)
    met = check_targets(workloads)
    if args.profile:
        profile_resumable(workloads)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
