"""Hot path: what one await in a loop costs on `memory://`, against a floor.

    python bench/hot_path.py            # about half a minute
    python bench/hot_path.py --quick    # a smoke check
    python bench/hot_path.py --profile  # then a pyinstrument profile of the durable run

Needs the compiler (`pip install -e '.[compiler]'`). Compiles a function
awaiting a plain coroutine in a `for i in range(n)` loop with six plain
locals live (`user_id`, `order_id`, `amount`, `label`, `flag`, `note`, plus
the loop's `i`), and times:

- native: the original coroutine under asyncio;
- floor: a hand-written loop doing, per await, what a checkpoint needs at
  the least: `orjson.dumps` of the locals, `zlib.crc32` of the bytes, a dict
  write, `orjson.loads` of the bytes, and the await;
- durable: `rt.run` of the compiled function on `memory://`.

Per-await cost: floor = (floor run - native run) / awaits, durable =
(durable run - native run) / awaits; the ratio is durable / floor, both
measured in the same round. Each figure is the median of `--repeat` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

sys.path.insert(0, os.path.dirname(__file__))

from compiled import compiled_module
from report import Figure, Target, median_and_spread, write

import resumable

AWAITS = 200
#: Live locals of the functions of the per-await-cost-against-locals plot.
LOCALS = (1, 4, 8, 16, 32)

SOURCE = f"""
import resumable


async def work(x):
    return x + 1


@resumable.function
async def loop(user_id):
    order_id, amount, label, flag, note = 456, 19.99, "order", True, None
    for i in range({AWAITS}):
        amount = await work(amount)
    return (user_id, order_id, round(amount, 2), label, flag, note)
""" + "".join(
    f"""

@resumable.function
async def loop_{k}(x):
    {", ".join(f"v{j}" for j in range(k))}{"," if k == 1 else ""} = {", ".join(f"'value {j}'" for j in range(k))}{"," if k == 1 else ""}
    for i in range({AWAITS}):
        x = await work(x)
    return (x, {", ".join(f"v{j}" for j in range(k))})
"""
    for k in LOCALS
)


async def floor_k(k: int, x: float) -> float:
    """`floor` with k string locals (besides x and i)."""
    store: dict[str, tuple[bytes, int]] = {}
    values = {f"v{j}": f"value {j}" for j in range(k)}
    for i in range(AWAITS):
        blob = orjson.dumps({**values, "x": x, "i": i})
        store["run"] = (blob, zlib.crc32(blob))
        decoded = orjson.loads(blob)
        x, i = decoded["x"], decoded["i"]
        values = {name: decoded[name] for name in values}
        x = await work(x)
    return x


async def work(x: float) -> float:
    return x + 1


async def floor(user_id: str) -> tuple[Any, ...]:
    """The least a checkpoint can cost: encode, checksum, store, decode."""
    store: dict[str, tuple[bytes, int]] = {}
    order_id, amount, label, flag, note = 456, 19.99, "order", True, None
    for i in range(AWAITS):
        blob = orjson.dumps(
            {
                "user_id": user_id,
                "order_id": order_id,
                "amount": amount,
                "label": label,
                "flag": flag,
                "note": note,
                "i": i,
            }
        )
        store[user_id] = (blob, zlib.crc32(blob))
        values = orjson.loads(blob)
        user_id, order_id, amount = values["user_id"], values["order_id"], values["amount"]
        label, flag, note, i = values["label"], values["flag"], values["note"], values["i"]
        amount = await work(amount)
    return (user_id, order_id, round(amount, 2), label, flag, note)


def load(folder: Path) -> ModuleType:
    return compiled_module(folder, "bench_hot_path", SOURCE)


def seconds(runs: int, action: Callable[..., Any], *args: Any) -> float:
    """Time per run of `runs` calls of `action(*args)`."""
    start = time.perf_counter()
    for _ in range(runs):
        action(*args)
    return (time.perf_counter() - start) / runs


def run_native(fn: Any, arg: Any) -> None:
    asyncio.run(fn(arg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and rounds")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the durable run")
    parser.add_argument("--json", help="write the figure (bench/report.py) to this file")
    args = parser.parse_args()
    runs, repeat = (4, 3) if args.quick else (args.runs, args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        mod = load(Path(tmp))
        fn = mod.loop
        expected = asyncio.run(fn("u_123"))
        assert asyncio.run(floor("u_123")) == expected, "floor result differs from native"
        with resumable.Runtime("memory://") as rt:
            assert rt.run(fn, "u_123") == expected, "durable result differs from native"
            # Each round times the three back to back, so that the ratio is
            # taken under the same load (the machine may be shared).
            rounds = []
            for _ in range(repeat):
                native = seconds(runs, run_native, fn, "u_123")
                base = seconds(runs, run_native, floor, "u_123")
                durable = seconds(runs, rt.run, fn, "u_123")
                floor_us = (base - native) / AWAITS * 1e6
                durable_us = (durable - native) / AWAITS * 1e6
                rounds.append((native, base, durable, floor_us, durable_us, durable_us / floor_us))
            if args.profile:
                from pyinstrument import Profiler

                with Profiler(interval=0.0002) as profiler:
                    for _ in range(runs * 5):
                        rt.run(fn, "u_123")
        native, base, durable, floor_us, durable_us, ratio = (
            statistics.median(r[k] for r in rounds) for k in range(6)
        )
        print(f"Python {platform.python_version()}, resumable {resumable.__version__}")
        print(
            f"{AWAITS} awaits per run, {runs} runs per round, median of {repeat} rounds "
            "(each round: native, floor, durable back to back; x floor: the median of the "
            "rounds' ratios)\n"
        )
        print(f"| {'what':<34} | {'ms per run':>10} | {'µs per await':>12} | {'x floor':>7} |")
        print(f"|{'-' * 36}|{'-' * 11}:|{'-' * 13}:|{'-' * 8}:|")
        print(f"| {'native (asyncio)':<34} | {native * 1e3:>10.3f} | {'':>12} | {'':>7} |")
        print(
            f"| {'floor (orjson, crc32, dict)':<34} | {base * 1e3:>10.3f} "
            f"| {floor_us:>12.1f} | {1.0:>7.1f} |"
        )
        print(
            f"| {'durable, memory://':<34} | {durable * 1e3:>10.3f} "
            f"| {durable_us:>12.1f} | {ratio:>7.1f} |"
        )
        if args.profile:
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        figure = Figure("hot_path", setup=f"memory://, {AWAITS} awaits per run")
        ratio, spread = median_and_spread([r[5] for r in rounds])
        figure.row("floor: per await", floor_us, "µs", median_and_spread([r[3] for r in rounds])[1])
        figure.row("durable, memory://: per await", durable_us, "µs")
        figure.targets.append(
            Target(
                "memory:// per-await cost / hand-written JSON checkpoint floor",
                ratio,
                3.0,
                "at most",
                f"durable {durable_us:.1f} µs, floor {floor_us:.1f} µs per await",
                spread,
            )
        )
        by_locals = per_await_by_locals(mod, rt_runs := max(2, runs // 2), max(3, repeat // 3))
        print(f"\nper-await cost against live locals ({rt_runs} runs per round):")
        for k, (durable_k, floor_k_us) in by_locals.items():
            print(f"  {k:>2} locals: durable {durable_k:6.1f} µs, floor {floor_k_us:5.1f} µs")
        figure.series["locals"] = {
            "title": "Per-await cost against live locals (memory://)",
            "xlabel": "string locals live at the await (plus the loop's and the value's)",
            "ylabel": "µs per await (minus native)",
            "lines": {
                "resumable": {"x": list(by_locals), "y": [d for d, _ in by_locals.values()]},
                "floor (orjson, crc32, dict)": {
                    "x": list(by_locals),
                    "y": [f for _, f in by_locals.values()],
                },
            },
        }
        write(figure, args.json)


def per_await_by_locals(mod: ModuleType, runs: int, repeat: int) -> dict[int, tuple[float, float]]:
    """k -> (durable, floor) µs per await over native, medians of `repeat` rounds."""
    out = {}
    with resumable.Runtime("memory://") as rt:
        for k in LOCALS:
            fn = getattr(mod, f"loop_{k}")
            assert rt.run(fn, 1.0) == asyncio.run(fn(1.0))
            durable, base = [], []
            for _ in range(repeat):
                native = seconds(runs, run_native, fn, 1.0)
                base.append((seconds(runs, run_native_floor, k) - native) / AWAITS * 1e6)
                durable.append((seconds(runs, rt.run, fn, 1.0) - native) / AWAITS * 1e6)
            out[k] = (statistics.median(durable), statistics.median(base))
    return out


def run_native_floor(k: int) -> None:
    asyncio.run(floor_k(k, 1.0))


if __name__ == "__main__":
    main()
